"""The admin Billing page in a real browser (Debian's Chromium) against the whole local stack."""

from __future__ import annotations

import base64
import hashlib
import re

from playwright.sync_api import expect

from tests.browser.conftest import hosts

VISA = "4242 4242 4242 4242"
CHARGE_DECLINED = "4000 0000 0000 0341"  # saves fine, every charge is declined
SETUP_DECLINED = "4000 0000 0000 0002"  # declined already when saving
# The seed month: AWS 17.74 + base fee 20.00 (FX 1.0 on the local stack).
SEED_BREAKDOWN = {
    "Amazon CloudFront": "8,47 €",
    "AWS Lambda": "5,23 €",
    "Amazon Simple Storage Service": "2,15 €",
    "Amazon DynamoDB": "1,89 €",
}


def test_admin_adds_a_card_and_sees_the_paid_invoice_with_its_breakdown(billing_page, shot, requested_urls):
    page = billing_page.page
    billing_page.open()
    expect(page.get_by_role("heading", name="Anmeldung")).to_be_visible()
    shot("1-sign-in")

    billing_page.sign_in_as_admin()
    expect(billing_page.section("Rechnungshistorie")).to_contain_text("Noch keine Rechnungen.")
    current = billing_page.section("Aktuelle Kosten (Vorschau)")
    expect(current).to_contain_text("Bisher in diesem Monat")
    expect(current).to_contain_text("Prognose Monatsende")
    expect(current).to_contain_text(re.compile(r"Stand: \d{2}\.\d{2}\.\d{4}"))
    expect(current.get_by_text(re.compile(r"^\d+,\d{2}\s€$")).first).to_be_visible()
    shot("2-signed-in-no-payment-method")

    page.get_by_role("button", name="Zahlungsmethode hinzufügen").click()
    page.get_by_label("Kartennummer").fill(VISA)
    page.get_by_label("Ablaufdatum").fill("12 / 34")
    page.get_by_label("Sicherheitscode").fill("123")
    shot("3-payment-element")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_text("Zahlungsmethode erfolgreich hinzugefügt!")).to_be_visible()
    payment_method = billing_page.section("Zahlungsmethode")
    expect(payment_method.get_by_text("Zahlungsmethode hinterlegt", exact=True)).to_be_visible()
    expect(payment_method).to_contain_text("Visa •••• 4242")
    shot("4-payment-method-stored")

    billing_page.run_billing()
    billing_page.reload_until_invoice_status("Bezahlt")
    row = billing_page.invoice_rows().first
    expect(billing_page.invoice_rows()).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("Bezahlt")
    expect(row).to_contain_text("37,74 €")
    expect(row.get_by_role("link", name=re.compile("ansehen"))).to_have_attribute("href", re.compile(r"/invoice/"))
    expect(row.get_by_role("link", name=re.compile("als PDF"))).to_have_attribute("href", re.compile(r"/pdf$"))

    breakdown = billing_page.section("AWS-Kosten nach Service")
    bars = breakdown.get_by_role("listitem")
    expect(bars).to_have_count(4)
    for position, (service, amount) in enumerate(SEED_BREAKDOWN.items()):
        expect(bars.nth(position)).to_contain_text(service)
        expect(bars.nth(position)).to_contain_text(amount)
    expect(breakdown).to_contain_text("Summe AWS17,74 €")
    shot("5-invoice-paid-with-breakdown")
    shot("5-invoice-paid-with-breakdown-phone", phone=True)

    page.get_by_label("Sprache").select_option("en")
    expect(page.get_by_role("heading", name="Invoice history")).to_be_visible()
    row = page.get_by_role("region", name="Invoice history").locator("tbody tr").first
    expect(row.locator(".badge")).to_have_text("Paid")
    expect(row).to_contain_text("€37.74")
    expect(page.get_by_role("button", name="Change payment method")).to_be_visible()
    shot("6-english")

    # Everything, Stripe.js and sign-in included, came from the local stack.
    assert hosts(requested_urls) == {"127.0.0.1"}


def test_an_invoice_whose_charge_is_declined_shows_failed(billing_page, shot):
    billing_page.open().sign_in_as_admin()
    billing_page.add_card(CHARGE_DECLINED)
    payment_method = billing_page.section("Zahlungsmethode")
    expect(payment_method.get_by_text("Zahlungsmethode hinterlegt", exact=True)).to_be_visible()

    billing_page.run_billing()
    billing_page.reload_until_invoice_status("Fehlgeschlagen")

    row = billing_page.invoice_rows().first
    expect(row.locator(".badge")).to_have_text("Fehlgeschlagen")
    expect(row).to_contain_text("37,74 €")
    shot("invoice-failed")


def test_a_card_declined_when_saving_shows_stripes_error_and_saves_nothing(billing_page, shot):
    page = billing_page.page
    billing_page.open().sign_in_as_admin()
    billing_page.add_card(SETUP_DECLINED)

    expect(page.get_by_role("alert").filter(has_text="Ihre Karte wurde abgelehnt.")).to_be_visible()
    expect(page.get_by_role("button", name="Speichern")).to_be_enabled()
    shot("card-declined")
    page.reload()
    expect(billing_page.section("Zahlungsmethode")).to_contain_text("Keine Zahlungsmethode hinterlegt")


def test_a_non_admin_is_refused_with_a_clear_message(billing_page, shot):
    page = billing_page.page
    billing_page.open()
    login = billing_page.stack.non_admin
    # By keyboard only: the form is reachable and submits with Enter.
    page.get_by_label("Benutzername").focus()
    page.keyboard.type(login.username)
    page.keyboard.press("Tab")
    page.keyboard.type(login.password)
    page.keyboard.press("Enter")

    refusal = page.get_by_role("alert").filter(has_text="Kein Zugriff")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("Nur Administratoren")
    expect(page.get_by_role("region", name="Zahlungsmethode")).to_be_hidden()
    shot("no-access")

    page.get_by_role("button", name="Abmelden").click()
    expect(page.get_by_role("heading", name="Anmeldung")).to_be_visible()


def test_a_wrong_password_is_reported_and_keeps_the_user_signed_out(billing_page):
    page = billing_page.page
    billing_page.open()
    billing_page.sign_in(billing_page.stack.admin.username, "not-the-password-1A!")

    expect(page.get_by_role("alert").filter(has_text="Benutzername oder Passwort ist falsch.")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('billing.session')") is None


def test_tokens_stay_out_of_cookies_and_sign_out_forgets_them(billing_page):
    page = billing_page.page
    billing_page.open().sign_in_as_admin()

    assert page.context.cookies() == []
    assert page.evaluate("JSON.parse(sessionStorage.getItem('billing.session')).accessToken").count(".") == 2
    page.get_by_role("button", name="Abmelden").click()

    expect(page.get_by_role("heading", name="Anmeldung")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('billing.session')") is None


def test_a_failing_api_shows_an_error_and_retry_recovers(billing_page, shot):
    page = billing_page.page
    billing_page.open()
    page.route("**/billing", lambda route: route.fulfill(status=503, json={"error": {"code": "unavailable"}}))
    billing_page.sign_in(billing_page.stack.admin.username, billing_page.stack.admin.password)

    expect(page.get_by_text("Die Abrechnungsdaten konnten nicht geladen werden.")).to_be_visible()
    shot("load-error")
    page.unroute("**/billing")
    page.get_by_role("button", name="Erneut versuchen").click()

    expect(billing_page.section("Zahlungsmethode")).to_contain_text("Keine Zahlungsmethode hinterlegt")


def test_hosted_ui_sign_in_url_uses_the_code_flow_with_an_s256_pkce_challenge(billing_page):
    page = billing_page.page
    billing_page.open()

    result = page.evaluate("""async () => {
        const auth = await import('/admin/static/auth.js');
        const pair = await auth.createPkcePair();
        const cognito = {domain: 'https://auth.example.com', clientId: 'client-123'};
        const url = auth.buildAuthorizeUrl(cognito, {redirectUri: 'https://billing.example.com/admin/billing',
                                                     challenge: pair.challenge, state: 'state-1'});
        return {verifier: pair.verifier, url, logout: auth.buildLogoutUrl(cognito, 'https://billing.example.com/')};
    }""")

    expected_challenge = base64.urlsafe_b64encode(hashlib.sha256(result["verifier"].encode()).digest()).rstrip(b"=")
    assert 43 <= len(result["verifier"]) <= 128
    assert result["url"] == (
        "https://auth.example.com/oauth2/authorize?response_type=code&client_id=client-123"
        "&redirect_uri=https%3A%2F%2Fbilling.example.com%2Fadmin%2Fbilling&scope=openid+email&state=state-1"
        f"&code_challenge_method=S256&code_challenge={expected_challenge.decode()}"
    )
    assert result["logout"] == (
        "https://auth.example.com/logout?client_id=client-123&logout_uri=https%3A%2F%2Fbilling.example.com%2F"
    )


def test_a_failed_payment_shows_a_banner_with_pay_now_and_saving_a_working_card_pays_it(billing_page, shot):
    page = billing_page.page
    billing_page.open().sign_in_as_admin()
    billing_page.add_card(CHARGE_DECLINED)
    payment_method = billing_page.section("Zahlungsmethode")
    expect(payment_method.get_by_text("Zahlungsmethode hinterlegt", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Zahlungsmethode ändern")).to_be_visible()

    period = billing_page.run_billing()
    billing_page.reload_until_invoice_status("Fehlgeschlagen")
    month = {11: "November", 10: "Oktober", 12: "Dezember"}.get(period.month, "")
    banner = page.get_by_role("alert").filter(has_text="fehlgeschlagen")
    expect(banner).to_contain_text(f"Zahlung für {month} {period.year} fehlgeschlagen")
    row = billing_page.invoice_rows().first
    expect(row).to_contain_text("20,00 €")  # base fee and AWS parts shown
    expect(row).to_contain_text("17,74 €")
    shot("1-banner")

    # Pay now with the declining card still on file: declined, said so, nothing charged.
    banner.get_by_role("button", name="Jetzt bezahlen").click()
    expect(page.get_by_role("status").filter(has_text="abgelehnt")).to_be_visible()

    # The admin saves a working card.
    page.get_by_role("button", name="Zahlungsmethode ändern").click()
    page.get_by_label("Kartennummer").fill(VISA)
    page.get_by_label("Ablaufdatum").fill("12 / 34")
    page.get_by_label("Sicherheitscode").fill("123")
    page.get_by_role("button", name="Speichern").click()
    expect(payment_method).to_contain_text("Visa •••• 4242")

    # Saving the new card paid the failed invoice by itself.
    billing_page.reload_until_invoice_status("Bezahlt")
    expect(billing_page.invoice_rows().first.locator(".badge")).to_have_text("Bezahlt")
    expect(page.get_by_role("alert").filter(has_text="fehlgeschlagen")).to_have_count(0)
    shot("2-paid")


def test_re_adding_a_card_with_the_same_last_four_is_confirmed_by_its_payment_method_id(billing_page):
    page = billing_page.page
    billing_page.open().sign_in_as_admin()
    billing_page.add_card(VISA)
    payment_method = billing_page.section("Zahlungsmethode")
    expect(payment_method).to_contain_text("Visa •••• 4242")
    expect(page.locator("#payment-confirming")).to_have_count(0)

    page.get_by_role("button", name="Zahlungsmethode ändern").click()
    page.get_by_label("Kartennummer").fill(VISA)
    page.get_by_label("Ablaufdatum").fill("12 / 34")
    page.get_by_label("Sicherheitscode").fill("123")
    page.get_by_role("button", name="Speichern").click()

    # Same brand, same last four: confirmed within seconds by the new id, not after a 60 s timeout.
    expect(page.locator("#payment-confirming")).to_have_count(0, timeout=15_000)
    expect(page.get_by_text("Die Bestätigung dauert länger")).to_have_count(0)
    expect(payment_method).to_contain_text("Visa •••• 4242")
