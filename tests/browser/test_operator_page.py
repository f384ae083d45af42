"""The operator page in Chromium: onboard a customer with the form, retry a failed payment, read the audit log.

Also who gets in: the operator does; a customer's admin, a user in no group and a forged session do not.
"""

from __future__ import annotations

import io
import json
import time

import requests
from playwright.sync_api import expect

from tests.integration.test_billing_run_resume import new_account, seed_period


def open_operator_page(page, stack, who: str = "operator"):
    page.goto(stack.info["api_url"] + "/operator")
    login = stack.info[who]
    page.get_by_label("Benutzername").fill(login["username"])
    page.get_by_label("Passwort").fill(login["password"])
    page.get_by_role("button", name="Anmelden").click()


def section(page, heading: str):
    return page.get_by_role("region", name=heading, exact=True)


def test_the_operator_onboards_a_customer_with_the_form_and_every_step_is_in_the_audit_log(page, clean_stack, shot):
    open_operator_page(page, clean_stack)
    accounts = section(page, "Kundenkonten")
    expect(accounts).to_contain_text("Noch keine Kundenkonten.")
    form = section(page, "Kundenkonto anlegen")

    form.get_by_label("Konto-ID (optional)").fill("kunde-42")
    form.get_by_label("Name").fill("Beispiel GmbH")
    form.get_by_label("E-Mail").fill("billing@beispiel.de")
    form.get_by_label("Grundgebühr").fill("25.555")
    form.get_by_role("button", name="Anlegen").click()
    expect(form.get_by_role("alert")).to_contain_text("base fee")  # the same validation as the CLI

    form.get_by_label("Grundgebühr").fill("25.00")
    form.get_by_label("Land (ISO, z. B. DE)").fill("DE")
    form.get_by_role("button", name="Anlegen").click()
    expect(form.get_by_role("status")).to_contain_text("Kundenkonto kunde-42 gespeichert.")
    row = accounts.locator("tbody tr", has_text="kunde-42")
    expect(row).to_contain_text("Beispiel GmbH")
    expect(row).to_contain_text("25,00")
    shot("1-created")

    row.get_by_role("button", name="Bearbeiten kunde-42").click()
    expect(page.get_by_role("region", name="Kundenkonto kunde-42 bearbeiten")).to_be_visible()
    edit = page.get_by_role("region", name="Kundenkonto kunde-42 bearbeiten")
    edit.get_by_label("Grundgebühr").fill("30")
    edit.get_by_label("Grund (für das Protokoll)").fill("neuer Vertrag")
    edit.get_by_role("button", name="Änderungen speichern").click()
    expect(row).to_contain_text("30,00")

    audit = section(page, "Protokoll")
    expect(audit.locator("tbody tr")).to_have_count(2)
    expect(audit.locator("tbody tr").first).to_contain_text("account.update")
    expect(audit.locator("tbody tr").first).to_contain_text("25.00 → 30.00")
    expect(audit.locator("tbody tr").first).to_contain_text("operator:operator")
    customer = clean_stack.stripe_client().v1.customers.list(params={"email": "billing@beispiel.de"}).data
    assert [c.name for c in customer] == ["Beispiel GmbH"]

    page.locator("#language").select_option("en")
    expect(page.get_by_role("heading", name="Customer accounts")).to_be_visible()
    expect(section(page, "Audit log")).to_contain_text("account.create")
    shot("2-english", phone=True)


def test_a_failed_payment_shows_with_a_retry_button_that_pays_it_after_the_customer_saved_a_working_card(
    page, clean_stack, shot
):
    from billing_cli import cli
    from billing_core.bootstrap import WorkerUseCases
    from local_stack.demo import worker_services

    services = worker_services(clean_stack)
    account_id = new_account(clean_stack, services, card="pm_card_chargeCustomerFail")
    period = seed_period(clean_stack)
    assert (
        cli.main(
            ["run", "--period", period.label, "--wait", "--timeout", "60"],
            use_cases=WorkerUseCases(services),
            out=io.StringIO(),
            err=io.StringIO(),
        )
        == 0
    )
    open_operator_page(page, clean_stack)
    failed = section(page, "Fehlgeschlagene Zahlungen")
    invoice_id = f"inv_{period.label}_{account_id}"
    expect(failed.locator("tbody tr", has_text=invoice_id)).to_contain_text("Fehlgeschlagen")
    run = page.get_by_role("region", name=f"Abrechnungslauf {period.label}")
    expect(run).to_contain_text("Abgeschlossen")
    expect(run).not_to_contain_text("null")  # no skipped accounts: nothing printed for them
    shot("1-failed")

    client = clean_stack.stripe_client()
    customer = services.accounts.get(account_id).stripe_customer_id
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer})
    client.v1.customers.update(customer, params={"invoice_settings": {"default_payment_method": card.id}})
    failed.get_by_role("button", name=f"Zahlung für {invoice_id} erneut abbuchen").click()

    expect(failed.get_by_role("status")).to_contain_text(f"{invoice_id}: bezahlt.")
    deadline = time.monotonic() + 30
    while services.invoices.get(account_id, invoice_id).status != "paid" and time.monotonic() < deadline:
        time.sleep(0.5)
    page.get_by_role("button", name="Filtern").click()
    expect(failed).to_contain_text("Keine fehlgeschlagenen Zahlungen.")
    expect(section(page, "Rechnungen aller Konten").locator("tbody tr", has_text=invoice_id)).to_contain_text("Bezahlt")
    expect(section(page, "Protokoll")).to_contain_text("invoice.retry")
    shot("2-paid")


def test_a_customers_admin_and_a_user_in_no_group_see_no_access_and_get_no_data(page, clean_stack):
    answers: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda response: answers.append((response.url, response.status)) if "/operator/" in response.url else None,
    )
    for who in ("admin", "member"):
        open_operator_page(page, clean_stack, who)
        expect(page.get_by_role("heading", name="Kein Zugriff")).to_be_visible()
        expect(page.get_by_role("region", name="Kundenkonten")).to_be_hidden()
        page.evaluate("sessionStorage.clear()")
    assert answers and {status for _, status in answers} == {403}


def test_a_forged_session_in_the_browser_is_refused_by_the_api(page, clean_stack):
    import base64

    def part(value) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    forged = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': 'x', 'cognito:groups': ['operator']})}."
    page.goto(clean_stack.info["api_url"] + "/operator")
    page.evaluate(
        "token => sessionStorage.setItem('billing.session', JSON.stringify("
        "{accessToken: token, expiresAt: Date.now() + 3600000, username: 'forger'}))",
        forged,
    )
    page.reload()

    expect(page.get_by_role("heading", name="Anmeldung")).to_be_visible()
    expect(page.get_by_text("Ihre Sitzung ist abgelaufen")).to_be_visible()
    expect(page.get_by_role("region", name="Kundenkonten")).to_be_hidden()


def test_the_operator_invites_a_customers_admin_from_the_page_who_then_sees_that_accounts_billing(page, clean_stack):
    import re

    from tests.e2e.test_operator_accounts_e2e import _first_sign_in

    open_operator_page(page, clean_stack)
    form = section(page, "Kundenkonto anlegen")
    form.get_by_label("Konto-ID (optional)").fill("kunde-7")
    form.get_by_label("Name").fill("Sieben GmbH")
    form.get_by_label("E-Mail").fill("billing@sieben.de")
    form.get_by_role("button", name="Anlegen").click()
    accounts = section(page, "Kundenkonten")
    page.once("dialog", lambda dialog: dialog.accept("anna@sieben.de"))
    accounts.get_by_role("button", name="Admin einladen kunde-7").click()

    notice = accounts.get_by_role("status")
    expect(notice).to_contain_text("anna@sieben.de ist Admin von kunde-7.")
    password = re.search(r"Passwort .*: (\S+)$", notice.inner_text()).group(1)
    token = _first_sign_in(clean_stack, "anna@sieben.de", password)
    billing = requests.get(
        clean_stack.info["api_url"] + "/billing", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert billing["accountId"] == "kunde-7"
    expect(section(page, "Protokoll")).to_contain_text("account.invite")
