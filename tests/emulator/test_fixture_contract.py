"""Every emulated object carries every key of Stripe's own example object of the same type."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.emulator.conftest import SECRET_KEY, make_customer, open_invoice
from tests.emulator.support import wait_for

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "stripe" / "fixtures3.json"
# Sub-objects whose shape depends on another type (an event's data.object) or that are free-form.
NOT_COMPARED = {"event.data.object", "event.data.previous_attributes"}
FREE_FORM = {"metadata"}


def missing_keys(expected: Any, actual: Any, path: str) -> list[str]:
    """Paths of keys the fixture has and the emulated object lacks (recursing where both are objects)."""
    if path in NOT_COMPARED or not isinstance(expected, dict) or not isinstance(actual, dict):
        return []
    missing = []
    for key, value in expected.items():
        if key not in actual:
            missing.append(f"{path}.{key}")
        elif key not in FREE_FORM:
            if isinstance(value, list) and value and isinstance(value[0], dict) and \
                    isinstance(actual[key], list) and actual[key]:
                missing += missing_keys(value[0], actual[key][0], f"{path}.{key}[]")
            else:
                missing += missing_keys(value, actual[key], f"{path}.{key}")
    return missing


@pytest.fixture(scope="module")
def fixtures() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text())["resources"]


@pytest.fixture
def emulated(emulator, client, receiver) -> dict[str, dict[str, Any]]:
    """One raw JSON object of each type, as the emulator serves it."""
    customer = make_customer(client, "pm_card_visa")
    invoice = open_invoice(client, customer.id, auto_advance=True)
    wait_for(lambda: client.v1.invoices.retrieve(invoice.id).status == "paid")
    item = client.v1.invoice_items.list(params={"invoice": invoice.id}).data[0]
    intent = client.v1.setup_intents.list(params={"customer": customer.id}).data[0]
    event = client.v1.events.list(params={"type": "invoice.paid"}).data[0]
    endpoint = client.v1.webhook_endpoints.list().data[0]

    def raw(path: str) -> dict[str, Any]:
        response = requests.get(f"{emulator.url}{path}", headers={"Authorization": f"Bearer {SECRET_KEY}"}, timeout=5)
        response.raise_for_status()
        return response.json()

    invoice_json = raw(f"/v1/invoices/{invoice.id}")
    return {
        "customer": raw(f"/v1/customers/{customer.id}"),
        "setup_intent": raw(f"/v1/setup_intents/{intent.id}"),
        "payment_method": raw(f"/v1/payment_methods/{customer.invoice_settings.default_payment_method}"),
        "invoiceitem": raw(f"/v1/invoiceitems/{item.id}"),
        "invoice": invoice_json,
        "line_item": invoice_json["lines"]["data"][0],
        "event": raw(f"/v1/events/{event.id}"),
        "webhook_endpoint": raw(f"/v1/webhook_endpoints/{endpoint.id}"),
    }


@pytest.mark.parametrize("object_type", [
    "invoice", "invoiceitem", "customer", "setup_intent", "payment_method", "event", "line_item", "webhook_endpoint",
])
def test_emulated_object_has_every_key_of_stripes_example(fixtures, emulated, object_type):
    actual = emulated[object_type]
    assert actual["object"] == object_type
    assert missing_keys(fixtures[object_type], actual, object_type) == []


def test_sepa_payment_method_has_every_key_except_the_card_block(fixtures, emulator, client):
    customer = make_customer(client, "pm_sepaDebit")
    pm = requests.get(f"{emulator.url}/v1/payment_methods/{customer.invoice_settings.default_payment_method}",
                      headers={"Authorization": f"Bearer {SECRET_KEY}"}, timeout=5).json()
    expected = {k: v for k, v in fixtures["payment_method"].items() if k != "card"}  # per type, as Stripe does
    assert missing_keys(expected, pm, "payment_method") == []
    assert set(pm["sepa_debit"]) >= {"bank_code", "country", "last4", "fingerprint"}


def test_contract_check_notices_a_missing_key(fixtures, emulated):
    broken = dict(emulated["invoice"])
    del broken["status_transitions"]
    assert missing_keys(fixtures["invoice"], broken, "invoice") == ["invoice.status_transitions"]
    nested = json.loads(json.dumps(emulated["customer"]))
    del nested["invoice_settings"]["footer"]
    assert missing_keys(fixtures["customer"], nested, "customer") == ["customer.invoice_settings.footer"]
