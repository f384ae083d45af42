"""Stripe-shaped errors: auth, missing objects, unknown parameters, rate limit, faults, illegal transitions."""

from __future__ import annotations

import pytest
import requests
import stripe

from stripe_emulator import contract
from tests.emulator.conftest import PUBLISHABLE_KEY, open_invoice


def _error(response: requests.Response) -> dict:
    body = response.json()
    assert contract.error_violations(body) == []  # Stripe's shape: no null code or param
    return body["error"]


def test_missing_or_wrong_api_key_is_401(emulator, client):
    assert requests.get(f"{emulator.url}/v1/customers", timeout=5).status_code == 401
    wrong = stripe.StripeClient("sk_test_wrong_key_1234", base_addresses={"api": emulator.url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as raised:
        wrong.v1.customers.list()
    assert raised.value.http_status == 401
    assert "sk_test_wrong_key_1234" not in raised.value.user_message  # the key is masked


def test_publishable_key_cannot_call_secret_key_routes(emulator, control):
    public = stripe.StripeClient(PUBLISHABLE_KEY, base_addresses={"api": emulator.url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        public.v1.customers.create(params={"email": "x@example.com"})


def test_unknown_object_is_404_resource_missing(emulator, client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.retrieve("cus_doesnotexist")
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    error = raised.value.json_body["error"]
    assert error == {
        **error,
        "type": "invalid_request_error",
        "param": "id",
        "message": "No such customer: 'cus_doesnotexist'",
    }


def test_unknown_object_named_in_a_parameter_names_that_parameter(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.create(params={"customer": "cus_missing"})
    assert (raised.value.http_status, raised.value.code, raised.value.param) == (404, "resource_missing", "customer")


def test_unknown_parameters_are_rejected_at_top_level_and_nested(client):
    with pytest.raises(stripe.InvalidRequestError) as top:
        client.v1.customers.create(params={"emial": "x@example.com"})
    assert (top.value.code, top.value.param) == ("parameter_unknown", "emial")
    assert top.value.user_message == "Received unknown parameter: emial"
    with pytest.raises(stripe.InvalidRequestError) as nested:
        client.v1.customers.create(params={"invoice_settings": {"default_pm": "pm_x"}})
    assert nested.value.param == "invoice_settings[default_pm]"


def test_missing_and_malformed_parameters(client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.invoices.create(params={})
    assert (missing.value.code, missing.value.param) == ("parameter_missing", "customer")
    customer = client.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError) as malformed:
        client.v1.invoice_items.create(params={"customer": customer.id, "amount": "12.5", "currency": "eur"})
    assert malformed.value.code == "parameter_invalid_integer"


def test_unrecognized_url_is_a_stripe_shaped_404(emulator, client):
    response = requests.get(f"{emulator.url}/v1/charges_typo", headers={"Authorization": "Bearer x"}, timeout=5)
    assert response.status_code == 404
    assert "Unrecognized request URL" in _error(response)["message"]


def test_rate_limit_surfaces_as_rate_limit_error(client, control):
    control.configure(rate_limit=3)
    with pytest.raises(stripe.RateLimitError) as raised:
        for _ in range(10):
            client.v1.customers.list()
    assert raised.value.http_status == 429
    assert raised.value.json_body["error"]["code"] == "rate_limit"
    assert raised.value.headers["Stripe-Rate-Limited-Reason"] == "global-rate"
    assert control.requests()["rejected"]["rate_limited"] >= 1


def test_injected_faults_answer_500_api_error_then_recover(client, control):
    control.configure(fault_next_n=2)
    for _ in range(2):
        with pytest.raises(stripe.APIError) as raised:
            client.v1.customers.create(params={"email": "fault@example.com"})
        assert raised.value.http_status == 500
        assert raised.value.json_body["error"]["type"] == "api_error"
    assert client.v1.customers.create(params={"email": "fault@example.com"}).email == "fault@example.com"
    assert control.objects()["customer"] == 1


def test_sdk_retries_through_an_injected_fault_with_the_same_idempotency_key(emulator, control):
    control.configure(fault_next_n=1)
    retrying = stripe.StripeClient(
        "sk_test_emulator_suite", base_addresses={"api": emulator.url}, max_network_retries=2
    )
    customer = retrying.v1.customers.create(params={"email": "retry@example.com"})
    assert customer.email == "retry@example.com"
    assert control.objects()["customer"] == 1


@pytest.mark.parametrize(
    "move, expected_code",
    [
        ("finalize_open", None),  # Stripe has no code for it: the message says why
        ("pay_draft", None),  # Stripe has no code for it: the message says why
        ("void_draft", None),  # Stripe has no code for it: the message says why
        ("mark_uncollectible_draft", None),  # Stripe has no code for it: the message says why
        ("delete_open", "invoice_not_editable"),
        ("add_lines_open", "invoice_not_editable"),
        ("item_on_open", "invoice_not_editable"),
        ("void_paid", None),  # Stripe has no code for it: the message says why
        ("pay_void", None),  # Stripe has no code for it: the message says why
    ],
)
def test_illegal_invoice_transitions_are_400_with_stripes_codes(client, move, expected_code):
    customer = client.v1.customers.create(params={"email": "sm@example.com"})
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    draft = client.v1.invoices.create(params={"customer": customer.id, "currency": "eur"})
    client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": 500}]})
    opened = lambda: open_invoice(client, customer.id, amounts=(700,), auto_advance=False)  # noqa: E731
    actions = {
        "finalize_open": lambda: client.v1.invoices.finalize_invoice(opened().id),
        "pay_draft": lambda: client.v1.invoices.pay(draft.id),
        "void_draft": lambda: client.v1.invoices.void_invoice(draft.id),
        "mark_uncollectible_draft": lambda: client.v1.invoices.mark_uncollectible(draft.id),
        "delete_open": lambda: client.v1.invoices.delete(opened().id),
        "add_lines_open": lambda: client.v1.invoices.add_lines(opened().id, params={"lines": [{"amount": 1}]}),
        "item_on_open": lambda: client.v1.invoice_items.create(
            params={"customer": customer.id, "invoice": opened().id, "amount": 1}
        ),
        "void_paid": lambda: client.v1.invoices.void_invoice(
            client.v1.invoices.pay(opened().id, params={"payment_method": card.id}).id
        ),
        "pay_void": lambda: client.v1.invoices.pay(client.v1.invoices.void_invoice(opened().id).id),
    }
    with pytest.raises(stripe.InvalidRequestError) as raised:
        actions[move]()
    assert raised.value.http_status == 400
    assert raised.value.code == expected_code


def test_setup_intent_cannot_be_confirmed_twice_or_canceled_after_success(client):
    customer = client.v1.customers.create()
    intent = client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_visa", "confirm": True}
    )
    assert intent.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as twice:
        client.v1.setup_intents.confirm(intent.id)
    assert twice.value.code == "setup_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.setup_intents.cancel(intent.id)
    other = client.v1.setup_intents.create(params={"customer": customer.id})
    canceled = client.v1.setup_intents.cancel(other.id, params={"cancellation_reason": "abandoned"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")


def test_invalid_card_number_is_a_card_error(client):
    with pytest.raises(stripe.CardError) as raised:
        client.v1.payment_methods.create(
            params={"type": "card", "card": {"number": "4242424242424241", "exp_month": 1, "exp_year": 2030}}
        )
    assert raised.value.code == "incorrect_number"
