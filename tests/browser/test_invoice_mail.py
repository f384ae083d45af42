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


def operator_token(page) -> str:
    """The signed-in operator's access token, as the page keeps it."""
    return page.evaluate("JSON.parse(sessionStorage.getItem('billing.session')).accessToken")


def document_mail(stack, token: str, document_id: str) -> dict:
    response = requests.get(
        f"{stack.info['api_url']}/operator/documents/{document_id}/mail",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_operator_finds_a_bounced_invoice_among_the_undelivered_and_resends_it_to_another_address(
    page, clean_stack, shot
):
    from local_stack.demo import wait_for, worker_services
    from local_stack.mailbox import sent_messages
    from tests.e2e.test_billing_run import SETTLE_SECONDS, record_with, status_is
    from tests.e2e.test_corrections_e2e import german
    from tests.e2e.test_invoice_mail_e2e import _bounce, _sent_ids
    from tests.e2e.test_operator_accounts_e2e import billing
    from tests.integration.test_billing_run_resume import new_account, seed_period

    services = worker_services(clean_stack)
    account_id = new_account(clean_stack, services)
    german(services, account_id, invoice_emails=("buchhaltung@kunde.example",))
    period = seed_period(clean_stack)
    code, _, err = billing(services, "run", "--period", period.label, "--wait", "--timeout", "60")
    assert code == 0, err
    record = record_with(services, account_id, period, status_is("paid"))
    invoice_id = record.invoice_id
    [message_id] = wait_for(lambda: _sent_ids(services, invoice_id), SETTLE_SECONDS)
    # SES's hard bounce, as the configuration set's topic would carry it (moto has no event destinations).
    clean_stack.aws_client("sns").publish(
        TopicArn=clean_stack.info["mail"]["events_topic"],
        Message=json.dumps(_bounce(message_id, "buchhaltung@kunde.example")),
    )
    assert wait_for(lambda: services.accounts.get(account_id).undeliverable_emails or None, SETTLE_SECONDS)

    open_operator_page(page, clean_stack)
    undelivered = section(page, "Nicht zugestellt")
    row = undelivered.locator("tbody tr", has_text=invoice_id)
    expect(row).to_contain_text(account_id)
    expect(row).to_contain_text("550 5.1.1")
    accounts = section(page, "Kundenkonten")
    expect(accounts.locator("tbody tr", has_text=account_id)).to_contain_text(
        "Rechnungen an:buchhaltung@kunde.examplenicht zustellbar"
    )
    accounts.get_by_role("button", name=f"Bearbeiten {account_id}").click()
    edit = page.get_by_role("region", name=f"Kundenkonto {account_id} bearbeiten")
    expect(edit.get_by_label("Rechnungsempfänger")).to_have_value("buchhaltung@kunde.example")
    expect(edit).to_contain_text("Nicht zustellbar: buchhaltung@kunde.example nicht zustellbar")
    expect(edit.get_by_label("Nicht zustellbare Adressen wieder zulassen")).not_to_be_checked()
    shot("1-undelivered")
    edit.get_by_role("button", name="Abbrechen").click()

    row.get_by_role("button", name=f"Rechnung {invoice_id} öffnen").click()
    mail = section(page, "E-Mail-Versand")
    expect(mail.locator(".mail-state")).to_contain_text("Nicht zugestelltVersand 1")
    bounced = mail.locator("tbody tr", has_text="buchhaltung@kunde.example")
    expect(bounced).to_contain_text("Unzustellbar (Bounce)")
    expect(bounced).to_contain_text("550 5.1.1")

    # The bounced address is refused until the recipients change: the API's 409 and its reason, shown.
    to = mail.get_by_label("An (optional; sonst an die Rechnungsempfänger des Kontos)")
    to.fill("buchhaltung@kunde.example")
    mail.get_by_role("button", name="Erneut senden").click()
    expect(mail.get_by_role("alert")).to_contain_text("change the account's invoice recipients first")
    assert document_mail(clean_stack, operator_token(page), invoice_id)["sending"] == 1

    to.fill("rechnungen@kunde.example")
    mail.get_by_role("button", name="Erneut senden").click()
    expect(mail.get_by_role("status")).to_have_text(
        f"{record.stripe.number} wird erneut gesendet (Versand 2) an rechnungen@kunde.example."
    )
    expect(mail.get_by_role("alert")).to_be_hidden()
    token = operator_token(page)
    status = wait_for(
        lambda: (lambda s: s if (s["state"], s["sending"]) == ("delivered", 2) else None)(
            document_mail(clean_stack, token, invoice_id)
        ),
        SETTLE_SECONDS,
    )
    assert status, document_mail(clean_stack, token, invoice_id)
    [delivery] = status["deliveries"]
    assert delivery["recipient"] == "rechnungen@kunde.example"
    outbox = {m.message_id: m for m in sent_messages(clean_stack.info["aws_endpoint"])}
    assert set(outbox[delivery["messageId"]].destinations) == {"rechnungen@kunde.example"}

    # The page follows the resend by itself: delivered, and nothing is left undelivered.
    expect(mail.locator(".mail-state")).to_contain_text("ZugestelltVersand 2")
    expect(mail.locator("tbody tr")).to_have_count(1)
    expect(mail.locator("tbody tr")).to_contain_text("rechnungen@kunde.example")
    expect(mail.locator("tbody tr")).to_contain_text("Von SES angenommen")
    expect(undelivered).to_contain_text("Alle Rechnungen und Stornorechnungen sind zugestellt.")
    shot("2-resent")
    entry = services.audit.entries(account_id=account_id, limit=5)[0]
    assert (entry.action, entry.actor) == ("invoice.resend", "operator:operator")

    # Saving another field leaves the recipients, and so the bounce, alone; new recipients clear it.
    accounts.get_by_role("button", name=f"Bearbeiten {account_id}").click()
    edit.get_by_label("Grundgebühr").fill("25")
    edit.get_by_role("button", name="Änderungen speichern").click()
    account_row = accounts.locator("tbody tr", has_text=account_id)
    expect(account_row).to_contain_text("25,00")
    assert services.accounts.get(account_id).undeliverable_emails == ("buchhaltung@kunde.example",)
    accounts.get_by_role("button", name=f"Bearbeiten {account_id}").click()
    edit.get_by_label("Rechnungsempfänger").fill("rechnungen@kunde.example,\nChef@Kunde.example")
    edit.get_by_role("button", name="Änderungen speichern").click()
    expect(account_row).to_contain_text("Rechnungen an:rechnungen@kunde.examplechef@kunde.example")
    expect(account_row.locator(".badge.failed")).to_have_count(0)
    account = services.accounts.get(account_id)
    assert account.invoice_emails == ("rechnungen@kunde.example", "chef@kunde.example")
    assert account.undeliverable_emails == ()
