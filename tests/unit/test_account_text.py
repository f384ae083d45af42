"""The texts an operator sets on an account (issue 34): normalised, without controls or bidi controls,
limited to what the invoice font shows; invite e-mails plain addresses; the CLI never prints a raw control."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import pytest

from billing_cli import accounts_command
from billing_core.domain.account_profile import (
    InvalidAccountField,
    PostalAddress,
    email_key,
    pdf_printable,
    valid_address,
    valid_buyer_reference,
    valid_email,
    valid_name,
)
from billing_core.domain.costs import CostAttribution
from billing_core.domain.records import Account
from billing_core.errors import InvalidStoredRecord
from billing_core.use_cases.operator_accounts import AccountProfile, OperatorAccounts
from tests.support.fakes import (
    FakeAccountRepository,
    FakeAuditLog,
    FakeMemberships,
    FakePaymentGateway,
    FakeUserDirectory,
)

BIDI_CONTROLS = [0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069]
C0_CONTROLS = [0x00, 0x07, 0x09, 0x0A, 0x0D, 0x1B, 0x1F]  # inside the text: tab and line breaks too
C1_CONTROLS = [0x7F, 0x80, 0x85, 0x9B, 0x9F]  # DEL and C1 (NEL, CSI)
OTHER_INVISIBLES = [0x00AD, 0x200B, 0x200D, 0x2060, 0xFEFF, 0x2028, 0x2029]

# Every operator text the invoice or a terminal shows, through its validator.
TEXT_FIELDS = {
    "name": valid_name,
    "address": lambda text: valid_address(text, "10115", "Berlin").line1,
    "postal code": lambda text: valid_address("Musterstraße 1", text, "Berlin").postal_code,
    "city": lambda text: valid_address("Musterstraße 1", "10115", text).city,
    "buyer reference": valid_buyer_reference,
}

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("code", BIDI_CONTROLS, ids=lambda code: f"U+{code:04X}")
def test_a_bidi_control_is_refused_naming_it(field, code):
    with pytest.raises(InvalidAccountField, match=rf"U\+{code:04X} .*bidirectional control") as refused:
        TEXT_FIELDS[field](f"Kunde {chr(code)}GA edniK")

    assert refused.value.field == field


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("code", C0_CONTROLS + C1_CONTROLS, ids=lambda code: f"U+{code:04X}")
def test_a_control_character_is_refused_naming_it(field, code):
    with pytest.raises(InvalidAccountField, match=rf"control character U\+{code:04X}") as refused:
        TEXT_FIELDS[field](f"Kunde{chr(code)}AG")

    assert refused.value.field == field


@pytest.mark.parametrize("code", OTHER_INVISIBLES, ids=lambda code: f"U+{code:04X}")
def test_an_invisible_formatting_character_or_line_separator_is_refused(code):
    with pytest.raises(InvalidAccountField, match=rf"U\+{code:04X}"):
        valid_name(f"Kunde{chr(code)}AG")


@pytest.mark.parametrize(
    "text, code",
    [
        ("Pizza 🍕 GmbH", 0x1F355),
        ("🚀" * 200, 0x1F680),
        ("北京有限公司", 0x5317),
        ("Kunde \U0010fffd", 0x10FFFD),  # private use
        ("Kunde \u0378", 0x0378),  # unassigned
    ],
)
def test_a_character_the_invoice_font_cannot_show_is_refused_naming_it(text, code):
    with pytest.raises(
        InvalidAccountField, match=rf"name: U\+{code:04X} .*is not a character the invoice PDF can show"
    ):
        valid_name(text)


def test_letters_of_other_scripts_and_symbols_the_font_has_are_accepted():
    for text in (
        "Müller & Söhne GmbH",
        "Łódź Sp. z o.o.",
        "Ελληνική Α.Ε.",
        "ООО «Ромашка»",
        "שלום בע״מ",
        "شركة",
        "😀 AG",
    ):
        assert valid_name(text) == text


def test_texts_are_nfc_normalised_and_stripped():
    decomposed = "  Cafe\u0301 Mu\u0308ller GmbH \n"

    assert valid_name(decomposed) == "Café Müller GmbH" == unicodedata.normalize("NFC", "Café Müller GmbH")
    assert valid_address(" Mu\u0308hlenweg 1 ", " 10115 ", " Mu\u0308nchen ") == PostalAddress(
        "Mühlenweg 1", "10115", "München"
    )
    assert valid_buyer_reference(" 991-12345-67 ") == "991-12345-67"


def test_the_profile_from_the_cli_or_api_refuses_a_right_to_left_override():
    with pytest.raises(InvalidAccountField, match=r"name: must not contain U\+202E \(RIGHT-TO-LEFT OVERRIDE\)"):
        AccountProfile.from_text(name="Evil\u202eGmbH", email="ops@beispiel.de")
    with pytest.raises(InvalidAccountField, match=r"city: .*U\+202E"):
        AccountProfile.from_text(address=("Weg 1", "10115", "Ber\u202elin"))


def test_the_font_table_is_what_the_installed_dejavu_sans_maps():
    fonts = [DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"]
    if not all(font.exists() for font in fonts):
        pytest.skip("DejaVu Sans is not installed (make pdf-tools installs fonts-dejavu-core)")
    from fontTools.ttLib import TTFont

    book, bold = (set(TTFont(font).getBestCmap()) for font in fonts)
    expected = {code for code in book & bold if unicodedata.category(chr(code))[0] in "LMNPS"} | {
        code for code in book & bold if unicodedata.category(chr(code)) == "Zs"
    }

    assert {code for code in range(0x110000) if pdf_printable(chr(code))} == expected


# --- e-mail addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "<script>@x.de",
        '"<b>"@x.de',
        "a@x.de<img src=x>",
        "<a@x.de>",
        "Anna <anna@x.de>",
        '"anna"@x.de',
        "an na@x.de",
        "anna@x .de",
        "anna\u3000x@x.de",  # an ideographic space
        "anna@@x.de",
        "anna@x@y.de",
        "a\u202e@x.de",
        "anna@x\u200b.de",
        "anna(comment)@x.de",
        "anna@[127.0.0.1]",
        "anna@1.2.3.4",
        "anna@localhost",
        "anna@-x.de",
        "anna@x-.de",
        "anna@x_y.de",
        "anna@x..de",
        "anna@x.de.",
        ".anna@x.de",
        "anna.@x.de",
        "an..na@x.de",
        "ännä@x.de",  # the local part is ASCII (no SMTPUTF8)
        "anna@straße.de",  # IDNA 2003 would send it to strasse.de
        "anna@ｘ.de",  # fullwidth: nameprep would change it too
        "a" * 65 + "@x.de",
        "anna@" + "x" * 64 + ".de",  # a label is 63 characters at most
        "",
    ],
)
def test_an_address_that_is_not_a_plain_address_is_refused(address):
    with pytest.raises(InvalidAccountField) as refused:
        valid_email(address)

    assert refused.value.field == "email"
    assert "<" not in refused.value.problem and '"' not in refused.value.problem  # never echoes the HTML


def test_the_refusal_names_the_character_in_the_local_part():
    with pytest.raises(InvalidAccountField, match=r"email: the part before @ .* not U\+003C \(LESS-THAN SIGN\)"):
        valid_email("<script>@x.de")
    with pytest.raises(InvalidAccountField, match=r"not U\+0022 \(QUOTATION MARK\)"):
        valid_email('"<b>"@x.de')


@pytest.mark.parametrize(
    "address, stored",
    [
        ("Ops@Example.COM", "Ops@example.com"),
        ("  anna.berg@beispiel.de ", "anna.berg@beispiel.de"),
        ("o'brien+rechnung@sub.example.co.uk", "o'brien+rechnung@sub.example.co.uk"),
        ("!#$%&'*+/=?^_`{|}~-@x.de", "!#$%&'*+/=?^_`{|}~-@x.de"),
        ("a" * 64 + "@x.de", "a" * 64 + "@x.de"),
        ("anna@MÜLLER.de", "anna@müller.de"),  # a Unicode domain is kept, lower-cased
        ("anna@xn--strae-oqa.de", "anna@xn--strae-oqa.de"),  # straße.de, given in its encoded form
        ("anna@x.xn--p1ai", "anna@x.xn--p1ai"),
    ],
)
def test_a_plain_address_is_kept_as_given_with_a_lower_cased_domain(address, stored):
    assert valid_email(address) == stored


def test_an_address_is_at_most_254_characters():
    domain = ".".join(["x" * 63, "y" * 63, "z" * 60, "de"])  # 191 characters
    longest = "a" * 62 + "@" + domain

    assert len(longest) == 254 and valid_email(longest) == longest
    with pytest.raises(InvalidAccountField, match="254"):
        valid_email("a" + longest)


def test_an_invitation_with_html_in_the_address_is_refused_before_anyone_is_invited():
    users = FakeUserDirectory()
    operator = OperatorAccounts(
        FakeAccountRepository(),
        FakePaymentGateway(),
        FakeAuditLog(),
        attribution=CostAttribution.payer(),
        memberships=FakeMemberships(),
        users=users,
    )
    operator.create(AccountProfile(name="Kunde GmbH", email="ops@kunde.de"), actor="operator:test", account_id="k-1")

    with pytest.raises(InvalidAccountField, match="email: the part before @"):
        operator.invite("k-1", "<script>@x.de", actor="operator:test")

    assert not users.admins


def test_email_key_compares_addresses_case_insensitively():
    assert email_key("Anna.Berg@Beispiel.DE") == email_key("anna.berg@beispiel.de") == "anna.berg@beispiel.de"
    assert email_key(" ANNA@X.DE ") == "anna@x.de"
    assert email_key("anna@MÜLLER.de") == email_key("anna@xn--mller-kva.de") == "anna@xn--mller-kva.de"
    assert email_key("STRASSE@X.DE") == email_key("straße@x.de")  # casefolded, not just lower-cased
    assert email_key("not an address") == "not an address"  # any stored value, never an error
    assert email_key(valid_email("Ops@Example.COM")) == email_key("ops@example.com")


# --- the CLI -----------------------------------------------------------------------------------


STORED_BAD = Account(
    "acct-evil",
    name="Evil\u202eHbmG\u0007 Kunde",
    email="ops\u200f@evil.de",
    address=PostalAddress("Weg\u202d 1", "10115", "Ber\x1b[31mlin"),
    buyer_reference="\u2066ref\u2069",
    country="DE",
)


def _use_cases(*accounts):
    def get(account_id):
        return next(account for account in accounts if account.account_id == account_id)

    return SimpleNamespace(operator_accounts=SimpleNamespace(all_accounts=lambda: list(accounts), get=get))


def _run(command, account="acct-evil"):
    out, err = io.StringIO(), io.StringIO()
    code = command(SimpleNamespace(account=account), _use_cases(STORED_BAD), out, err)
    return code, out.getvalue()


@pytest.mark.parametrize("command", [accounts_command.list_command, accounts_command.show_command])
def test_the_cli_escapes_the_controls_of_an_already_stored_name(command):
    code, printed = _run(command)

    assert code == 0
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in printed.replace("\n", ""))
    assert "Evil\\u202eHbmG\\x07 Kunde" in printed
    assert "ops\\u200f@evil.de" in printed


def test_the_cli_shows_every_field_of_a_stored_account_escaped():
    _, printed = _run(accounts_command.show_command)

    assert "Weg\\u202d 1, 10115 Ber\\x1b[31mlin" in printed and "\\u2066ref\\u2069" in printed


def test_an_unreadable_stored_account_is_listed_escaped_too():
    broken = InvalidStoredRecord("accounts", "acct\u202ex", "name", "is bad \u202e", record_id="acct\u202ex")
    out = io.StringIO()

    code = accounts_command.list_command(SimpleNamespace(), _use_cases(broken), out, io.StringIO())

    assert code == 1 and "\u202e" not in out.getvalue() and "\\u202e" in out.getvalue()


def test_shown_keeps_printable_text_and_escapes_the_rest():
    assert accounts_command.shown("Müller & Söhne · שלום 😀") == "Müller & Söhne · שלום 😀"
    assert accounts_command.shown("a\u202eb\tc\x85\U000e0041") == "a\\u202eb\\tc\\x85\\U000e0041"
