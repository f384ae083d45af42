"""Credit notes: on open invoices (less due), on paid ones (refund, balance credit, out of band), tax, void."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stripe

from stripe_emulator import contract
from tests.emulator.conftest import open_invoice

VAT = {"display_name": "USt.", "percentage": 19.0, "inclusive": False, "country": "DE"}


def _raw(obj: Any) -> dict[str, Any]:
    return json.loads(obj.last_response.body)


def _paid_invoice(client: stripe.StripeClient, customer_id: str, amounts=(2000, 1774)) -> stripe.Invoice:
    invoice = open_invoice(client, customer_id, amounts=amounts, auto_advance=False)
    return client.v1.invoices.pay(invoice.id)


def test_a_credit_note_on_an_open_invoice_reduces_what_is_due(client, customer_with_card, receiver):
    invoice = open_invoice(client, customer_with_card.id, auto_advance=False)
    line = invoice.lines.data[0]
    note = client.v1.credit_notes.create(
        params={
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 500}],
            "memo": "Goodwill",
        }
    )
    assert contract.object_violations(_raw(note)) == []
    assert (note.status, note.type, note.amount, note.total) == ("issued", "pre_payment", 500, 500)
    assert (note.pre_payment_amount, note.post_payment_amount, note.out_of_band_amount) == (500, 0, None)
    assert note.number == f"{invoice.number}-CN-01"
    assert note.lines.data[0].invoice_line_item == line.id
    after = client.v1.invoices.retrieve(invoice.id)
    assert (after.amount_due, after.amount_remaining, after.pre_payment_credit_notes_amount) == (3274, 3274, 500)
    assert after.status == "open" and after.total == 3774
    created = client.v1.events.list(params={"type": "credit_note.created"}).data
    assert [e.data.object.id for e in created] == [note.id]
    updated = client.v1.events.list(params={"type": "invoice.updated"}).data[0]
    assert updated.data.previous_attributes["amount_due"] == 3774


def test_crediting_everything_left_on_an_open_invoice_settles_it(client, customer_with_card):
    invoice = open_invoice(client, customer_with_card.id, auto_advance=False)
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 3774})
    settled = client.v1.invoices.retrieve(invoice.id)
    assert (settled.status, settled.amount_due, settled.amount_paid, settled.amount_remaining) == ("paid", 0, 0, 0)
    assert note.lines.data == [] and note.pre_payment_amount == 3774
    assert [e.data.object.id for e in client.v1.events.list(params={"type": "invoice.paid"}).data] == [invoice.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 1})


def test_a_paid_invoice_is_credited_by_refund_balance_and_out_of_band_that_must_add_up(client, customer_with_card):
    invoice = _paid_invoice(client, customer_with_card.id)
    assert invoice.amount_paid == 3774
    with pytest.raises(stripe.InvalidRequestError) as unsplit:
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 1000})
    assert unsplit.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 1000, "refund_amount": 999})
    note = client.v1.credit_notes.create(
        params={
            "invoice": invoice.id,
            "amount": 1000,
            "refund_amount": 600,
            "credit_amount": 300,
            "out_of_band_amount": 100,
            "reason": "order_change",
        },
        options={"idempotency_key": "cn-1"},
    )
    replay = client.v1.credit_notes.create(
        params={
            "invoice": invoice.id,
            "amount": 1000,
            "refund_amount": 600,
            "credit_amount": 300,
            "out_of_band_amount": 100,
            "reason": "order_change",
        },
        options={"idempotency_key": "cn-1"},
    )
    assert replay.id == note.id
    assert (note.type, note.pre_payment_amount, note.post_payment_amount) == ("post_payment", 0, 1000)
    assert note.out_of_band_amount == 100
    refund = client.v1.refunds.retrieve(note.refunds[0].refund)
    assert (refund.amount, refund.status, refund.currency, note.refunds[0].amount_refunded) == (
        600,
        "succeeded",
        "eur",
        600,
    )
    assert [r.id for r in client.v1.refunds.list().data] == [refund.id]
    transaction = client.v1.customers.balance_transactions.retrieve(
        customer_with_card.id, note.customer_balance_transaction
    )
    assert (transaction.type, transaction.amount, transaction.credit_note) == ("credit_note", -300, note.id)
    assert client.v1.customers.retrieve(customer_with_card.id).balance == -300
    after = client.v1.invoices.retrieve(invoice.id)
    assert (after.status, after.amount_paid, after.post_payment_credit_notes_amount) == ("paid", 3774, 1000)
    types = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
    assert {"refund.created", "credit_note.created", "customer.updated", "invoice.updated"} <= set(types)
    # A second credit note; never beyond what was paid.
    second = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 2774, "out_of_band_amount": 2774})
    assert second.number == f"{invoice.number}-CN-02"
    assert client.v1.invoices.retrieve(invoice.id).post_payment_credit_notes_amount == 3774
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 1, "out_of_band_amount": 1})
    assert too_much.value.param == "amount"
    listed = client.v1.credit_notes.list(params={"invoice": invoice.id}).data
    assert [n.id for n in listed] == [second.id, note.id]
    assert client.v1.credit_notes.list(params={"customer": customer_with_card.id}).data[0].id == second.id


def test_credit_on_the_balance_is_taken_by_the_next_invoice(client, customer_with_card):
    invoice = _paid_invoice(client, customer_with_card.id)
    client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 774, "credit_amount": 774})
    following = open_invoice(client, customer_with_card.id, amounts=(2000,), auto_advance=False)
    assert (following.starting_balance, following.amount_due, following.ending_balance) == (-774, 1226, 0)


def test_credited_lines_carry_their_share_of_the_lines_tax(client, customer_with_card):
    rate = client.v1.tax_rates.create(params=VAT)  # type: ignore[arg-type]
    draft = client.v1.invoices.create(
        params={"customer": customer_with_card.id, "currency": "eur", "auto_advance": False}
    )
    client.v1.invoices.add_lines(
        draft.id, params={"lines": [{"amount": 1001, "tax_rates": [rate.id]}, {"amount": 500, "quantity": 1}]}
    )
    invoice = client.v1.invoices.finalize_invoice(draft.id)
    taxed = invoice.lines.data[0]
    assert taxed.taxes[0].amount == 190 and invoice.total == 1691
    first = client.v1.credit_notes.create(
        params={
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": taxed.id, "amount": 333}],
        }
    )
    line = first.lines.data[0]
    assert (line.amount, line.taxes[0].amount, line.taxes[0].taxable_amount) == (333, 63, 333)
    assert [r.id for r in line.tax_rates] == [rate.id]
    assert (first.subtotal, first.total, first.total_excluding_tax, first.total_taxes[0].amount) == (333, 396, 333, 63)
    rest = client.v1.credit_notes.create(
        params={
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": taxed.id, "amount": 668}],
        }
    )
    assert rest.lines.data[0].taxes[0].amount == 127  # 63 + 127 = the line's 190
    with pytest.raises(stripe.InvalidRequestError) as over:
        client.v1.credit_notes.create(
            params={
                "invoice": invoice.id,
                "lines": [{"type": "invoice_line_item", "invoice_line_item": taxed.id, "amount": 1}],
            }
        )
    assert over.value.param == "lines[0][amount]"
    custom = client.v1.credit_notes.preview(
        params={
            "invoice": invoice.id,
            "lines": [
                {
                    "type": "custom_line_item",
                    "description": "Rabatt",
                    "unit_amount": 100,
                    "quantity": 2,
                    "tax_rates": [rate.id],
                }
            ],
        }
    )
    assert (custom.subtotal, custom.total, custom.lines.data[0].taxes[0].amount) == (200, 238, 38)
    assert contract.object_violations(_raw(custom)) == []
    lines = client.v1.credit_notes.preview_lines.list(
        params={"invoice": invoice.id, "lines": [{"type": "custom_line_item", "unit_amount": 100, "quantity": 2}]}
    )
    assert [line.amount for line in lines.data] == [200]
    assert len(client.v1.credit_notes.list(params={"invoice": invoice.id}).data) == 2  # the preview issued none
    listed = client.v1.credit_notes.line_items.list(first.id)
    assert [line.id for line in listed.data] == [first.lines.data[0].id]


@pytest.mark.parametrize(
    "line, param",
    [
        ({"type": "invoice_line_item", "invoice_line_item": "il_missing", "amount": 1}, "lines[0][invoice_line_item]"),
        ({"type": "custom_line_item", "amount": 100, "unit_amount": 100}, "lines[0][amount]"),
        ({"type": "invoice_line_item", "invoice_line_item": "{line}", "unit_amount": 100}, "lines[0][unit_amount]"),
        ({"type": "custom_line_item", "description": "x"}, "lines[0][unit_amount]"),
    ],
)
def test_credit_note_lines_take_only_what_their_type_allows(client, customer_with_card, line, param):
    invoice = open_invoice(client, customer_with_card.id, auto_advance=False)
    line = {k: invoice.lines.data[0].id if v == "{line}" else v for k, v in line.items()}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.credit_notes.create(params={"invoice": invoice.id, "lines": [line]})  # type: ignore[list-item]
    assert refused.value.param == param


def test_only_open_or_paid_invoices_take_credit_notes(client, customer_with_card):
    draft = client.v1.invoices.create(params={"customer": customer_with_card.id, "currency": "eur"})
    voided = client.v1.invoices.void_invoice(open_invoice(client, customer_with_card.id, auto_advance=False).id)
    for invoice in (draft, voided):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 100})
        assert refused.value.param == "invoice"
    with pytest.raises(stripe.InvalidRequestError) as neither:
        client.v1.credit_notes.create(params={"invoice": voided.id})
    assert neither.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.credit_notes.create(params={"invoice": "in_missing", "amount": 1})
    assert missing.value.code == "resource_missing"


def test_a_credit_note_can_be_updated_and_voided_while_its_invoice_is_open(client, customer_with_card):
    invoice = open_invoice(client, customer_with_card.id, auto_advance=False)
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 774})
    updated = client.v1.credit_notes.update(note.id, params={"memo": "Korrektur", "metadata": {"k": "v"}})
    assert (updated.memo, updated.metadata.to_dict()) == ("Korrektur", {"k": "v"})
    assert (
        client.v1.events.list(params={"type": "credit_note.updated"}).data[0].data.previous_attributes["memo"] is None
    )
    voided = client.v1.credit_notes.void_credit_note(note.id)
    assert (voided.status, voided.voided_at is not None) == ("void", True)
    restored = client.v1.invoices.retrieve(invoice.id)
    assert (restored.amount_due, restored.amount_remaining, restored.pre_payment_credit_notes_amount) == (3774, 3774, 0)
    assert client.v1.events.list(params={"type": "credit_note.voided"}).data[0].data.object.id == note.id
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.credit_notes.void_credit_note(note.id)
    assert client.v1.credit_notes.retrieve(note.id).status == "void"
    again = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 3774})
    assert again.number == f"{invoice.number}-CN-02"


def test_a_credit_note_of_a_paid_invoice_is_not_voided_its_refund_stays(client, customer_with_card):
    invoice = _paid_invoice(client, customer_with_card.id)
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 500, "refund_amount": 500})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.credit_notes.void_credit_note(note.id)
    assert client.v1.refunds.retrieve(note.refunds[0].refund).status == "succeeded"


def _manually_taxed_invoice(client: stripe.StripeClient, customer_id: str) -> stripe.Invoice:
    """An open invoice of two lines whose VAT was given as tax amounts (Stripe makes the rates)."""
    draft = client.v1.invoices.create(params={"customer": customer_id, "currency": "eur", "auto_advance": False})
    rate_data = {"display_name": "USt. 19 %", "percentage": 19.0, "inclusive": False, "country": "DE"}
    client.v1.invoices.add_lines(
        draft.id,
        params={
            "lines": [
                {
                    "amount": amount,
                    "tax_amounts": [{"amount": tax, "taxable_amount": amount, "tax_rate_data": rate_data}],
                }
                for amount, tax in ((1001, 190), (500, 95))
            ]
        },
    )
    return client.v1.invoices.finalize_invoice(draft.id)


def test_a_credit_note_line_takes_the_tax_amounts_given_at_the_rate_stripe_made(client, customer_with_card):
    invoice = _manually_taxed_invoice(client, customer_with_card.id)
    taxed = invoice.lines.data[0]
    rate_id = taxed.taxes[0].tax_rate_details.tax_rate

    note = client.v1.credit_notes.create(
        params={
            "invoice": invoice.id,
            "lines": [
                {
                    "type": "invoice_line_item",
                    "invoice_line_item": taxed.id,
                    "amount": 333,
                    "tax_amounts": [{"amount": 64, "tax_rate": rate_id, "taxable_amount": 333}],
                }
            ],
        }
    )

    assert contract.object_violations(_raw(note)) == []
    line = note.lines.data[0]
    assert (line.taxes[0].amount, line.taxes[0].taxable_amount, line.taxes[0].tax_rate_details.tax_rate) == (
        64,
        333,
        rate_id,
    )
    assert (note.total_excluding_tax, note.total, note.total_taxes[0].amount) == (333, 397, 64)
    # The rest of the line takes the rest of its tax, whatever the earlier credit note took.
    rest = client.v1.credit_notes.preview(
        params={
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": taxed.id, "amount": 668}],
        }
    )
    assert rest.lines.data[0].taxes[0].amount == 126  # 190 - 64


def test_tax_amounts_beyond_the_lines_tax_or_at_another_rate_are_refused(client, customer_with_card):
    invoice = _manually_taxed_invoice(client, customer_with_card.id)
    taxed = invoice.lines.data[0]
    rate_id = taxed.taxes[0].tax_rate_details.tax_rate
    own_rate = client.v1.tax_rates.create(params=VAT)  # type: ignore[arg-type]

    def credit(tax_amount: dict[str, Any]) -> None:
        client.v1.credit_notes.create(
            params={
                "invoice": invoice.id,
                "lines": [
                    {
                        "type": "invoice_line_item",
                        "invoice_line_item": taxed.id,
                        "amount": 1001,
                        "tax_amounts": [tax_amount],  # type: ignore[list-item]
                    }
                ],
            }
        )

    for tax_amount, param in [
        ({"amount": 191, "tax_rate": rate_id, "taxable_amount": 1001}, "lines[0][tax_amounts][0][amount]"),
        ({"amount": 190, "tax_rate": own_rate.id, "taxable_amount": 1001}, "lines[0][tax_amounts][0][tax_rate]"),
        ({"amount": 190, "tax_rate": "txr_missing", "taxable_amount": 1001}, "lines[0][tax_amounts][0][tax_rate]"),
    ]:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            credit(tax_amount)
        assert refused.value.param == param
    assert client.v1.credit_notes.list(params={"invoice": invoice.id}).data == []
