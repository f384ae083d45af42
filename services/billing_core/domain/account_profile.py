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

Every text is NFC-normalised and stripped of surrounding whitespace. Control characters (C0, DEL,
C1), bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) and the other
invisible formatting characters are refused: they would reorder or hide text in a terminal and in
the invoice. Texts the invoice PDF shows (name, address, buyer reference, e-mail) are limited to the
characters its font has (``pdf_printable``), so a name is never printed as empty boxes.
"""

from __future__ import annotations

import re
import string
import unicodedata
from bisect import bisect_right
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
# An RFC 5322 dot-atom: ASCII letters, digits and these symbols, no leading, trailing or double dot.
_EMAIL_LOCAL_SYMBOLS = "!#$%&'*+/=?^_`{|}~.-"
_EMAIL_LOCAL_CHARACTERS = frozenset(string.ascii_letters + string.digits + _EMAIL_LOCAL_SYMBOLS)
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TOP_LEVEL_DOMAIN = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_MAX_EMAIL = 254
_MAX_TEXT = 200
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# What the invoice PDF's font shows: the code points DejaVu Sans 2.37 (Debian bookworm's
# fonts-dejavu-core, the worker image's only font) maps in both Book and Bold (the buyer's name is
# bold) that are letters, marks, numbers, punctuation, symbols or spaces (Unicode categories L, M, N,
# P, S, Zs). tests/unit/test_account_text.py checks this list against the installed font's cmap.
_PDF_FONT_RANGES = """
    0020-007E 00A0-00AC 00AE-02E9 02EC-02EE 02F3 02F7 0300-034F 0351-0353 0357-0358 035A 035C-0362 0370-0377
    037A-037F 0384-038A 038C 038E-03A1 03A3-0525 0531-0556 0559-055F 0561-0587 0589-058A 05B0-05C3 05C6-05C7
    05D0-05EA 05F0-05F4 0606-0607 0609-060A 060C 0615 061B 061F 0621-063A 0640-0655 0657 065A 0660-0670 0674
    0679-06BF 06C6-06C8 06CB-06CC 06CE 06D0 06D5 06F0-06F9 07C0-07E7 07EB-07F5 07F8-07FA 0E3F 0E81-0E82 0E84
    0E87-0E88 0E8A 0E8D 0E94-0E97 0E99-0E9F 0EA1-0EA3 0EA5 0EA7 0EAA-0EAB 0EAD-0EB9 0EBB-0EBD 0EC0-0EC4 0EC6
    0EC8-0ECD 0ED0-0ED9 0EDC-0EDD 10A0-10C5 10D0-10FC 1401-1407 1409-141B 141D-1435 1437-144A 144C-1452 1454-14BD
    14C0-14EA 14EC-1507 1510-153E 1540-1550 1552-156A 1574-1585 158A-1596 15A0-15AF 15DE 15E1 1646-1647 166E-1676
    1680-169C 1D00-1D14 1D16-1D23 1D26-1D2E 1D30-1D5B 1D5D-1D6A 1D77-1D78 1D7B 1D7D 1D85 1D9B-1DBF 1DC4-1DC9
    1E00-1EFB 1F00-1F15 1F18-1F1D 1F20-1F45 1F48-1F4D 1F50-1F57 1F59 1F5B 1F5D 1F5F-1F7D 1F80-1FB4 1FB6-1FC4
    1FC6-1FD3 1FD6-1FDB 1FDD-1FEF 1FF2-1FF4 1FF6-1FFE 2000-200A 2010-2027 202F-205F 2070-2071 2074-208E 2090-209C
    20A0-20B5 20B8-20BA 20BD 20D0-20D1 20D6-20D7 20DB-20DC 20E1 2100-2109 210B-2149 214B 214E 2150-2185 2189
    2190-2311 2318-2319 231C-2321 2324-2328 232B-232C 2373-2375 237A 237D 2387 2394 239B-23AE 23CE-23CF 23E3 23E5
    23E8 2422-2423 2460-2469 2500-269C 269E-26B8 26C0-26C3 26E2 2701-2704 2706-2709 270C-2727 2729-274B 274D
    274F-2752 2756 2758-275E 2761-2794 2798-27AF 27B1-27BE 27C5-27C6 27E0 27E6-27EB 27F0-28FF 2906-2907 290A-290B
    2940-2941 2983-2984 29CE-29D5 29EB 29FA-29FB 2A00-2A02 2A0C-2A1C 2A2F 2A6A-2A6B 2A7D-2AA0 2AAE-2ABA 2AF9-2AFA
    2B00-2B1A 2B1F-2B24 2B53-2B54 2C60-2C77 2C79-2C7F 2D00-2D25 2D30-2D65 2D6F 2E18 2E1F 2E22-2E25 2E2E 4DC0-4DFF
    A4D0-A4FF A644-A647 A64C-A64D A650-A651 A654-A657 A662-A66E A68A-A68D A694-A695 A698-A699 A708-A716 A71B-A71F
    A722-A72B A730-A741 A746-A74B A74E-A753 A756-A757 A764-A767 A780-A783 A789-A78E A790-A791 A7A0-A7AA A7F8-A7FF
    FB00-FB06 FB13-FB17 FB1D-FB36 FB38-FB3C FB3E FB40-FB41 FB43-FB44 FB46-FB4F FB52-FBA3 FBAA-FBAD FBD3-FBDC
    FBDE-FBDF FBE4-FBE9 FBFC-FBFF FE00-FE0F FE20-FE23 FE70-FE74 FE76-FEFC FFFC-FFFD 10300-1031E 10320-10323
    1D300-1D356 1D538-1D539 1D53B-1D53E 1D540-1D544 1D546 1D54A-1D550 1D552-1D56B 1D7D8-1D7E1 1F030-1F093
    1F0A0-1F0AE 1F0B1-1F0BE 1F0C1-1F0CF 1F0D1-1F0DF 1F311-1F318 1F42D-1F42E 1F431 1F435 1F600-1F623 1F625-1F62B
    1F62D-1F640 1F643
"""


def _code_point_ranges(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``"0020-007E 00A0"`` as the first and the last code points of each range."""
    firsts, lasts = [], []
    for word in text.split():
        first, _, last = word.partition("-")
        firsts.append(int(first, 16))
        lasts.append(int(last or first, 16))
    return tuple(firsts), tuple(lasts)


_PDF_FONT_FIRSTS, _PDF_FONT_LASTS = _code_point_ranges(_PDF_FONT_RANGES)


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
    """A plain e-mail address ``local@domain.tld``, as given with the domain lower-cased.

    The local part is an RFC 5322 dot-atom (letters, digits and ``!#$%&'*+/=?^_`{|}~.-``, no leading,
    trailing or double dot; no quotes, so no quoted local part), at most 64 characters. The domain has
    two or more LDH labels (letters, digits, hyphens; 63 characters each), a top-level domain of letters
    (or an ``xn--`` one). A Unicode domain (``müller.de``) is accepted if the ``idna`` codec encodes it
    and decodes it back unchanged (IDNA 2003 would turn ``straße.de`` into ``strasse.de``, another
    domain: given as ``xn--strae-oqa.de`` it is accepted); it is kept in its Unicode form. The address is
    at most 254 characters, in the given and in the encoded form. Anything else (HTML, a display name,
    whitespace, angle brackets) is refused. Compare addresses with ``email_key``.
    """
    text = _text("email", value, limit=_MAX_EMAIL)
    if text.count("@") != 1:
        raise InvalidAccountField("email", "must be one plain address with one @ (name@example.de)")
    local, domain = text.split("@")
    bad = next((character for character in local if character not in _EMAIL_LOCAL_CHARACTERS), None)
    if bad is not None:
        raise InvalidAccountField(
            "email",
            f"the part before @ may contain only letters, digits and {_EMAIL_LOCAL_SYMBOLS}, not {_describe(bad)}",
        )
    if not 1 <= len(local) <= 64:
        raise InvalidAccountField("email", "the part before @ must have 1 to 64 characters")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidAccountField("email", "the part before @ must not start or end with a dot or have two in a row")
    domain = domain.lower()
    ascii_domain = _ascii_domain(domain)
    if len(local) + 1 + len(ascii_domain) > _MAX_EMAIL:
        raise InvalidAccountField("email", f"at most {_MAX_EMAIL} characters once the domain is encoded (IDNA)")
    return f"{local}@{domain}"


def email_key(address: str) -> str:
    """What two e-mail addresses are compared by ("one account per person"): the address casefolded.

    ``Ops@Example.DE`` and ``ops@example.de`` are one person; a Unicode domain is compared in its
    encoded (``xn--``) form, so ``müller.de`` and ``xn--mller-kva.de`` are one domain. Never raises:
    it takes any stored address, valid or not.
    """
    key = unicodedata.normalize("NFC", address).strip().casefold()
    local, at, domain = key.rpartition("@")
    if at and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return f"{local}{at}{domain}"


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
    text = _text("cost scope", value, shown_in_pdf=False)
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


def pdf_printable(character: str) -> bool:
    """Whether the invoice PDF's font shows ``character`` (one code point): see ``_PDF_FONT_RANGES``."""
    code = ord(character)
    index = bisect_right(_PDF_FONT_FIRSTS, code) - 1
    return index >= 0 and code <= _PDF_FONT_LASTS[index]


def _text(field: str, value: str, *, limit: int = _MAX_TEXT, shown_in_pdf: bool = True) -> str:
    """``value`` NFC-normalised and stripped; refused if empty, too long, with a control, bidi or
    formatting character, or (``shown_in_pdf``) with a character the invoice font does not have."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidAccountField(field, "must not be empty")
    text = unicodedata.normalize("NFC", value).strip()
    if len(text) > limit:
        raise InvalidAccountField(field, f"at most {limit} characters, got {len(text)}")
    for character in text:
        if character in _BIDI_CONTROLS:
            raise InvalidAccountField(
                field, f"must not contain {_describe(character)}: a bidirectional control reorders the text around it"
            )
        category = unicodedata.category(character)
        if category == "Cc" or category in ("Zl", "Zp"):
            raise InvalidAccountField(field, f"must not contain the control character {_describe(character)}")
        if category == "Cf":
            raise InvalidAccountField(
                field, f"must not contain the invisible formatting character {_describe(character)}"
            )
        if shown_in_pdf and not pdf_printable(character):
            raise InvalidAccountField(
                field,
                f"{_describe(character)} is not a character the invoice PDF can show (its font has no glyph for it)",
            )
    return text


def _ascii_domain(domain: str) -> str:
    """The domain as DNS has it (``xn--`` labels for Unicode ones); ``InvalidAccountField`` if it is none."""
    if domain.isascii():
        encoded = domain
    else:
        try:
            encoded = domain.encode("idna").decode("ascii")
            unchanged = encoded.encode("ascii").decode("idna") == domain
        except UnicodeError:
            unchanged = False
        if not unchanged:
            raise InvalidAccountField(
                "email",
                "the part after @ is not a domain name: a Unicode domain must encode for DNS (the idna codec) "
                "and back unchanged; give its xn-- form",
            )
    labels = encoded.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise InvalidAccountField(
            "email",
            "the part after @ must be a domain name: two or more labels of letters, digits and hyphens "
            "(no hyphen first or last, 63 characters at most) separated by dots",
        )
    if not _TOP_LEVEL_DOMAIN.fullmatch(labels[-1]):
        raise InvalidAccountField("email", "the part after @ must end in a top-level domain of letters (.de, .com)")
    if len(encoded) > 253:
        raise InvalidAccountField("email", "the part after @ must have at most 253 characters (encoded for DNS)")
    return encoded


def _describe(character: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``: a character named without printing it."""
    name = unicodedata.name(character, "")
    return f"U+{ord(character):04X} ({name})" if name else f"U+{ord(character):04X}"
