"""The emulator's Stripe.js stand-in, driven in Chromium from the api origin (cross-origin, like Stripe.js)."""

from __future__ import annotations

import requests
from playwright.sync_api import expect


def setup_intent(stack, types):
    """A SetupIntent for a new customer, created with the secret key as billing-api does."""
    client = stack.stripe_client()
    customer = client.v1.customers.create(params={"email": "admin@example.com"})
    return client.v1.setup_intents.create(params={"customer": customer.id, "allowed_payment_method_types": types})


def mount_payment_element(page, stack, client_secret, locale="de"):
    """Open a page on the api origin, load the stand-in and mount the Payment Element in it."""
    page.goto(stack.info["api_url"] + "/admin/billing")
    page.evaluate(
        """async ({src, key, clientSecret, locale}) => {
            await new Promise((resolve, reject) => {
                const script = document.createElement('script');
                script.src = src; script.onload = resolve; script.onerror = reject;
                document.head.append(script);
            });
            const host = document.createElement('div');
            host.id = 'element-under-test';
            document.body.prepend(host);
            window.stripeUnderTest = Stripe(key);
            window.elementsUnderTest = window.stripeUnderTest.elements({clientSecret, locale});
            window.elementsUnderTest.create('payment').mount('#element-under-test');
        }""",
        {
            "src": stack.info["stripe_api_base"] + "/v3/",
            "key": stack.info["stripe_publishable_key"],
            "clientSecret": client_secret,
            "locale": locale,
        },
    )
    return page.locator("#element-under-test")


def confirm(page):
    return page.evaluate("() => stripeUnderTest.confirmSetup({elements: elementsUnderTest, redirect: 'if_required'})")


def test_sepa_debit_through_the_stand_in_saves_the_iban_with_a_mandate(page, clean_stack):
    intent = setup_intent(clean_stack, ["card", "sepa_debit"])
    element = mount_payment_element(page, clean_stack, intent.client_secret)

    element.get_by_label("SEPA-Lastschrift").check()
    element.get_by_label("Vollständiger Name").fill("Erika Mustermann")
    element.get_by_label("E-Mail").fill("erika@example.com")
    element.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    result = confirm(page)

    assert "error" not in result
    assert result["setupIntent"]["status"] == "succeeded"
    saved = clean_stack.stripe_client().v1.setup_intents.retrieve(intent.id)
    assert saved.mandate is not None
    method = clean_stack.stripe_client().v1.payment_methods.retrieve(saved.payment_method)
    assert (method.type, method.sepa_debit.last4, method.customer) == ("sepa_debit", "3000", intent.customer)


def test_the_stand_in_offers_only_the_setup_intents_payment_method_types(page, clean_stack):
    intent = setup_intent(clean_stack, ["card"])
    element = mount_payment_element(page, clean_stack, intent.client_secret, locale="en")

    expect(element.get_by_label("Card number")).to_be_visible()
    expect(element.get_by_label("SEPA Direct Debit")).to_be_hidden()


def test_an_incomplete_form_is_a_validation_error_without_any_stripe_call(page, clean_stack):
    intent = setup_intent(clean_stack, ["card"])
    element = mount_payment_element(page, clean_stack, intent.client_secret)
    element.get_by_label("Kartennummer").fill("4242 4242 4242 4242")

    result = confirm(page)

    assert result["error"]["type"] == "validation_error"
    assert clean_stack.stripe_client().v1.setup_intents.retrieve(intent.id).status == "requires_payment_method"


def test_the_emulator_serves_the_stand_in_and_lets_browsers_read_api_answers(clean_stack):
    base = clean_stack.info["stripe_api_base"]
    script = requests.get(base + "/v3/", timeout=5)
    api = requests.post(
        base + "/v1/payment_methods",
        timeout=5,
        headers={"Origin": clean_stack.info["api_url"]},
        data={
            "key": clean_stack.info["stripe_publishable_key"],
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": "12",
            "card[exp_year]": "34",
        },
    )

    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert f'var API_BASE = "{base}";' in script.text
    assert api.status_code == 200
    assert api.headers["Access-Control-Allow-Origin"] == "*"
