"""The emulator against the pinned SDK's declarations: every route, every answer, every event, every error.

The contract comes from the installed ``stripe`` package (generated from Stripe's OpenAPI spec for the
pinned API version), not from example fixtures: an SDK upgrade that removes a parameter or a field
fails here. The emulator also checks its own answers at run time; these tests check them again with
that switched off, so a broken self-check cannot hide a departure.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import stripe

from stripe_emulator import contract
from stripe_emulator.app import ROUTES
from tests.emulator.conftest import SECRET_KEY, make_customer, open_invoice
from tests.support.emulator import wait_for


def _raw(obj: Any) -> dict[str, Any]:
    """The JSON the emulator sent for an SDK result."""
    return json.loads(obj.last_response.body)


def test_every_emulated_route_is_an_operation_of_the_pinned_sdk():
    for route in ROUTES:
        operation = contract.operation(route.method, route.path)
        assert operation.sdk_method, route.label
    assert contract.API_VERSION == stripe.api_version


def test_a_route_stripe_does_not_have_is_not_in_the_sdk():
    with pytest.raises(KeyError):
        contract.operation("GET", "/v1/setup_attempts/{id}")  # Stripe lists setup attempts, never retrieves one


@pytest.fixture
def unchecked(control):
    """The emulator without its own run-time contract check, so these tests see its raw answers."""
    control.configure(check_contract=False)
    yield
    control.configure(check_contract=True)


def _walk_every_route(client: stripe.StripeClient, emulator_url: str) -> list[tuple[str, Any, dict[str, Any]]]:
    """Call every emulated route once; returns (route label, declared type, JSON answer)."""
    answers: list[tuple[str, Any, dict[str, Any]]] = []

    def note(method: str, path: str, obj: Any) -> Any:
        answers.append((f"{method} {path}", contract.operation(method, path).returns, _raw(obj)))
        return obj

    v1 = client.v1
    customer = note("POST", "/v1/customers", v1.customers.create(params={"email": "c@example.com", "name": "C"}))
    note("GET", "/v1/customers", v1.customers.list())
    note("GET", "/v1/customers/{customer}", v1.customers.retrieve(customer.id))
    intent = note(
        "POST",
        "/v1/setup_intents",
        v1.setup_intents.create(
            params={
                "customer": customer.id,
                "allowed_payment_method_types": ["card", "sepa_debit"],
                "usage": "off_session",
            }
        ),
    )
    note("POST", "/v1/setup_intents/{intent}", v1.setup_intents.update(intent.id, params={"description": "d"}))
    method = note(
        "POST",
        "/v1/payment_methods",
        v1.payment_methods.create(
            params={"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034}}
        ),
    )
    confirmed = note(
        "POST",
        "/v1/setup_intents/{intent}/confirm",
        v1.setup_intents.confirm(intent.id, params={"payment_method": method.id}),
    )
    note("GET", "/v1/setup_intents/{intent}", v1.setup_intents.retrieve(confirmed.id))
    note("GET", "/v1/setup_intents", v1.setup_intents.list(params={"customer": customer.id}))
    note("GET", "/v1/setup_attempts", v1.setup_attempts.list(params={"setup_intent": intent.id}))
    other = v1.setup_intents.create(params={"customer": customer.id})
    note("POST", "/v1/setup_intents/{intent}/cancel", v1.setup_intents.cancel(other.id))
    customer = note(
        "POST",
        "/v1/customers/{customer}",
        v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": method.id}}),
    )
    note("GET", "/v1/customers/{customer}/payment_methods", v1.customers.payment_methods.list(customer.id))
    note("GET", "/v1/payment_methods", v1.payment_methods.list(params={"customer": customer.id}))
    note("GET", "/v1/payment_methods/{payment_method}", v1.payment_methods.retrieve(method.id))
    sepa = make_customer(client, "pm_sepaDebit")
    sepa_intent = v1.setup_intents.list(params={"customer": sepa.id}).data[0]
    note("GET", "/v1/mandates/{mandate}", v1.mandates.retrieve(sepa_intent.mandate))
    spare = v1.payment_methods.create(params={"type": "sepa_debit", "sepa_debit": {"iban": "DE89370400440532013000"}})
    note(
        "POST",
        "/v1/payment_methods/{payment_method}/attach",
        v1.payment_methods.attach(spare.id, params={"customer": customer.id}),
    )
    note("POST", "/v1/payment_methods/{payment_method}/detach", v1.payment_methods.detach(spare.id))

    rate = note(
        "POST",
        "/v1/tax_rates",
        v1.tax_rates.create(params={"display_name": "USt.", "percentage": 19.0, "inclusive": False, "country": "DE"}),
    )
    note("GET", "/v1/tax_rates", v1.tax_rates.list(params={"active": True}))
    note("GET", "/v1/tax_rates/{tax_rate}", v1.tax_rates.retrieve(rate.id))
    note("POST", "/v1/tax_rates/{tax_rate}", v1.tax_rates.update(rate.id, params={"metadata": {"k": "v"}}))
    draft = note(
        "POST",
        "/v1/invoices",
        v1.invoices.create(
            params={"customer": customer.id, "currency": "eur", "auto_advance": False, "metadata": {"k": "v"}}
        ),
    )
    item = note(
        "POST",
        "/v1/invoiceitems",
        v1.invoice_items.create(
            params={"customer": customer.id, "invoice": draft.id, "amount": 100, "currency": "eur"}
        ),
    )
    note("GET", "/v1/invoiceitems", v1.invoice_items.list(params={"invoice": draft.id}))
    note("GET", "/v1/invoiceitems/{invoiceitem}", v1.invoice_items.retrieve(item.id))
    note("POST", "/v1/invoiceitems/{invoiceitem}", v1.invoice_items.update(item.id, params={"description": "x"}))
    note("DELETE", "/v1/invoiceitems/{invoiceitem}", v1.invoice_items.delete(item.id))
    note(
        "POST",
        "/v1/invoices/{invoice}/add_lines",
        v1.invoices.add_lines(
            draft.id,
            params={
                "lines": [
                    {
                        "amount": 2000,
                        "description": "Monatliche Grundgebühr",
                        "metadata": {"line": "base-fee"},
                        "period": {"start": 1730419200, "end": 1733011199},
                    },
                    {
                        "amount": 1774,
                        "description": "AWS Infrastruktur (Nov 2024)",
                        "metadata": {"line": "aws"},
                        "tax_rates": [rate.id],
                    },
                ]
            },
        ),
    )
    note("POST", "/v1/invoices/{invoice}", v1.invoices.update(draft.id, params={"description": "d"}))
    note("GET", "/v1/invoices/{invoice}/lines", v1.invoices.line_items.list(draft.id))
    note("POST", "/v1/invoices/{invoice}/finalize", v1.invoices.finalize_invoice(draft.id))
    note("POST", "/v1/invoices/{invoice}/pay", v1.invoices.pay(draft.id, params={"off_session": True}))
    note("GET", "/v1/invoices/{invoice}", v1.invoices.retrieve(draft.id))
    note("GET", "/v1/invoices", v1.invoices.list(params={"customer": customer.id}))
    cn_params: dict[str, Any] = {
        "invoice": draft.id,
        "lines": [
            {
                "type": "invoice_line_item",
                "invoice_line_item": v1.invoices.retrieve(draft.id).lines.data[1].id,
                "amount": 774,
            }
        ],
        "refund_amount": 500,
        "credit_amount": 200,
        "out_of_band_amount": 74 + 147,
    }
    note("GET", "/v1/credit_notes/preview", v1.credit_notes.preview(params=cn_params))  # type: ignore[arg-type]
    note("GET", "/v1/credit_notes/preview/lines", v1.credit_notes.preview_lines.list(params=cn_params))  # type: ignore
    credit_note = note("POST", "/v1/credit_notes", v1.credit_notes.create(params=cn_params))  # type: ignore[arg-type]
    note("GET", "/v1/credit_notes", v1.credit_notes.list(params={"invoice": draft.id}))
    note("GET", "/v1/credit_notes/{id}", v1.credit_notes.retrieve(credit_note.id))
    note("POST", "/v1/credit_notes/{id}", v1.credit_notes.update(credit_note.id, params={"memo": "m"}))
    note("GET", "/v1/credit_notes/{credit_note}/lines", v1.credit_notes.line_items.list(credit_note.id))
    note("GET", "/v1/refunds", v1.refunds.list())
    note("GET", "/v1/refunds/{refund}", v1.refunds.retrieve(credit_note.refunds[0].refund))
    pre_payment = open_invoice(client, customer.id, auto_advance=False)
    to_undo = v1.credit_notes.create(params={"invoice": pre_payment.id, "amount": 100})
    note("POST", "/v1/credit_notes/{id}/void", v1.credit_notes.void_credit_note(to_undo.id))
    to_void = open_invoice(client, customer.id, auto_advance=False)
    note("POST", "/v1/invoices/{invoice}/void", v1.invoices.void_invoice(to_void.id))
    to_write_off = open_invoice(client, customer.id, auto_advance=False)
    note("POST", "/v1/invoices/{invoice}/mark_uncollectible", v1.invoices.mark_uncollectible(to_write_off.id))
    scrap = v1.invoices.create(params={"customer": customer.id})
    note("DELETE", "/v1/invoices/{invoice}", v1.invoices.delete(scrap.id))

    endpoint = note(
        "POST",
        "/v1/webhook_endpoints",
        v1.webhook_endpoints.create(params={"url": "http://127.0.0.1:9/hook", "enabled_events": ["invoice.paid"]}),
    )
    note("GET", "/v1/webhook_endpoints", v1.webhook_endpoints.list())
    note("GET", "/v1/webhook_endpoints/{webhook_endpoint}", v1.webhook_endpoints.retrieve(endpoint.id))
    note(
        "POST",
        "/v1/webhook_endpoints/{webhook_endpoint}",
        v1.webhook_endpoints.update(endpoint.id, params={"disabled": True}),
    )
    note("DELETE", "/v1/webhook_endpoints/{webhook_endpoint}", v1.webhook_endpoints.delete(endpoint.id))
    events = note("GET", "/v1/events", v1.events.list(params={"limit": 100}))
    note("GET", "/v1/events/{id}", v1.events.retrieve(events.data[0].id))
    v1.customers.update(customer.id, params={"balance": -100})
    transactions = note(
        "GET",
        "/v1/customers/{customer}/balance_transactions",
        v1.customers.balance_transactions.list(customer.id),
    )
    note(
        "GET",
        "/v1/customers/{customer}/balance_transactions/{transaction}",
        v1.customers.balance_transactions.retrieve(customer.id, transactions.data[0].id),
    )
    tax_id = note(
        "POST",
        "/v1/customers/{customer}/tax_ids",
        v1.customers.tax_ids.create(customer.id, params={"type": "eu_vat", "value": "DE123456789"}),
    )
    note("GET", "/v1/customers/{customer}/tax_ids", v1.customers.tax_ids.list(customer.id))
    note("GET", "/v1/customers/{customer}/tax_ids/{id}", v1.customers.tax_ids.retrieve(customer.id, tax_id.id))
    note("DELETE", "/v1/customers/{customer}/tax_ids/{id}", v1.customers.tax_ids.delete(customer.id, tax_id.id))
    throwaway = v1.customers.create()
    note("DELETE", "/v1/customers/{customer}", v1.customers.delete(throwaway.id))
    return answers


def test_every_route_answers_exactly_what_the_sdk_declares(client, control, emulator, unchecked):
    answers = _walk_every_route(client, emulator.url)
    walked = {label for label, _, _ in answers}
    assert walked == {f"{r.method} {r.path}" for r in ROUTES}  # the walk covers every route
    for label, declared, body in answers:
        if body.get("deleted") is True:
            assert set(body) == {"id", "object", "deleted"}, label
            continue
        assert contract.shape_violations(body, declared, body["object"]) == [], label


def test_every_event_has_a_stripe_type_and_the_declared_shape(client, control, emulator, unchecked, receiver):
    _walk_every_route(client, emulator.url)
    events = [_raw_event(emulator.url, e.id) for e in client.v1.events.list(params={"limit": 100}).auto_paging_iter()]
    assert len(events) > 30
    for event in events:
        assert event["type"] in contract.event_types()
        assert contract.object_violations(event) == [], event["type"]
        assert "context" not in event and "account" not in event
    delivered = wait_for(lambda: receiver.events and receiver.events)
    assert {e.type for e in delivered} <= contract.event_types()


def _raw_event(url: str, event_id: str) -> dict[str, Any]:
    response = requests.get(f"{url}/v1/events/{event_id}", headers={"Authorization": f"Bearer {SECRET_KEY}"}, timeout=5)
    response.raise_for_status()
    return response.json()


@pytest.mark.parametrize(
    "params, param, code",
    [
        ({"customer": "{customer}", "payment_method_types": ["card"]}, "payment_method_types", "parameter_unknown"),
        ({"usage": "sometimes"}, "usage", None),
        ({"description": ""}, "description", "parameter_invalid_empty"),
    ],
)
def test_setup_intent_creation_rejects_what_the_sdk_does_not_declare(client, params, param, code, unchecked):
    customer = client.v1.customers.create()
    params = {k: (customer.id if v == "{customer}" else v) for k, v in params.items()}
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.setup_intents.create(params=params)  # type: ignore[arg-type]  # deliberately undeclared
    assert raised.value.http_status == 400
    if param is not None:
        assert raised.value.param == param
    assert raised.value.code == code
    assert contract.error_violations(raised.value.json_body) == []


def test_add_lines_rejects_a_currency_per_line_and_wrong_types(client, emulator):
    customer = client.v1.customers.create()
    draft = client.v1.invoices.create(params={"customer": customer.id, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": 1, "currency": "eur"}]})  # type: ignore
    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "lines[0][currency]")
    response = requests.post(
        f"{emulator.url}/v1/invoices/{draft.id}/add_lines",
        data={"lines[0][amount]": "12.5"},
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        **response.json()["error"],
        "code": "parameter_invalid_integer",
        "param": "lines[0][amount]",
    }
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.invoices.add_lines(draft.id, params={})  # type: ignore[typeddict-item]
    assert (missing.value.code, missing.value.param) == ("parameter_missing", "lines")


def test_stripes_documented_limits(client, emulator):
    headers = {"Authorization": f"Bearer {SECRET_KEY}"}
    too_long = requests.post(
        f"{emulator.url}/v1/customers", headers={**headers, "Idempotency-Key": "k" * 256}, timeout=5
    )
    assert too_long.status_code == 400
    ok = requests.post(f"{emulator.url}/v1/customers", headers={**headers, "Idempotency-Key": "k" * 255}, timeout=5)
    assert ok.status_code == 200
    types = [
        f"invoice.{t}"
        for t in (
            "paid",
            "created",
            "updated",
            "voided",
            "finalized",
            "deleted",
            "sent",
            "upcoming",
            "overdue",
            "overpaid",
            "will_be_due",
            "payment_failed",
            "payment_succeeded",
            "payment_action_required",
            "marked_uncollectible",
            "finalization_failed",
            "payment_attempt_required",
        )
    ]
    types += ["customer.created", "customer.updated", "customer.deleted", "payment_method.attached"]
    assert len(types) == 21
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.list(params={"types": types})
    assert client.v1.events.list(params={"types": types[:20]}).object == "list"
    for limit in (0, 101):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.customers.list(params={"limit": limit})
        assert raised.value.param == "limit"


def _invoice_body(client: stripe.StripeClient) -> dict[str, Any]:
    customer = client.v1.customers.create()
    return _raw(client.v1.invoices.create(params={"customer": customer.id}))


def test_the_shape_check_finds_a_removed_field_a_missing_field_a_wrong_null_and_an_unknown_enum(client):
    body = _invoice_body(client)
    assert contract.object_violations(body) == []
    assert contract.object_violations({**body, "subscription": None}) == [
        "invoice.subscription: not declared by the SDK at " + contract.API_VERSION
    ]
    missing = dict(body)
    del missing["status_transitions"]
    assert contract.object_violations(missing) == ["invoice.status_transitions: missing"]
    assert contract.object_violations({**body, "total": None}) == [
        "invoice.total: null, but the SDK declares it required"
    ]
    assert contract.object_violations({**body, "object": "invoice", "livemode": "no"}) == [
        "invoice.livemode: 'no' does not match <class 'bool'>"
    ]
    assert contract.object_violations({**body, "object": "invoice", "auto_advance": 1}) != []


def test_the_error_check_refuses_null_code_and_codes_stripe_does_not_have():
    assert contract.error_violations({"error": {"type": "invalid_request_error", "message": "x"}}) == []
    assert contract.error_violations({"error": {"type": "invalid_request_error", "message": "x", "code": None}})
    assert contract.error_violations(
        {"error": {"type": "invalid_request_error", "message": "x", "code": "invoice_unexpected_state"}}
    )


def test_the_run_time_self_check_turns_a_departure_into_a_500(client, control, emulator):
    control.configure(check_contract=True)
    events = contract.event_types()
    assert "invoiceitem.updated" not in events and "setup_intent.updated" not in events
    # The emulator refuses to emit an event Stripe does not have, whatever the route.
    from stripe_emulator.errors import ContractViolation
    from stripe_emulator.store import BACKGROUND

    with pytest.raises(ContractViolation):
        emulator.app.store._emit("invoiceitem.updated", {"id": "ii_1", "object": "invoiceitem"}, BACKGROUND)


def test_fields_stripe_omits_unless_set_are_absent_or_carry_a_value(client, unchecked):
    """Declared ``Optional`` but left out by Stripe when they do not apply (``PRESENT_ONLY_WHEN_SET``)."""
    customer = _raw(client.v1.customers.create())
    assert "business_name" not in customer and "individual_name" not in customer
    named = client.v1.customers.create(params={"business_name": "Example GmbH"})
    assert _raw(named)["business_name"] == "Example GmbH"
    renamed = _raw(client.v1.customers.update(named.id, params={"business_name": "", "individual_name": "Erika"}))
    assert "business_name" not in renamed and renamed["individual_name"] == "Erika"
    intent = _raw(client.v1.setup_intents.create(params={"customer": customer["id"]}))
    assert "attach_to_self" not in intent
    assert "setup_credential_usage" not in intent["payment_method_options"]["card"]
    method = _raw(
        client.v1.payment_methods.create(
            params={"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034}}
        )
    )
    assert "radar_options" not in method
    item = _raw(client.v1.invoice_items.create(params={"customer": customer["id"], "amount": 100, "currency": "eur"}))
    assert "frozen_fields" not in item and "invoicing_rules" not in item
    country = client.v1.customers.create(params={"address": {"country": "DE"}})
    invoice = _raw(client.v1.invoices.create(params={"customer": country.id, "automatic_tax": {"enabled": True}}))
    assert invoice["automatic_tax"]["liability"] == {"type": "self"}
    for body in (customer, renamed, intent, method, item, invoice):
        assert contract.object_violations(body) == [], body["object"]
    assert contract.object_violations({**customer, "business_name": None}) == [
        "customer.business_name: null (Stripe omits it when it does not apply)"
    ]
