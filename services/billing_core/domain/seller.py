"""The operator as the seller on every invoice: what §14 UStG and EN 16931 / XRechnung need to name.

§14 (4) UStG: the seller's full name and address and its USt-IdNr or Steuernummer. XRechnung adds a
seller contact (name, phone, e-mail: BR-DE-2, -5, -6, -7). A SEPA direct debit names the creditor id.
The billing run refuses to start while any of these is missing, so no invoice goes out incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from stdnum.eu import at_02, vat

from billing_core.domain.errors import BillingDomainError, ConfigurationError

# Seller field -> the setting that sets it (for the message that names what is missing).
SETTING_NAMES = {
    "name": "SELLER_NAME",
    "street": "SELLER_STREET",
    "postal_code": "SELLER_POSTAL_CODE",
    "city": "SELLER_CITY",
    "country": "SELLER_COUNTRY",
    "vat_id": "SELLER_VAT_ID",
    "tax_number": "SELLER_TAX_NUMBER",
    "contact_name": "SELLER_CONTACT_NAME",
    "contact_phone": "SELLER_CONTACT_PHONE",
    "contact_email": "SELLER_CONTACT_EMAIL",
    "sepa_creditor_id": "SEPA_CREDITOR_ID",
}
_ALWAYS_NEEDED = ("name", "street", "postal_code", "city", "country", "contact_name", "contact_phone", "contact_email")


class SellerIncomplete(BillingDomainError):
    """A field the invoice must carry about the seller is not set."""


@dataclass(frozen=True)
class Seller:
    """The operator's company as its invoices name it."""

    name: str | None = None
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None
    vat_id: str | None = None  # USt-IdNr, e.g. DE136695976
    tax_number: str | None = None  # Steuernummer, where there is no USt-IdNr
    contact_name: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None
    sepa_creditor_id: str | None = None  # Gläubiger-Identifikationsnummer, for SEPA direct debits

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, value.strip() if isinstance(value, str) and value.strip() else None)
        if self.vat_id is not None:
            object.__setattr__(self, "vat_id", valid_vat_id(self.vat_id, "SELLER_VAT_ID"))
        if self.sepa_creditor_id is not None:
            if not at_02.is_valid(self.sepa_creditor_id):
                raise ConfigurationError(f"SEPA_CREDITOR_ID {self.sepa_creditor_id!r} is not a SEPA creditor id")
            object.__setattr__(self, "sepa_creditor_id", at_02.compact(self.sepa_creditor_id))

    def missing(self) -> list[str]:
        """The settings an invoice needs that are not set (``[]``: complete)."""
        missing = [SETTING_NAMES[name] for name in _ALWAYS_NEEDED if getattr(self, name) is None]
        if self.vat_id is None and self.tax_number is None:
            missing.append("SELLER_VAT_ID or SELLER_TAX_NUMBER")
        return missing

    def require_complete(self) -> None:
        """``SellerIncomplete`` naming every missing setting."""
        missing = self.missing()
        if missing:
            raise SellerIncomplete(
                "the invoices cannot name the seller as §14 UStG requires; set " + ", ".join(missing)
            )


def valid_vat_id(value: str, what: str = "VAT id") -> str:
    """An EU VAT id (format and check digit), compacted (``DE 136 695 976`` -> ``DE136695976``)."""
    if not vat.is_valid(value):
        raise ConfigurationError(f"{what} {value!r} is not a valid EU VAT id (country prefix, format, check digit)")
    compact: str = vat.compact(value)
    return compact


def seller_fields(seller: Seller | None) -> dict[str, str]:
    """What the Stripe invoice shows about the seller beyond its account settings: the tax number (§14 (4) 2)."""
    if seller is None:
        return {}
    if seller.vat_id:
        return {"USt-IdNr.": seller.vat_id}
    return {"Steuernummer": seller.tax_number} if seller.tax_number else {}
