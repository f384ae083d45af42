"""Customer tax ids: created with the customer or on their own, listed, deleted, and kept by finalized invoices."""

from __future__ import annotations

import json

import pytest
import stripe

from stripe_emulator import contract
from tests.emulator.conftest import open_invoice


def test_tax_ids_given_at_creation_and_added_later_are_listed_and_finalized_invoices_keep_them(client, receiver):
    customer = client.v1.customers.create(params={"tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}]})
    added = client.v1.customers.tax_ids.create(customer.id, params={"type": "eu_vat", "value": "ATU12345678"})
    raw = json.loads(added.last_response.body)
    assert contract.object_violations(raw) == []
    assert (added.country, added.customer, added.verification.status) == ("AT", customer.id, "pending")
    listed = client.v1.customers.tax_ids.list(customer.id).data
    assert [t.value for t in listed] == ["ATU12345678", "DE123456789"]
    assert client.v1.customers.tax_ids.retrieve(customer.id, added.id).value == "ATU12345678"
    draft = client.v1.invoices.create(params={"customer": customer.id, "currency": "eur"})
    assert draft.customer_tax_ids == []
    invoice = open_invoice(client, customer.id, auto_advance=False)
    assert [(t.type, t.value) for t in invoice.customer_tax_ids] == [
        ("eu_vat", "DE123456789"),
        ("eu_vat", "ATU12345678"),
    ]
    deleted = client.v1.customers.tax_ids.delete(customer.id, added.id)
    assert deleted.deleted is True
    assert [t.value for t in client.v1.customers.tax_ids.list(customer.id).data] == ["DE123456789"]
    assert len(client.v1.invoices.retrieve(invoice.id).customer_tax_ids) == 2  # the invoice keeps what it had
    types = {e.type for e in client.v1.events.list(params={"limit": 100}).data}
    assert {"customer.tax_id.created", "customer.tax_id.deleted"} <= types


def test_a_tax_id_of_the_wrong_form_or_type_is_refused(client):
    customer = client.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError) as invalid:
        client.v1.customers.tax_ids.create(customer.id, params={"type": "eu_vat", "value": "US123"})
    assert (invalid.value.code, invalid.value.param) == ("tax_id_invalid", "value")
    with pytest.raises(stripe.InvalidRequestError) as unknown_type:
        client.v1.customers.tax_ids.create(customer.id, params={"type": "xx_vat", "value": "123"})  # type: ignore
    assert unknown_type.value.param == "type"
    with pytest.raises(stripe.InvalidRequestError) as at_creation:
        client.v1.customers.create(params={"tax_id_data": [{"type": "eu_vat", "value": "12"}]})
    assert at_creation.value.param == "tax_id_data[0][value]"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.tax_ids.retrieve(customer.id, "txi_missing")
    assert missing.value.http_status == 404
