"""The customer's invoice balance: applied at finalization, and Stripe's minimum charge amount."""

from __future__ import annotations

import stripe

from tests.emulator.conftest import make_customer, open_invoice


def _transactions(client: stripe.StripeClient, customer_id: str) -> list[tuple[str, int, int]]:
    listed = client.v1.customers.balance_transactions.list(customer_id).data
    return [(t.type, t.amount, t.ending_balance) for t in reversed(listed)]


def test_a_credit_balance_reduces_the_next_invoice_and_what_is_left_stays(client, customer_with_card):
    client.v1.customers.update(customer_with_card.id, params={"balance": -5000})
    invoice = open_invoice(client, customer_with_card.id, amounts=(3000,), auto_advance=False)
    assert (invoice.starting_balance, invoice.ending_balance) == (-5000, -2000)
    assert (invoice.total, invoice.amount_due, invoice.status) == (3000, 0, "paid")
    assert client.v1.customers.retrieve(customer_with_card.id).balance == -2000
    assert _transactions(client, customer_with_card.id) == [
        ("adjustment", -5000, -5000),
        ("applied_to_invoice", 3000, -2000),
    ]
    applied = client.v1.customers.balance_transactions.list(customer_with_card.id).data[0]
    assert applied.invoice == invoice.id
    again = client.v1.customers.balance_transactions.retrieve(customer_with_card.id, applied.id)
    assert again.id == applied.id


def test_a_debit_balance_is_added_to_the_amount_due(client, customer_with_card):
    customer = client.v1.customers.create(params={"balance": 700})
    draft = client.v1.invoices.create(params={"customer": customer.id, "currency": "eur", "auto_advance": False})
    assert draft.starting_balance == 700
    client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": 1000}]})
    invoice = client.v1.invoices.finalize_invoice(draft.id)
    assert (invoice.total, invoice.starting_balance, invoice.ending_balance) == (1000, 700, 0)
    assert (invoice.amount_due, invoice.amount_remaining) == (1700, 1700)
    assert _transactions(client, customer.id) == [("initial", 700, 700), ("applied_to_invoice", -700, 0)]


def test_an_invoice_below_the_minimum_charge_is_marked_paid_and_its_amount_moves_to_the_balance(client, receiver):
    customer = make_customer(client, "pm_card_visa")
    small = open_invoice(client, customer.id, amounts=(30,))
    assert small.status == "paid"
    assert (small.total, small.amount_due, small.amount_paid, small.amount_remaining) == (30, 0, 0, 0)
    assert (small.starting_balance, small.ending_balance) == (0, 30)
    assert client.v1.customers.retrieve(customer.id).balance == 30
    assert _transactions(client, customer.id) == [("invoice_too_small", 30, 30)]
    paid = client.v1.events.list(params={"type": "invoice.paid"}).data
    assert [e.data.object.id for e in paid] == [small.id]
    updated = client.v1.events.list(params={"type": "customer.updated"}).data[0]
    assert updated.data.object.balance == 30 and updated.data.previous_attributes["balance"] == 0
    # The next invoice collects it.
    following = open_invoice(client, customer.id, amounts=(1000,), auto_advance=False)
    assert (following.starting_balance, following.amount_due, following.ending_balance) == (30, 1030, 0)
    assert client.v1.customers.retrieve(customer.id).balance == 0


def test_fifty_cents_is_charged_as_usual(client, customer_with_card):
    invoice = open_invoice(client, customer_with_card.id, amounts=(50,), auto_advance=False)
    assert (invoice.status, invoice.amount_due) == ("open", 50)
    assert client.v1.invoices.pay(invoice.id).amount_paid == 50


def test_voiding_an_invoice_gives_back_the_balance_it_took(client, customer_with_card):
    client.v1.customers.update(customer_with_card.id, params={"balance": -500})
    invoice = open_invoice(client, customer_with_card.id, amounts=(2000,), auto_advance=False)
    assert invoice.amount_due == 1500
    client.v1.invoices.void_invoice(invoice.id)
    assert client.v1.customers.retrieve(customer_with_card.id).balance == -500
    assert _transactions(client, customer_with_card.id)[-1] == ("unapplied_from_invoice", -500, -500)
