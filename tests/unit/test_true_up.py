"""Correction lines: earlier months re-checked against final costs, applied once, never charged below zero."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing_core.domain.corrections import BilledMonth, correction_for, final_aws_line, settle
from billing_core.domain.costs import PAYER, CostLine, Period
from billing_core.domain.fx import FxQuote, FxRate
from billing_core.domain.invoice_plan import BillingPolicy
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.money import to_cents
from billing_core.use_cases.billing_run import BillingRun
from billing_core.use_cases.invoice_job import InvoiceJob
from billing_core.use_cases.invoice_messages import plan_from_message
from tests.support.fakes import (
    FakeAccountRepository,
    FakeCostSource,
    FakeInvoiceRepository,
    FakeLeases,
    FakePaymentGateway,
    FakeQueue,
    FakeRunRecords,
)
from tests.support.records import an_account

OCT, NOV, DEC = Period(2026, 10), Period(2026, 11), Period(2026, 12)
ONE_TO_ONE = FxRate(Decimal("1"), "manual", OCT.start)


class World:
    """One account on the fake Stripe, billed month after month by the run and the job."""

    def __init__(self) -> None:
        self.stripe = FakePaymentGateway()
        customer = self.stripe.create_customer(account_id="u1", idempotency_key="setup:u1")
        self.stripe.set_default_payment_method(
            customer_id=customer.id, payment_method_id="pm_card_visa", idempotency_key="pm:u1"
        )
        self.accounts = FakeAccountRepository([an_account("u1", stripe_customer_id=customer.id)])
        self.invoices = FakeInvoiceRepository()
        self.costs = FakeCostSource()
        self.queue = FakeQueue()

    def bill(self, period: Period, aws_usd: str, *, finals: dict[Period, str] | None = None):
        """Run the month (its costs ``aws_usd``, earlier months' final costs ``finals``) and its job."""
        self.costs.lines = (CostLine("AWS Lambda", Decimal(aws_usd)),)
        self.costs.monthly = {
            month: (CostLine("AWS Lambda", Decimal(amount)),) for month, amount in (finals or {}).items()
        }
        now = datetime(period.end.year, period.end.month, 2, tzinfo=UTC).timestamp()
        run = BillingRun(
            accounts=self.accounts,
            costs=self.costs,
            leases=FakeLeases(),
            runs=FakeRunRecords(),
            billing_jobs=self.queue,
            policy=BillingPolicy(fx=ONE_TO_ONE),
            attribution=PAYER,
            invoices=self.invoices,
            correction_months=3,
            clock=lambda: now,
        )
        before = len(self.queue.messages)
        run.start(period, owner="test", trigger="cli")
        ((plan, run_id),) = [plan_from_message(m.body) for m in self.queue.messages[before:]]
        InvoiceJob(invoices=self.invoices, accounts=self.accounts, payments=self.stripe, clock=lambda: now).run(
            plan, run_id=run_id
        )
        return plan, self.invoices.get("u1", plan.invoice_id)

    def stripe_lines(self, record) -> list[tuple[str, int]]:
        invoice = self.stripe.invoices[record.stripe.invoice_id]
        return [(line["metadata"]["line"], line["amount"]) for line in invoice["lines"]["data"]]


def test_a_month_that_finally_cost_less_is_corrected_on_the_next_invoice_once():
    world = World()
    world.bill(OCT, "17.74")
    requests_before = world.costs.calls

    plan, record = world.bill(NOV, "10.00", finals={OCT: "15.00"})

    assert world.costs.calls - requests_before == 1  # the new month and the corrected ones, one query

    (correction,) = record.true_up.corrections
    assert (correction.period, correction.amount) == (OCT, Decimal("-2.74"))
    assert correction.description == "Korrektur AWS Infrastruktur (Okt 2026)"
    assert record.amount == Decimal("27.26") and plan.total == Decimal("27.26")  # 20 + 10 - 2.74
    assert world.stripe_lines(record) == [("base-fee", 2000), ("aws", 1000), ("correction:2026-10", -274)]
    assert record.status is InvoiceStatus.OPEN
    assert world.invoices.get("u1", "inv_2026-10_u1").corrected_by == {record.invoice_id}
    # The record keeps what it billed per service in both currencies, and the rate.
    assert (record.aws_raw, record.cost_currency) == ({"AWS Lambda": Decimal("10.00")}, "USD")
    assert record.aws_breakdown == {"AWS Lambda": Decimal("10.00")} and record.fx == ONE_TO_ONE

    # December sees October's correction on November's invoice: nothing more to correct.
    _, december = world.bill(DEC, "10.00", finals={OCT: "15.00", NOV: "10.00"})
    assert december.true_up.corrections == () and december.amount == Decimal("30.00")


def test_a_later_revision_corrects_only_the_difference_to_what_was_billed_so_far():
    world = World()
    world.bill(OCT, "17.74")
    world.bill(NOV, "10.00", finals={OCT: "15.00"})

    _, december = world.bill(DEC, "10.00", finals={OCT: "15.50", NOV: "10.00"})

    assert [(c.period, c.amount) for c in december.true_up.corrections] == [(OCT, Decimal("0.50"))]


def test_a_rerun_of_a_month_bills_its_claimed_corrections_once():
    world = World()
    world.bill(OCT, "17.74")
    world.bill(NOV, "10.00", finals={OCT: "15.00"})
    invoices_before = len(world.stripe.invoices)

    _, again = world.bill(NOV, "10.00", finals={OCT: "12.00"})  # a rerun: the claim wins

    assert [c.amount for c in again.true_up.corrections] == [Decimal("-2.74")]
    assert len(world.stripe.invoices) == invoices_before


def test_a_credit_larger_than_the_invoice_is_clamped_at_zero_and_carried_to_the_next_invoice():
    world = World()
    world.bill(OCT, "50.00")

    _, november = world.bill(NOV, "0", finals={OCT: "-5"})  # a late credit: October finally cost nothing

    assert november.true_up.corrections[0].amount == Decimal("-50.00")
    assert (november.amount, november.true_up.carried_out) == (Decimal("0.00"), Decimal("30.00"))  # 20 - 50 -> 0, 30 on
    assert sum(amount for _, amount in world.stripe_lines(november)) == 0

    _, december = world.bill(DEC, "40.00", finals={OCT: "-5", NOV: "0"})
    assert (december.true_up.credit_in, december.true_up.credit_from) == (Decimal("30.00"), november.invoice_id)
    assert december.amount == Decimal("30.00")  # 20 + 40 - 30
    assert ("credit", -3000) in world.stripe_lines(december)


def test_a_rate_change_never_creates_a_correction():
    billed = BilledMonth(
        OCT,
        "inv_2026-10_u1",
        Decimal("16.90"),
        FxRate(Decimal("1.0497"), "ECB euro reference rate", OCT.end, FxQuote.COST_PER_INVOICE_UNIT),
        Decimal(0),
    )

    assert correction_for(billed, (CostLine("AWS Lambda", Decimal("17.74")),), "de") is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.decimals(min_value=-50, max_value=500, places=4, allow_nan=False), min_size=1, max_size=6),
    st.decimals(min_value=0, max_value=30, places=2),
)
def test_over_any_sequence_of_revisions_a_month_is_billed_exactly_its_final_amount(revisions, markup):
    """Billed first at revisions[0], corrected at each later revision: the sum is the last revision's line."""
    fx = FxRate(Decimal("1.0389"), "ECB euro reference rate", OCT.end, FxQuote.COST_PER_INVOICE_UNIT)
    first = final_aws_line((CostLine("S", revisions[0]),), fx, markup)
    billed_so_far = first
    for revision in revisions[1:]:
        month = BilledMonth(OCT, "inv", billed_so_far, fx, markup)
        correction = correction_for(month, (CostLine("S", revision),), "en")
        billed_so_far += correction.amount if correction else 0
        assert billed_so_far == to_cents(billed_so_far)

    assert billed_so_far == final_aws_line((CostLine("S", revisions[-1]),), fx, markup)


@given(st.decimals(min_value=-1000, max_value=1000, places=2))
def test_settling_never_charges_below_zero_and_loses_nothing(total):
    charged, carried = settle(total)

    assert charged >= 0 and carried >= 0 and charged - carried == total


def test_a_crash_after_the_claim_of_a_correcting_invoice_resumes_with_the_claimed_correction_once():
    from billing_core.domain.invoice_plan import invoice_id_for

    world = World()
    world.bill(OCT, "17.74")
    world.costs.lines = (CostLine("AWS Lambda", Decimal("10.00")),)
    world.costs.monthly = {OCT: (CostLine("AWS Lambda", Decimal("15.00")),)}
    now = datetime(2026, 12, 2, tzinfo=UTC).timestamp()
    run = BillingRun(
        accounts=world.accounts,
        costs=world.costs,
        leases=FakeLeases(),
        runs=FakeRunRecords(),
        billing_jobs=world.queue,
        policy=BillingPolicy(fx=ONE_TO_ONE),
        attribution=PAYER,
        invoices=world.invoices,
        correction_months=3,
        clock=lambda: now,
    )
    run.start(NOV, owner="a", trigger="cli")
    plan, run_id = plan_from_message(world.queue.messages[-1].body)

    class Crash(Exception):
        pass

    def crash_at_add_lines(step, phase):
        if (step, phase) == ("add-lines", "stripe"):
            raise Crash

    job = InvoiceJob(
        invoices=world.invoices,
        accounts=world.accounts,
        payments=world.stripe,
        clock=lambda: now,
        observe=crash_at_add_lines,
    )
    try:
        job.run(plan, run_id=run_id)
    except Crash:
        pass
    world.costs.monthly = {OCT: (CostLine("AWS Lambda", Decimal("11.00")),)}  # a later revision meanwhile

    _, record = world.bill(NOV, "10.00", finals={OCT: "11.00"})  # the rerun finishes the claimed invoice

    assert [c.amount for c in record.true_up.corrections] == [Decimal("-2.74")]
    invoice = world.stripe.invoices[record.stripe.invoice_id]
    assert [line["amount"] for line in invoice["lines"]["data"]].count(-274) == 1
    assert record.amount == Decimal("27.26") and record.invoice_id == invoice_id_for(NOV, "u1")
    # The later revision is December's to correct: 11.00 final against 17.74 - 2.74 billed.
    _, december = world.bill(DEC, "1.00", finals={OCT: "11.00", NOV: "10.00"})
    assert [(c.period, c.amount) for c in december.true_up.corrections] == [(OCT, Decimal("-4.00"))]
