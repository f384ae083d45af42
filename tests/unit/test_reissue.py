"""Reissuing a cancelled invoice: its month billed again with the account's current data, once."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import CreditRequest
from billing_core.domain.invoice_plan import invoice_id_for, invoice_revision_of
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.errors import StripeUnavailable
from billing_core.use_cases.credit_notes import CreditNotes
from billing_core.use_cases.invoice_records import standing_invoice
from billing_core.use_cases.reissue import Reissue, ReissueRefused
from billing_core.use_cases.true_up import history_of
from tests.support.billing_world import POLICY, World
from tests.support.fakes import FakeAuditLog, FakeCreditNotes

ACTOR = "operator:ops"


class Books(World):
    """The seed invoice of November (20.00 + 17.74 net, 19 % VAT), paid."""

    def __init__(self) -> None:
        super().__init__()
        self.notes = FakeCreditNotes()
        self.audit = FakeAuditLog()
        self.customer = self.account(country="DE")
        self.record = self.bill(self.customer)
        self.stripe.set_default_payment_method(
            customer_id=self.record.stripe.customer_id, payment_method_id="pm_card_visa", idempotency_key="pm"
        )
        self.stripe.pay_invoice(self.record.stripe.invoice_id, idempotency_key="pay")
        self.invoices.update(self.customer.account_id, self.record.invoice_id, {"status": InvoiceStatus.PAID})

    def credit_notes(self) -> CreditNotes:
        return CreditNotes(self.invoices, self.notes, self.stripe, self.audit, clock=lambda: 1_764_600_000.0)

    def reissue(self) -> Reissue:
        return Reissue(self.invoices, self.accounts, self.notes, self.job(), POLICY, self.audit)

    def cancel(self, invoice_id: str) -> None:
        self.credit_notes().cancel(invoice_id, reason="Grundgebühr falsch", actor=ACTOR)

    def change_base_fee(self, amount: str) -> None:
        self.accounts.put(dataclasses.replace(self.customer, base_fee_override=Decimal(amount)))

    def stripe_invoices(self) -> list[dict]:
        return list(self.stripe.invoices.values())


def test_invoice_ids_of_a_month_count_its_reissues():
    invoice_id = invoice_id_for(Period(2026, 10), "u_1")
    assert invoice_id == "inv_2026-10_u_1"
    assert invoice_revision_of(invoice_id) == ("2026-10", 1)
    reissue_id = invoice_id.replace("2026-10", "2026-10r2")
    assert invoice_revision_of(reissue_id) == ("2026-10", 2)
    with pytest.raises(ValueError):
        invoice_revision_of("inv_2026-10r1_u_1")  # revision 1 has no suffix: one id per invoice


def test_a_cancelled_invoice_is_billed_again_under_a_new_number_with_the_current_base_fee():
    books = Books()
    books.cancel(books.record.invoice_id)
    books.change_base_fee("25.00")

    reissued = books.reissue().reissue(books.record.invoice_id, actor=ACTOR)

    result = reissued.reissue
    assert result.invoice_id == books.record.invoice_id.replace("2026-11", "2026-11r2")
    record = books.invoices.get(books.customer.account_id, result.invoice_id)
    assert (record.period, record.base_fee, record.aws_costs) == (
        books.record.period,
        Decimal("25.00"),
        Decimal("17.74"),
    )
    assert record.amount == Decimal("50.86")  # (25.00 + 17.74) x 1.19 = 42.74 + 8.12
    assert record.stripe.number and record.stripe.number != books.record.stripe.number
    assert dict(record.aws_breakdown) == dict(books.record.aws_breakdown)
    stripe_invoice = books.stripe.retrieve_invoice(record.stripe.invoice_id)
    assert stripe_invoice.total == 5086 and stripe_invoice.metadata["invoiceId"] == result.invoice_id
    cancelled = books.invoices.get(books.customer.account_id, books.record.invoice_id)
    assert cancelled.cancelled and cancelled.correction == "cancelled"
    assert standing_invoice(books.invoices, books.customer.account_id, books.record.period) == record
    [entry] = [e for e in books.audit.entries() if e.action == "invoice.reissue"]
    assert entry.before["invoice"] == books.record.invoice_id and entry.after["invoice"] == result.invoice_id


def test_reissuing_again_bills_nothing_more():
    books = Books()
    books.cancel(books.record.invoice_id)
    first = books.reissue().reissue(books.record.invoice_id, actor=ACTOR)
    stripe_invoices = len(books.stripe_invoices())

    again = books.reissue().reissue(books.record.invoice_id, actor=ACTOR)

    assert again.reissue.invoice_id == first.reissue.invoice_id and again.reissue.already_done
    assert len(books.stripe_invoices()) == stripe_invoices
    assert len([e for e in books.audit.entries() if e.action == "invoice.reissue"]) == 1


def test_a_reissue_interrupted_at_stripe_is_finished_by_the_next_attempt():
    books = Books()
    books.cancel(books.record.invoice_id)
    books.stripe.fail_next("finalize_invoice", StripeUnavailable("Stripe is down"))
    with pytest.raises(StripeUnavailable):
        books.reissue().reissue(books.record.invoice_id, actor=ACTOR)

    finished = books.reissue().reissue(books.record.invoice_id, actor=ACTOR)

    assert finished.reissue.stripe_invoice_id is not None and finished.reissue.status == "open"
    ours = [i for i in books.stripe_invoices() if i["metadata"].get("invoiceId") == finished.reissue.invoice_id]
    assert len(ours) == 1


@pytest.mark.parametrize("credit", [None, {"base-fee": Decimal("5.00")}], ids=["not credited", "credited in part"])
def test_only_a_cancelled_invoice_is_reissued(credit):
    books = Books()
    if credit:
        books.credit_notes().credit(books.record.invoice_id, CreditRequest(reason="Rabatt", lines=credit), actor=ACTOR)

    with pytest.raises(ReissueRefused, match="is not cancelled: cancel it first"):
        books.reissue().reissue(books.record.invoice_id, actor=ACTOR)
    assert books.invoices.get(books.customer.account_id, books.record.invoice_id.replace("11_", "11r2_")) is None


def test_a_cancelled_reissue_is_reissued_in_turn_and_the_first_invoice_points_at_it():
    books = Books()
    books.cancel(books.record.invoice_id)
    second = books.reissue().reissue(books.record.invoice_id, actor=ACTOR).reissue.invoice_id
    books.stripe.pay_invoice(books.invoices.get("u1", second).stripe.invoice_id, idempotency_key="pay-2")
    books.invoices.update("u1", second, {"status": InvoiceStatus.PAID})
    books.cancel(second)

    with pytest.raises(ReissueRefused, match=f"reissue {second}"):
        books.reissue().reissue(books.record.invoice_id, actor=ACTOR)
    third = books.reissue().reissue(second, actor=ACTOR).reissue.invoice_id

    assert invoice_revision_of(third) == ("2026-11", 3)


def test_the_true_up_counts_a_reissued_month_once():
    books = Books()
    books.cancel(books.record.invoice_id)
    reissue_id = books.reissue().reissue(books.record.invoice_id, actor=ACTOR).reissue.invoice_id

    history = history_of(books.invoices, "u1", books.record.period.shifted(1), months_back=3)

    [month] = history.billed
    assert (month.invoice_id, month.aws_billed) == (reissue_id, Decimal("17.74"))


def test_a_cancelled_month_without_reissue_is_not_trued_up():
    books = Books()
    books.cancel(books.record.invoice_id)

    assert history_of(books.invoices, "u1", books.record.period.shifted(1), months_back=3).billed == ()
