"""Credit notes in Chromium: the operator credits a line after seeing Stripe's preview; the customer's Billing tab
lists the credit notes of their invoice, says it is corrected or cancelled, and downloads the credit note's files.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.test_operator_page import open_operator_page, section
from tests.e2e.test_operator_accounts_e2e import billing
from tests.integration.test_billing_run_resume import new_account, seed_period

VISA = "4242 4242 4242 4242"
TYPE_CODE_381 = b"<ram:TypeCode>381</ram:TypeCode>"  # EN 16931: a credit note


def with_address(services, account_id: str) -> None:
    """Give the account what an e-invoice names the buyer by."""
    code, _, err = billing(
        services,
        "accounts",
        "update",
        account_id,
        "--name",
        "Beispiel GmbH",
        "--country",
        "DE",
        "--address",
        "Hauptstraße 1",
        "--postal-code",
        "10115",
        "--city",
        "Berlin",
    )
    assert code == 0, err


def paid_invoice(stack, services, account_id: str):
    """Last month billed for ``account_id`` and paid (37.74 net + 19 % VAT = 44.91)."""
    from tests.e2e.test_billing_run import record_with, status_is

    period = seed_period(stack)
    code, _, err = billing(services, "run", "--period", period.label, "--wait", "--timeout", "60")
    assert code == 0, err
    record = record_with(services, account_id, period, status_is("paid"))
    assert record.amount == Decimal("44.91")
    return record


def saved(download) -> bytes:
    return Path(download.path()).read_bytes()


def test_the_operator_credits_a_line_after_confirming_stripes_preview_and_the_credit_note_is_listed_with_its_files(
    page, clean_stack, shot, requested_urls
):
    from local_stack.demo import worker_services

    services = worker_services(clean_stack)
    account_id = new_account(clean_stack, services)
    with_address(services, account_id)
    record = paid_invoice(clean_stack, services, account_id)

    def stripe_notes():
        return clean_stack.stripe_client().v1.credit_notes.list(params={"invoice": record.stripe.invoice_id}).data

    open_operator_page(page, clean_stack)
    invoices = section(page, "Rechnungen aller Konten")
    invoices.get_by_role("button", name=f"Rechnung {record.invoice_id} öffnen").click()
    view = section(page, f"Rechnung {record.stripe.number}")
    expect(view).to_contain_text("Keine Stornorechnung und keine Rechnungskorrektur zu dieser Rechnung.")
    form = page.get_by_role("form", name="Rechnung korrigieren oder stornieren")
    expect(form).to_contain_text("Die Rechnung ist bezahlt")

    # No reason: said so, and nothing asked of the API.
    form.get_by_label("Netto-Betrag für base-fee").fill("5,00")
    form.get_by_role("button", name="Vorschau").click()
    expect(form.get_by_role("alert")).to_have_text("Bitte geben Sie einen Grund an.")
    assert not [url for url in requested_urls if "/credit-notes/preview" in url]

    # More than the line: the API's 409 and its reason are shown, not swallowed.
    form.get_by_label("Netto-Betrag für base-fee").fill("25.00")
    form.get_by_label("Grund (steht auf dem Beleg)").fill("Kulanz")
    form.get_by_role("button", name="Vorschau").click()
    expect(form.get_by_role("alert")).to_contain_text("at most 20.00 EUR is left to credit")

    form.get_by_label("Netto-Betrag für base-fee").fill("5,00")
    form.get_by_role("button", name="Vorschau").click()
    confirmation = section(page, "Bestätigen: so würde Stripe die Rechnung korrigieren")
    expect(confirmation).to_contain_text("Rechnungskorrektur")
    expect(confirmation).to_contain_text("Erstattung")
    figures = confirmation.locator("dl")
    expect(figures).to_contain_text("Netto5,00 €")
    expect(figures).to_contain_text("USt.0,95 €")
    expect(figures).to_contain_text("Brutto5,95 €")
    expect(confirmation.locator("tbody tr")).to_have_count(1)
    expect(confirmation.locator("tbody tr")).to_contain_text("base-fee")
    shot("1-confirmation")
    assert stripe_notes() == []  # the preview issued nothing

    confirmation.get_by_role("button", name="Bestätigen").click()

    expect(view.get_by_role("status")).to_contain_text(re.compile(r"Rechnungskorrektur \S+ ausgestellt\."))
    [stripe_note] = stripe_notes()
    assert stripe_note.total == 595
    row = view.locator("tbody tr", has_text=stripe_note.number)
    for text in ("Rechnungskorrektur", "Ausgestellt", "5,00 €", "0,95 €", "5,95 €", "Kulanz", "Erstattung"):
        expect(row).to_contain_text(text)
    # Its e-mail's state (the worker mails it to the account's address): one badge, whichever state it is in now.
    expect(row.locator("[data-mail-state]")).to_have_count(1)
    expect(confirmation).to_be_hidden()
    expect(view).to_contain_text("Zurückgenommen (brutto)5,95 €")
    expect(invoices.locator("tbody tr", has_text=record.invoice_id)).to_contain_text("BezahltKorrigiert")
    expect(section(page, "Protokoll")).to_contain_text("invoice.credit")
    shot("2-issued")

    with page.expect_download() as xml:
        row.get_by_role("button", name="XML").click()
    assert xml.value.suggested_filename == f"Rechnungskorrektur-{stripe_note.number}.xml"
    body = saved(xml.value)
    assert TYPE_CODE_381 in body and record.stripe.number.encode() in body
    with page.expect_download() as pdf:
        row.get_by_role("button", name="PDF").click()
    assert saved(pdf.value).startswith(b"%PDF")

    page.locator("#language").select_option("en")
    english = section(page, f"Invoice {record.stripe.number}")
    expect(english.locator("tbody tr", has_text=stripe_note.number)).to_contain_text("Credit note (partial)")


def test_the_operator_cancels_an_unpaid_invoice_in_full_and_what_is_due_is_reduced(page, clean_stack, shot):
    from local_stack.demo import worker_services
    from tests.e2e.test_billing_run import record_with, status_is

    services = worker_services(clean_stack)
    account_id = new_account(clean_stack, services, card="pm_card_chargeCustomerFail")
    with_address(services, account_id)
    period = seed_period(clean_stack)
    code, _, err = billing(services, "run", "--period", period.label, "--wait", "--timeout", "60")
    assert code == 0, err
    record = record_with(services, account_id, period, status_is("payment_failed"))

    open_operator_page(page, clean_stack)
    invoices = section(page, "Rechnungen aller Konten")
    invoices.get_by_role("button", name=f"Rechnung {record.invoice_id} öffnen").click()
    form = page.get_by_role("form", name="Rechnung korrigieren oder stornieren")
    expect(form).to_contain_text("der offene Betrag wird um den Betrag gemindert")
    expect(form.get_by_label("Ausgleich")).to_be_hidden()  # nothing to choose: what is due is reduced
    form.get_by_label("Ganze Rechnung stornieren (Stornorechnung)").check()
    expect(form.get_by_label("Netto-Betrag für base-fee")).to_be_hidden()
    form.get_by_label("Grund (steht auf dem Beleg)").fill("Doppelt berechnet")
    form.get_by_role("button", name="Vorschau").click()

    confirmation = section(page, "Bestätigen: so würde Stripe die Rechnung korrigieren")
    expect(confirmation).to_contain_text("Stornorechnung – Offener Betrag gemindert")
    expect(confirmation.locator("dl")).to_contain_text("Brutto44,91 €")
    expect(confirmation.locator("tbody tr")).to_have_count(2)  # base fee and AWS, each in full
    confirmation.get_by_role("button", name="Bestätigen").click()

    view = section(page, f"Rechnung {record.stripe.number}")
    expect(view.get_by_role("status")).to_contain_text(re.compile(r"Stornorechnung \S+ ausgestellt\."))
    expect(view.locator("tbody tr", has_text="Stornorechnung")).to_contain_text("Offener Betrag gemindert")
    expect(invoices.locator("tbody tr", has_text=record.invoice_id)).to_contain_text("Storniert")
    shot("cancelled")
    [stripe_note] = clean_stack.stripe_client().v1.credit_notes.list(params={"invoice": record.stripe.invoice_id}).data
    assert (stripe_note.total, stripe_note.pre_payment_amount) == (4491, 4491)

    # Nothing is left: a second attempt is refused with the API's reason, shown.
    form.get_by_label("Ganze Rechnung stornieren (Stornorechnung)").check()
    form.get_by_label("Grund (steht auf dem Beleg)").fill("noch einmal")
    form.get_by_role("button", name="Vorschau").click()
    expect(form.get_by_role("alert")).to_contain_text("nothing is left to credit")


def test_the_billing_tab_lists_the_credit_note_of_a_corrected_invoice_and_downloads_its_xrechnung(billing_page, shot):
    from local_stack.demo import worker_services

    page = billing_page.page
    stack = billing_page.stack
    billing_page.open().sign_in_as_admin()
    billing_page.add_card(VISA)
    expect(billing_page.section("Zahlungsmethode")).to_contain_text("Visa •••• 4242")
    services = worker_services(stack)
    with_address(services, stack.admin.sub)
    period = billing_page.run_billing()
    billing_page.reload_until_invoice_status("Bezahlt")
    invoice_id = f"inv_{period.label}_{stack.admin.sub}"
    expect(page.locator("tr.credit-notes")).to_have_count(0)

    credit = ["invoices", "credit", invoice_id, "--line", "base-fee", "--amount", "5.00", "--reason", "Kulanz", "--yes"]
    code, _, err = billing(services, *credit)
    assert code == 0, err
    [note] = services_notes(services, invoice_id)
    page.reload()

    row = billing_page.invoice_rows().first
    expect(row.locator(".badge")).to_have_text(["Bezahlt", "Korrigiert"])
    notes = page.get_by_role("list", name=re.compile(r"^Stornorechnungen und Rechnungskorrekturen zu Rechnung "))
    expect(notes.get_by_role("listitem")).to_have_count(1)
    item = notes.get_by_role("listitem").first
    for text in ("Rechnungskorrektur", note.number, "5,95 € brutto", "vom "):
        expect(item).to_contain_text(text)
    shot("1-corrected")

    with page.expect_download() as xml:
        item.get_by_role("button", name=f"Rechnungskorrektur {note.number} als XRechnung (XML)").click()
    body = saved(xml.value)
    assert TYPE_CODE_381 in body and note.number.encode() in body
    assert xml.value.suggested_filename == f"Rechnungskorrektur-{note.number}.xml"
    with page.expect_download() as pdf:
        item.get_by_role("button", name=f"Rechnungskorrektur {note.number} als ZUGFeRD-PDF").click()
    assert saved(pdf.value).startswith(b"%PDF")


def test_an_invoice_cancelled_in_full_shows_cancelled_and_its_stornorechnung(billing_page, shot):
    from local_stack.demo import worker_services

    page = billing_page.page
    stack = billing_page.stack
    billing_page.open().sign_in_as_admin()
    billing_page.add_card(VISA)
    expect(billing_page.section("Zahlungsmethode")).to_contain_text("Visa •••• 4242")
    services = worker_services(stack)
    with_address(services, stack.admin.sub)
    period = billing_page.run_billing()
    billing_page.reload_until_invoice_status("Bezahlt")
    invoice_id = f"inv_{period.label}_{stack.admin.sub}"

    code, _, err = billing(services, "invoices", "cancel", invoice_id, "--reason", "Doppelt berechnet", "--yes")
    assert code == 0, err
    [note] = services_notes(services, invoice_id)
    page.reload()

    row = billing_page.invoice_rows().first
    expect(row.locator(".badge")).to_have_text(["Bezahlt", "Storniert"])
    item = page.locator("tr.credit-notes li")
    expect(item).to_contain_text("Stornorechnung")
    expect(item).to_contain_text("44,91 € brutto")
    shot("1-cancelled")

    page.get_by_label("Sprache").select_option("en")
    row = page.get_by_role("region", name="Invoice history").locator("tbody tr:not(.credit-notes)").first
    expect(row.locator(".badge")).to_have_text(["Paid", "Cancelled"])
    expect(page.locator("tr.credit-notes li")).to_contain_text(f"Credit note (full){note.number}")
    expect(page.get_by_role("button", name=f"Credit note (full) {note.number} as XRechnung (XML)")).to_be_visible()


def services_notes(services, invoice_id: str):
    """The invoice's credit notes as the records have them."""
    from billing_core.bootstrap import WorkerUseCases

    return WorkerUseCases(services).credit_notes.notes_of(invoice_id)


def test_the_billing_tab_says_what_the_customer_balance_did_to_an_invoice(billing_page, shot):
    from local_stack.demo import worker_services

    page = billing_page.page
    stack = billing_page.stack
    billing_page.open().sign_in_as_admin()
    billing_page.add_card(VISA)
    expect(billing_page.section("Zahlungsmethode")).to_contain_text("Visa •••• 4242")
    services = worker_services(stack)
    period = billing_page.run_billing()
    billing_page.reload_until_invoice_status("Bezahlt")
    account_id, invoice_id = stack.admin.sub, f"inv_{period.label}_{stack.admin.sub}"

    # As the invoice job records it when Stripe deducted a credit from the balance at finalization.
    services.invoices.update(account_id, invoice_id, {"balance_applied": Decimal("-5.95")})
    page.reload()
    hint = billing_page.invoice_rows().first.locator(".balance-hint")
    expect(hint).to_have_text("Guthaben 5,95 € verrechnet, zu zahlen 38,96 €")  # 44.91 - 5.95
    shot("1-credit-deducted")

    # As it records an amount due below Stripe's minimum charge, carried to the next invoice.
    services.invoices.update(
        account_id, invoice_id, {"balance_applied": Decimal(0), "carried_to_balance": Decimal("37.74")}
    )
    page.reload()
    expect(billing_page.invoice_rows().first.locator(".balance-hint")).to_have_text(
        "Unter dem Mindestbetrag: wird mit der nächsten Rechnung eingezogen"
    )
