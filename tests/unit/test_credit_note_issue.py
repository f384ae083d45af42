"""Issuing credit notes: planned, previewed at Stripe, issued once, resumable, the invoice credited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_core.domain.credit_notes import CreditNoteState, CreditRefused, CreditRequest, Settlement
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.errors import StripeUnavailable
from billing_core.ports import StripeEvent
from billing_core.use_cases.credit_notes import CreditNotes
from tests.support.billing_world import World
from tests.support.fakes import FakeAuditLog, FakeCreditNotes

ACTOR = "operator:ops"


class Books(World):
    """A billed seed invoice (37.74 net + 7.17 VAT = 44.91 EUR) and its credit notes."""

    def __init__(self) -> None:
        super().__init__()
        self.notes = FakeCreditNotes()
        self.audit = FakeAuditLog()
        self.record = self.bill(self.account(country="DE"))
        self.invoice_id = self.record.invoice_id

    def credit_notes(self) -> CreditNotes:
        return CreditNotes(self.invoices, self.notes, self.stripe, self.audit, clock=lambda: 1_764_600_000.0)

    def paid(self) -> None:
        customer = self.record.stripe.customer_id
        self.stripe.set_default_payment_method(
            customer_id=customer, payment_method_id="pm_card_visa", idempotency_key="pm"
        )
        self.stripe.pay_invoice(self.record.stripe.invoice_id, idempotency_key="pay")
        self.invoices.update(self.record.account_id, self.invoice_id, {"status": InvoiceStatus.PAID})

    def stripe_invoice(self):
        return self.stripe.retrieve_invoice(self.record.stripe.invoice_id)


def test_a_partial_credit_of_an_open_invoice_reduces_what_is_due_by_its_gross():
    books = Books()
    note = books.credit_notes().credit(
        books.invoice_id, CreditRequest(reason="Grundgebühr zu hoch", lines={"base-fee": Decimal("10.00")}), actor=ACTOR
    )

    assert note.state is CreditNoteState.ISSUED and note.settlement is Settlement.PRE_PAYMENT
    assert (note.net, note.tax, note.gross) == (Decimal("10.00"), Decimal("1.90"), Decimal("11.90"))
    stripe_invoice = books.stripe_invoice()
    assert stripe_invoice.amount_due == 4491 - 1190
    assert stripe_invoice.pre_payment_credit_notes_amount == 1190
    assert books.invoices.get(books.record.account_id, books.invoice_id).payment.credited == Decimal("11.90")
    [entry] = books.audit.entries()
    assert (
        entry.action == "invoice.credit" and entry.after["gross"] == "11.90" and entry.reason == "Grundgebühr zu hoch"
    )


def test_a_cancellation_of_a_paid_invoice_refunds_exactly_what_was_charged():
    books = Books()
    books.paid()
    note = books.credit_notes().cancel(books.invoice_id, reason="Doppelt berechnet", actor=ACTOR)

    assert note.full and note.settlement is Settlement.REFUND
    assert (note.net, note.tax, note.gross) == (books.record.net, books.record.tax, books.record.amount)
    [stripe_note] = books.stripe.list_credit_notes(books.record.stripe.invoice_id)
    assert stripe_note.total == 4491 and stripe_note.post_payment_amount == 4491
    assert books.stripe_invoice().post_payment_credit_notes_amount == 4491
    with pytest.raises(CreditRefused, match="nothing is left"):
        books.credit_notes().cancel(books.invoice_id, reason="again", actor=ACTOR)


def test_a_paid_invoice_credited_to_the_balance_leaves_the_next_invoice_less_to_collect():
    books = Books()
    books.paid()
    books.credit_notes().credit(
        books.invoice_id,
        CreditRequest(reason="Kulanz", lines={"aws": Decimal("5.00")}, settlement=Settlement.BALANCE),
        actor=ACTOR,
    )

    assert books.stripe.customers[books.record.stripe.customer_id]["balance"] == -595


def test_a_rerun_after_a_crash_finishes_the_pending_credit_note_and_issues_no_second():
    books = Books()
    request = CreditRequest(reason="Grundgebühr zu hoch", lines={"base-fee": Decimal("10.00")})
    books.stripe.fail_after_execution_next("create_credit_note")  # Stripe created it; the answer was lost
    with pytest.raises(StripeUnavailable):
        books.credit_notes().credit(books.invoice_id, request, actor=ACTOR)
    assert [n.state for n in books.notes.list_for_invoice(books.invoice_id)] == [CreditNoteState.PENDING]

    note = books.credit_notes().credit(books.invoice_id, request, actor=ACTOR)

    assert note.state is CreditNoteState.ISSUED and note.sequence == 1
    assert len(books.stripe.list_credit_notes(books.record.stripe.invoice_id)) == 1
    assert books.invoices.get(books.record.account_id, books.invoice_id).payment.credited == Decimal("11.90")
    assert len(books.audit.entries()) == 1


def test_more_than_is_left_is_refused_before_stripe_is_asked():
    books = Books()
    books.credit_notes().credit(
        books.invoice_id, CreditRequest(reason="r", lines={"base-fee": Decimal("15.00")}), actor=ACTOR
    )
    creates = len(books.stripe.calls_to("create_credit_note"))

    with pytest.raises(CreditRefused, match="at most 5.00"):
        books.credit_notes().credit(
            books.invoice_id, CreditRequest(reason="r", lines={"base-fee": Decimal("5.01")}), actor=ACTOR
        )
    assert len(books.stripe.calls_to("create_credit_note")) == creates
    assert [n.sequence for n in books.notes.list_for_invoice(books.invoice_id)] == [1]


def test_an_invoice_that_is_not_finalized_cannot_be_credited():
    books = Books()
    books.invoices.create_if_absent(
        type(books.record)(**{**books.record.__dict__, "invoice_id": "inv_2026-10_u1", "status": InvoiceStatus.DRAFT})
    )
    with pytest.raises(CreditRefused, match="draft"):
        books.credit_notes().credit("inv_2026-10_u1", CreditRequest(reason="r", full=True), actor=ACTOR)


def test_stripes_credit_note_events_move_the_record_forward_only():
    books = Books()
    note = books.credit_notes().credit(
        books.invoice_id, CreditRequest(reason="r", lines={"base-fee": Decimal("10.00")}), actor=ACTOR
    )
    created = [e for e in books.stripe.events if e["type"] == "credit_note.created"]
    assert created and StripeEvent.from_json(created[0]).object.metadata["creditNoteId"] == note.credit_note_id

    # A late credit_note.created changes nothing: the note is issued already.
    assert books.credit_notes().apply_stripe_credit_note(StripeEvent.from_json(created[0]).object) is False


def test_an_issued_credit_note_is_checked_against_what_stripes_invoice_says_is_credited(caplog):
    books = Books()
    request = CreditRequest(reason="Kulanz", lines={"base-fee": Decimal("5.00")})
    books.credit_notes().credit(books.invoice_id, request, actor=ACTOR)
    assert "credited by another amount" not in caplog.text

    # Stripe's invoice already shows a credit this system never issued (made at Stripe by hand).
    books.stripe.invoices[books.record.stripe.invoice_id]["pre_payment_credit_notes_amount"] += 100
    books.credit_notes().credit(
        books.invoice_id, CreditRequest(reason="Kulanz", lines={"aws": Decimal("1.00")}), actor=ACTOR
    )

    [record] = [r for r in caplog.records if "credited by another amount" in r.getMessage()]
    assert record.levelname == "ERROR" and record.stripeCredited == 595 + 119 + 100


@pytest.mark.parametrize(
    ("paid", "full", "settlement"),
    [
        (False, True, None),
        (False, False, None),
        (True, True, Settlement.REFUND),
        (True, False, Settlement.REFUND),
        (True, True, Settlement.BALANCE),
        (True, False, Settlement.BALANCE),
    ],
    ids=[
        "open-full",
        "open-partial",
        "paid-full-refund",
        "paid-partial-refund",
        "paid-full-balance",
        "paid-partial-balance",
    ],
)
def test_every_kind_of_credit_note_moves_exactly_its_gross_where_its_settlement_says(paid, full, settlement):
    books = Books()
    if paid:
        books.paid()
    lines = {} if full else {"base-fee": Decimal("10.00"), "aws": Decimal("7.74")}
    request = CreditRequest(reason="Korrektur", lines=lines, full=full, settlement=settlement)

    note = books.credit_notes().credit(books.invoice_id, request, actor=ACTOR)

    gross = 4491 if full else 1190 + 921  # 10.00 + 1.90 and 7.74 + 1.47
    assert int(note.gross * 100) == gross
    [stripe_note] = books.stripe.list_credit_notes(books.record.stripe.invoice_id)
    assert (stripe_note.total, stripe_note.total_tax) == (gross, int(note.tax * 100))
    stripe_invoice = books.stripe_invoice()
    customer = books.stripe.customers[books.record.stripe.customer_id]
    if not paid:
        assert note.settlement is Settlement.PRE_PAYMENT
        assert (stripe_invoice.pre_payment_credit_notes_amount, stripe_invoice.amount_remaining) == (
            gross,
            4491 - gross,
        )
        assert stripe_invoice.status == ("paid" if full else "open")
    else:
        assert note.settlement is settlement and stripe_invoice.post_payment_credit_notes_amount == gross
        refunded = stripe_note.refund_amount if settlement is Settlement.REFUND else 0
        assert refunded == (gross if settlement is Settlement.REFUND else 0)
        assert customer.get("balance", 0) == (-gross if settlement is Settlement.BALANCE else 0)
    record = books.invoices.get(books.record.account_id, books.invoice_id)
    assert record.payment.credited == note.gross
    assert record.correction == ("cancelled" if full else "credited")


@settings(max_examples=60, deadline=None)
@given(cents=st.integers(min_value=1, max_value=1773), paid=st.booleans())
def test_any_part_of_a_line_is_credited_with_the_tax_stripe_computes_for_it(cents, paid):
    books = Books()
    if paid:
        books.paid()
    request = CreditRequest(reason="Teil", lines={"aws": Decimal(cents) / 100})

    note = books.credit_notes().credit(books.invoice_id, request, actor=ACTOR)  # refused if Stripe differed

    [stripe_note] = books.stripe.list_credit_notes(books.record.stripe.invoice_id)
    assert (stripe_note.total, stripe_note.total_tax) == (int(note.gross * 100), int(note.tax * 100))


def test_a_credit_note_stripe_refuses_is_abandoned_so_the_invoice_stays_creditable():
    from billing_core.errors import StripeRequestRejected

    books = Books()
    request = CreditRequest(reason="Kulanz", lines={"base-fee": Decimal("5.00")})
    books.stripe.fail_next("create_credit_note", StripeRequestRejected("The invoice is being paid right now."))

    with pytest.raises(CreditRefused, match="Stripe refused the credit note: The invoice is being paid"):
        books.credit_notes().credit(books.invoice_id, request, actor=ACTOR)

    [abandoned] = books.notes.list_for_invoice(books.invoice_id)
    assert (
        abandoned.state is CreditNoteState.VOID and books.stripe.list_credit_notes(books.record.stripe.invoice_id) == []
    )
    again = books.credit_notes().credit(books.invoice_id, request, actor=ACTOR)
    assert again.state is CreditNoteState.ISSUED and again.sequence == 2
