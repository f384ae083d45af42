"""What an operator sets on a customer account, each field validated with a clear error.

name        the customer's legal name, as Stripe and the invoice show it
email       where Stripe sends receipts and invoices
cost scope  whose AWS costs the account pays: a 12-digit linked account id (costs attributed by
            account) or a cost-allocation tag value (by tag); none bills the whole payer
base fee    a positive amount with at most two decimal places (EUR)
language    "de" or "en": the invoice texts and Stripe's e-mails
country     ISO 3166-1 alpha-2 (DE, AT, ...)
address     street line, postal code, city
VAT id      the customer's EU VAT id (USt-IdNr), format and check digit (python-stdnum)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pycountry

from billing_core.domain.costs import AttributionKind, CostAttribution
from billing_core.domain.errors import BillingDomainError, ConfigurationError
from billing_core.domain.seller import valid_vat_id

LANGUAGES = ("de", "en")
_LINKED_ACCOUNT_ID = re.compile(r"\d{12}")
# Tag values: Unicode letters, digits, spaces and _ . : / = + - @, up to 256 characters (AWS's rule).
_TAG_VALUE = re.compile(r"[\w\s_.:/=+\-@]{1,256}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_MAX_TEXT = 200


class InvalidAccountField(BillingDomainError):
    """A field an operator gave is not valid; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class PostalAddress:
    """A customer's postal address (the country is the account's)."""

    line1: str
    postal_code: str
    city: str


def valid_name(value: str) -> str:
    """A customer's name: non-blank, at most 200 characters, surrounding spaces removed."""
    return _text("name", value)


def valid_email(value: str) -> str:
    """An e-mail address of the form local@domain.tld (lower-cased domain)."""
    text = _text("email", value)
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        raise InvalidAccountField("email", f"{text!r} is not an e-mail address")
    local, domain = text.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def valid_language(value: str) -> str:
    """``de`` or ``en``."""
    text = _text("language", value).lower()
    if text not in LANGUAGES:
        raise InvalidAccountField("language", f"must be one of {', '.join(LANGUAGES)}, got {value!r}")
    return text


def valid_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 country code, upper-cased."""
    text = _text("country", value).upper()
    if len(text) != 2 or pycountry.countries.get(alpha_2=text) is None:
        raise InvalidAccountField("country", f"{value!r} is not an ISO 3166-1 alpha-2 country code (DE, AT, ...)")
    return text


def valid_buyer_reference(value: str) -> str:
    """The e-invoice's buyer reference (a Leitweg-ID such as 991-12345-67, or an order reference)."""
    reference = _text("buyer reference", value)
    if len(reference) > 100:
        raise InvalidAccountField("buyer reference", "is longer than 100 characters")
    return reference


def valid_customer_vat_id(value: str) -> str:
    """An EU VAT id (format and check digit), compacted."""
    try:
        return valid_vat_id(_text("VAT id", value), "VAT id")
    except ConfigurationError as error:
        raise InvalidAccountField("VAT id", str(error).removeprefix("VAT id ")) from None


def valid_base_fee_amount(value: str | Decimal) -> Decimal:
    """A positive amount with at most two decimal places, as cents (``25`` -> ``25.00``)."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidAccountField("base fee", f"{value!r} is not an amount") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidAccountField("base fee", f"must be greater than 0, got {value!r}")
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidAccountField("base fee", f"at most two decimal places, got {value!r}")
    return amount.quantize(Decimal("0.01"))


def valid_cost_scope(value: str, attribution: CostAttribution) -> str:
    """Whose costs the account pays, checked against how costs are attributed (``COST_GROUP_BY``)."""
    text = _text("cost scope", value)
    if attribution.kind is AttributionKind.ACCOUNT:
        if not _LINKED_ACCOUNT_ID.fullmatch(text):
            raise InvalidAccountField("cost scope", f"a linked AWS account id has 12 digits, got {value!r}")
    elif attribution.kind is AttributionKind.TAG:
        if not _TAG_VALUE.fullmatch(text):
            raise InvalidAccountField(
                "cost scope", f"{value!r} is not a tag value (letters, digits, spaces, _ . : / = + - @; 256 at most)"
            )
    else:
        raise InvalidAccountField(
            "cost scope",
            f"costs are attributed by {attribution}: attribute them by linked account or tag (COST_GROUP_BY) first",
        )
    return text


def valid_address(line1: str, postal_code: str, city: str) -> PostalAddress:
    """A postal address with all three parts."""
    return PostalAddress(_text("address", line1), _text("postal code", postal_code), _text("city", city))


def _text(field: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidAccountField(field, "must not be empty")
    text = value.strip()
    if len(text) > _MAX_TEXT:
        raise InvalidAccountField(field, f"at most {_MAX_TEXT} characters, got {len(text)}")
    if any(ord(character) < 32 for character in text):
        raise InvalidAccountField(field, "must not contain control characters")
    return text
