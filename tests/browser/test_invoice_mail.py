"""Invoice e-mail in Chromium: the admin chooses the invoice recipients on the Billing tab; the operator sees what
became of an invoice's e-mail, finds it among the undelivered ones and sends it again to another address."""

from __future__ import annotations

import json

import requests
from playwright.sync_api import expect

from billing_core.domain.records import Account
from tests.browser.test_operator_page import open_operator_page, section


def test_the_admin_sets_the_invoice_recipients_on_the_billing_tab_a_bad_address_is_named_and_nothing_saved(
    billing_page, shot
):
    from local_stack.demo import worker_services

    page = billing_page.page
    stack = billing_page.stack
    services = worker_services(stack)
    admin = stack.admin
    billing_page.open().sign_in_as_admin()
    recipients = billing_page.section("Rechnungsempfänger")
    expect(recipients).to_contain_text("Noch keine E-Mail-Adresse hinterlegt.")

    # No account yet (no payment method saved): the API's 409, said in the page's words.
    recipients.get_by_role("button", name="Rechnungsempfänger ändern").click()
    field = recipients.get_by_label("E-Mail-Adressen (eine pro Zeile oder durch Kommas getrennt, höchstens 10)")
    field.fill("buchhaltung@kunde.example")
    recipients.get_by_role("button", name="Speichern").click()
    expect(recipients.get_by_role("alert")).to_have_text(
        "Bitte hinterlegen Sie zuerst eine Zahlungsmethode; danach können Sie die Rechnungsempfänger festlegen."
    )

    # The account as a saved card leaves it, with its e-mail bounced once.
    services.accounts.put(Account(admin.sub, email=admin.email, undeliverable_emails=(admin.email,)))
    page.reload()
    recipients = billing_page.section("Rechnungsempfänger")
    listed = recipients.get_by_role("list", name="E-Mail-Adressen der Rechnungsempfänger").get_by_role("listitem")
    expect(listed).to_have_count(1)
    expect(listed.first).to_have_text(f"{admin.email}nicht zustellbar")
    expect(recipients).to_contain_text("An nicht zustellbare Adressen wird nichts mehr gesendet")
    shot("1-undeliverable")

    # An empty field is caught here; a bad address is named by the API, and nothing changes.
    recipients.get_by_role("button", name="Rechnungsempfänger ändern").click()
    expect(field).to_have_value(admin.email)
    field.fill(" ,\n")
    recipients.get_by_role("button", name="Speichern").click()
    expect(recipients.get_by_role("alert")).to_have_text("Bitte geben Sie mindestens eine E-Mail-Adresse an.")
    field.fill("buchhaltung@kunde.example\nchef(at)kunde.example")
    recipients.get_by_role("button", name="Speichern").click()
    alert = recipients.get_by_role("alert")
    expect(alert).to_contain_text("Nicht gespeichert: ")
    expect(alert).to_contain_text("chef(at)kunde.example")
    expect(field).to_have_attribute("aria-invalid", "true")
    shot("2-bad-address")
    account = services.accounts.get(admin.sub)
    assert (account.invoice_emails, account.undeliverable_emails) == ((), (admin.email,))

    # A good list, one per line and comma-separated, the same address twice: saved once each, bounce forgotten.
    field.fill("Buchhaltung@Kunde.example, chef@kunde.example\nbuchhaltung@kunde.example")
    recipients.get_by_role("button", name="Speichern").click()
    expect(recipients.get_by_role("status")).to_have_text("Die Rechnungsempfänger wurden gespeichert.")
    expect(field).to_be_hidden()
    expect(listed).to_have_text(["buchhaltung@kunde.example", "chef@kunde.example"])
    expect(recipients.locator(".badge")).to_have_count(0)
    shot("3-saved")
    account = services.accounts.get(admin.sub)
    assert account.invoice_emails == ("buchhaltung@kunde.example", "chef@kunde.example")
    assert account.undeliverable_emails == ()
    [entry] = [e for e in services.audit.entries(account_id=admin.sub, limit=5) if e.actor.startswith("admin:")]
    assert entry.reason == "changed on the Billing tab"

    # What the page shows is what the API has, after a reload too, and in English.
    page.reload()
    expect(listed).to_have_text(["buchhaltung@kunde.example", "chef@kunde.example"])
    page.get_by_label("Sprache").select_option("en")
    english = billing_page.section("Invoice recipients")
    expect(english.get_by_role("button", name="Change invoice recipients")).to_be_visible()
