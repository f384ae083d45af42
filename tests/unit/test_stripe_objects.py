"""The typed Stripe objects at the port: read from Stripe's JSON, only fields the pinned SDK declares."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
import stripe

from billing_core.errors import InvalidStripeEvent, InvalidStripeObject
from billing_core.ports.stripe_objects import (
    CreditNoteRefund,
    LineTax,
    OtherStripeObject,
    SetupError,
    StripeCreditNote,
    StripeCreditNoteLine,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripeInvoiceLine,
    StripePaymentMethod,
    StripeSetupIntent,
)
from billing_core.use_cases.apply_event import HANDLED_EVENT_TYPES

SHARED = Path(__file__).resolve().parents[3] / "shared"

# The SDK's resource class of each reader, and the nested classes whose fields a reader reaches into.
RESOURCES: dict[type, type] = {
    StripeCustomer: stripe.Customer,
    StripeSetupIntent: stripe.SetupIntent,
    StripePaymentMethod: stripe.PaymentMethod,
    StripeInvoice: stripe.Invoice,
    StripeInvoiceLine: stripe.InvoiceLineItem,
    StripeCreditNote: stripe.CreditNote,
    StripeCreditNoteLine: stripe.CreditNoteLineItem,
}
NESTED = [
    (stripe.Customer.InvoiceSettings, {"default_payment_method"}),
    (stripe.SetupIntent.LastSetupError, {"code", "decline_code"}),
    (stripe.Invoice.StatusTransitions, {"finalized_at", "paid_at", "voided_at", "marked_uncollectible_at"}),
    (stripe.Invoice.LastFinalizationError, {"message"}),
    (stripe.PaymentMethod.Card, {"brand", "last4"}),
    (stripe.PaymentMethod.SepaDebit, {"last4"}),
    (stripe.Event.Data, {"object", "previous_attributes"}),
    (stripe.InvoiceLineItem.Tax, {"amount", "tax_rate_details", "taxable_amount"}),
    (stripe.InvoiceLineItem.Tax.TaxRateDetails, {"tax_rate"}),
    (stripe.CreditNoteLineItem.Tax, {"amount", "tax_rate_details", "taxable_amount"}),
    (stripe.CreditNoteLineItem.Tax.TaxRateDetails, {"tax_rate"}),
    (stripe.CreditNote.Refund, {"refund", "amount_refunded"}),
    (stripe.CreditNote.TotalTax, {"amount"}),
]


def declared_fields(resource: type) -> set[str]:
    """Every field the SDK annotates on ``resource`` (its own and its bases')."""
    return {name for klass in inspect.getmro(resource) for name in getattr(klass, "__annotations__", {})}


def top_level_reads(reader: type) -> set[str]:
    """The keys ``reader.from_json`` reads with ``obj.get(...)``."""
    tree = ast.parse(inspect.getsource(reader))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "obj"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


@pytest.mark.parametrize("reader", list(RESOURCES), ids=lambda reader: reader.__name__)
def test_every_field_a_reader_reads_is_declared_by_the_pinned_sdk(reader):
    reads = top_level_reads(reader)

    assert reads, "the reader reads nothing: the parse of its source is broken"
    assert reads - {"object"} <= declared_fields(RESOURCES[reader])


@pytest.mark.parametrize(("resource", "fields"), NESTED, ids=lambda value: getattr(value, "__qualname__", ""))
def test_every_nested_field_read_is_declared_by_the_pinned_sdk(resource, fields):
    assert fields <= declared_fields(resource)


def test_the_payment_method_kinds_offered_are_payment_method_fields():
    # A payment method's details sit under the key named by its type.
    assert {"card", "sepa_debit"} <= declared_fields(stripe.PaymentMethod)


def test_an_expanded_reference_reads_as_its_id():
    as_id = StripeInvoice.from_json({"id": "in_1", "customer": "cus_1"})
    expanded = StripeInvoice.from_json({"id": "in_1", "customer": {"id": "cus_1", "object": "customer"}})

    assert as_id == expanded and as_id.customer_id == "cus_1"


def test_an_invoice_reads_its_totals_lines_and_transitions():
    invoice = StripeInvoice.from_json(
        {
            "id": "in_1",
            "object": "invoice",
            "status": "paid",
            "total": 3774,
            "amount_due": 3774,
            "amount_paid": 3774,
            "attempt_count": 1,
            "metadata": {"invoiceId": "inv_2026-11_u1", "empty": None},
            "lines": {
                "object": "list",
                "data": [{"metadata": {"line": "base"}}, {"metadata": {"line": "aws"}}, {"metadata": {}}],
            },
            "status_transitions": {"finalized_at": 10, "paid_at": 20, "voided_at": None},
            "last_finalization_error": None,
        }
    )

    assert (invoice.total, invoice.amount_paid, invoice.attempt_count) == (3774, 3774, 1)
    assert invoice.line_kinds == {"base", "aws"}
    assert invoice.metadata == {"invoiceId": "inv_2026-11_u1"}
    assert (invoice.status_transitions.finalized_at, invoice.status_transitions.paid_at) == (10, 20)
    assert invoice.status_transitions.voided_at is None and invoice.finalization_error is None


@pytest.mark.parametrize("total", ["3774", 37.74, True, None])
def test_a_total_that_is_not_a_whole_number_of_cents_reads_as_none(total):
    # The invoice job then refuses to finalize (its totals check), rather than trusting a guess.
    assert StripeInvoice.from_json({"id": "in_1", "total": total}).total is None


def test_a_payment_method_reads_the_details_of_its_own_kind():
    card = StripePaymentMethod.from_json({"id": "pm_1", "type": "card", "card": {"brand": "visa", "last4": "4242"}})
    sepa = StripePaymentMethod.from_json(
        {"id": "pm_2", "type": "sepa_debit", "sepa_debit": {"last4": "3000"}, "card": {"brand": "visa"}}
    )

    assert (card.type, card.brand, card.last4) == ("card", "visa", "4242")
    assert (sepa.type, sepa.brand, sepa.last4) == ("sepa_debit", None, "3000")


def test_a_setup_intent_keeps_the_error_codes_and_hides_its_secret():
    intent = StripeSetupIntent.from_json(
        {
            "id": "seti_1",
            "client_secret": "seti_1_secret_x",
            "customer": "cus_1",
            "last_setup_error": {"code": "card_declined", "decline_code": "insufficient_funds", "message": "Declined"},
        }
    )

    assert intent.last_setup_error == SetupError("card_declined", "insufficient_funds")
    assert "seti_1_secret_x" not in repr(intent)


@pytest.mark.parametrize("reader", list(RESOURCES), ids=lambda reader: reader.__name__)
@pytest.mark.parametrize("obj", [{}, {"id": ""}, {"id": 7}])
def test_an_object_without_an_id_is_refused(reader, obj):
    with pytest.raises(InvalidStripeObject):
        reader.from_json(obj)


def test_an_event_reads_its_object_by_kind_and_the_previous_customer():
    detached = StripeEvent.from_json(
        {
            "id": "evt_1",
            "type": "payment_method.detached",
            "created": 5,
            "data": {
                "object": {"id": "pm_1", "object": "payment_method", "type": "card", "customer": None},
                "previous_attributes": {"customer": "cus_1"},
            },
        }
    )
    unused = StripeEvent.from_json(
        {"id": "evt_2", "type": "charge.succeeded", "data": {"object": {"id": "ch_1", "object": "charge"}}}
    )

    assert isinstance(detached.object, StripePaymentMethod) and detached.previous_customer_id == "cus_1"
    assert detached.created_ms == 5000
    assert unused.object == OtherStripeObject("charge", "ch_1")


def test_an_event_whose_handled_object_has_no_id_is_not_an_event():
    with pytest.raises(InvalidStripeEvent, match="evt_1"):
        StripeEvent.from_json({"id": "evt_1", "type": "invoice.paid", "data": {"object": {"object": "invoice"}}})


def _fixture(name: str) -> dict[str, Any]:
    fixtures = json.loads((SHARED / "stripe" / "fixtures3.json").read_text())
    resources = fixtures.get("resources", fixtures)
    return resources[name]


@pytest.mark.skipif(not (SHARED / "stripe" / "fixtures3.json").exists(), reason="needs ../shared")
@pytest.mark.parametrize(
    ("name", "reader"),
    [
        ("invoice", StripeInvoice),
        ("line_item", StripeInvoiceLine),
        ("credit_note", StripeCreditNote),
        ("credit_note_line_item", StripeCreditNoteLine),
        ("customer", StripeCustomer),
        ("setup_intent", StripeSetupIntent),
        ("payment_method", StripePaymentMethod),
    ],
)
def test_stripes_own_example_objects_read_without_loss_of_their_id(name, reader):
    example = _fixture(name)

    assert reader.from_json(example).id == example["id"]


@pytest.mark.parametrize("event_type", sorted(HANDLED_EVENT_TYPES))
def test_every_handled_event_type_has_a_reader_for_its_object(event_type):
    event = StripeEvent.from_json({"id": "evt_1", "type": event_type, "data": {"object": {"id": "x_1"}}})

    assert not isinstance(event.object, OtherStripeObject)


def test_the_line_tax_reader_reads_only_fields_the_sdk_declares():
    reads = top_level_reads(LineTax)

    assert reads and reads <= declared_fields(stripe.InvoiceLineItem.Tax) & declared_fields(
        stripe.CreditNoteLineItem.Tax
    )


def test_an_invoice_reads_its_balances_and_credit_note_amounts_and_defaults_without_them():
    invoice = StripeInvoice.from_json(
        {
            "id": "in_1",
            "amount_due": 1226,
            "amount_remaining": 726,
            "starting_balance": -774,
            "ending_balance": 0,
            "pre_payment_credit_notes_amount": 500,
            "post_payment_credit_notes_amount": 0,
        }
    )
    bare = StripeInvoice.from_json({"id": "in_2"})

    assert (invoice.amount_remaining, invoice.starting_balance, invoice.ending_balance) == (726, -774, 0)
    assert (invoice.pre_payment_credit_notes_amount, invoice.post_payment_credit_notes_amount) == (500, 0)
    assert (bare.amount_remaining, bare.starting_balance, bare.ending_balance) == (None, 0, None)
    assert (bare.pre_payment_credit_notes_amount, bare.post_payment_credit_notes_amount) == (0, 0)


def test_an_invoice_line_reads_its_kind_and_each_tax_with_its_rate():
    line = StripeInvoiceLine.from_json(
        {
            "id": "il_1",
            "object": "line_item",
            "amount": 1774,
            "metadata": {"line": "aws"},
            "taxes": [
                {
                    "amount": 337,
                    "taxable_amount": 1774,
                    "tax_behavior": "exclusive",
                    "tax_rate_details": {"tax_rate": "txr_1"},
                    "type": "tax_rate_details",
                }
            ],
        }
    )
    untaxed = StripeInvoiceLine.from_json({"id": "il_2", "amount": 100, "metadata": {}, "taxes": None})

    assert (line.id, line.amount, line.kind, line.tax) == ("il_1", 1774, "aws", 337)
    assert line.taxes == (LineTax(337, "txr_1", 1774),)
    assert (untaxed.kind, untaxed.taxes, untaxed.tax) == (None, (), 0)


def test_a_credit_note_reads_its_settlement_refunds_and_lines():
    note = StripeCreditNote.from_json(
        {
            "id": "cn_1",
            "object": "credit_note",
            "status": "issued",
            "number": "ABCD-0001-CN-01",
            "invoice": {"id": "in_1", "object": "invoice"},
            "customer": "cus_1",
            "currency": "eur",
            "total": 1190,
            "subtotal": 1000,
            "total_excluding_tax": 1000,
            "total_taxes": [{"amount": 190, "tax_rate_details": {"tax_rate": "txr_1"}}],
            "pre_payment_amount": 0,
            "post_payment_amount": 1190,
            "out_of_band_amount": 90,
            "refunds": [{"refund": "re_1", "amount_refunded": 600}, {"refund": {"id": "re_2"}, "amount_refunded": 200}],
            "customer_balance_transaction": "cbtxn_1",
            "type": "post_payment",
            "reason": "order_change",
            "memo": "Korrektur",
            "metadata": {"creditNoteId": "cn_2026-11_u1_1"},
            "created": 10,
            "voided_at": None,
            "lines": {
                "object": "list",
                "data": [
                    {
                        "id": "cnli_1",
                        "invoice_line_item": "il_1",
                        "amount": 1000,
                        "taxes": [{"amount": 190, "taxable_amount": 1000, "tax_rate_details": {"tax_rate": "txr_1"}}],
                    }
                ],
            },
        }
    )

    assert (note.status, note.number, note.invoice_id, note.customer_id) == (
        "issued",
        "ABCD-0001-CN-01",
        "in_1",
        "cus_1",
    )
    assert (note.total, note.subtotal, note.total_excluding_tax, note.total_tax) == (1190, 1000, 1000, 190)
    assert (note.pre_payment_amount, note.post_payment_amount, note.out_of_band_amount) == (0, 1190, 90)
    assert note.refunds == (CreditNoteRefund("re_1", 600), CreditNoteRefund("re_2", 200)) and note.refund_amount == 800
    assert (note.customer_balance_transaction_id, note.memo, dict(note.metadata)) == (
        "cbtxn_1",
        "Korrektur",
        {"creditNoteId": "cn_2026-11_u1_1"},
    )
    assert note.lines == (StripeCreditNoteLine("cnli_1", "il_1", 1000, (LineTax(190, "txr_1", 1000),)),)
    assert note.lines[0].tax == 190


@pytest.mark.skipif(not (SHARED / "stripe" / "fixtures3.json").exists(), reason="needs ../shared")
def test_stripes_example_credit_note_reads_its_lines_and_refunds():
    example = _fixture("credit_note")

    note = StripeCreditNote.from_json(example)

    assert (note.id, note.invoice_id, note.status, note.total) == (example["id"], example["invoice"], "issued", 1690)
    assert [(line.id, line.invoice_line_id, line.amount) for line in note.lines] == [
        (line["id"], line.get("invoice_line_item"), line["amount"]) for line in example["lines"]["data"]
    ]
    assert note.out_of_band_amount == 0 and note.total_tax == 0  # both null in the example
    assert [refund.refund_id for refund in note.refunds] == [r["refund"] for r in example["refunds"]]


def test_a_credit_note_event_reads_its_credit_note():
    event = StripeEvent.from_json(
        {
            "id": "evt_1",
            "type": "credit_note.created",
            "created": 5,
            "data": {"object": {"id": "cn_1", "object": "credit_note", "invoice": "in_1", "total": 500}},
        }
    )
    voided = StripeEvent.from_json(
        {"id": "evt_2", "type": "credit_note.voided", "data": {"object": {"id": "cn_1", "status": "void"}}}
    )

    assert isinstance(event.object, StripeCreditNote) and (event.object.invoice_id, event.object.total) == ("in_1", 500)
    assert isinstance(voided.object, StripeCreditNote) and voided.object.status == "void"
