"""The invoice job with in-memory fakes: one invoice per account and period, whatever happens in between."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from decimal import Decimal

import pytest

from billing_core.domain.costs import CostLine, CostReport, Period
from billing_core.domain.invoice_plan import BillingPolicy, FxRate, plan_invoice
from billing_core.domain.records import Account, SavedPaymentMethod
from billing_core.errors import StripeFailedAfterExecution
from billing_core.ports import FieldIs, InvoiceLine
from billing_core.use_cases.invoice_job import (
    STEPS,
    AccountNotFound,
    InvoiceFinalizationFailed,
    InvoiceJob,
    InvoiceNoLongerDraft,
    InvoiceTotalMismatch,
)
from billing_core.use_cases.invoice_messages import InvoiceMessageInvalid, plan_from_message, plan_to_message
from tests.support.fakes import FakeAccountRepository, FakeInvoiceRepository, FakePaymentGateway

PERIOD = Period(2024, 11)
SEED_LINES = (
    CostLine("AWS Lambda", Decimal("5.23")),
    CostLine("Amazon Simple Storage Service", Decimal("2.15")),
    CostLine("Amazon CloudFront", Decimal("8.47")),
    CostLine("Amazon DynamoDB", Decimal("1.89")),
)
POLICY = BillingPolicy(fx=FxRate(Decimal("1.0"), "test", date(2024, 11, 30)))


class Crash(Exception):
    """Stands in for the worker process dying at a chosen point."""


def crash_at(step: str, phase: str):
    def observe(seen_step: str, seen_phase: str) -> None:
        if (seen_step, seen_phase) == (step, phase):
            raise Crash(f"{step}/{phase}")

    return observe


def report(lines=SEED_LINES) -> CostReport:
    return CostReport(PERIOD.start, PERIOD.end, "USD", False, tuple(lines))


def seed_plan(account_id="u1", lines=SEED_LINES):
    return plan_invoice(PERIOD, report(lines), Account(account_id), POLICY)


class World:
    """Fakes for one test: a Stripe, the two tables and a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_733_011_200.0  # 2024-12-01 00:00 UTC
        self.stripe = FakePaymentGateway()
        self.invoices = FakeInvoiceRepository()
        self.accounts = FakeAccountRepository()

    def account(self, account_id="u1", *, payment_method: str | None = "pm_card_visa", customer=True) -> Account:
        account = Account(account_id, email=f"{account_id}@example.com")
        if customer:
            cus = self.stripe.create_customer(account_id=account_id, idempotency_key=f"setup:{account_id}")
            account = dataclasses.replace(account, stripe_customer_id=cus.id)
            if payment_method:
                self.stripe.set_default_payment_method(
                    customer_id=cus.id, payment_method_id=payment_method, idempotency_key=f"pm:{account_id}"
                )
                account = dataclasses.replace(account, payment_method=SavedPaymentMethod(payment_method, "card"))
        self.accounts.put(account)
        return account

    def job(self, observe=None) -> InvoiceJob:
        return InvoiceJob(
            invoices=self.invoices,
            accounts=self.accounts,
            payments=self.stripe,
            clock=lambda: self.now,
            observe=observe,
        )

    def stripe_writes(self) -> list:
        return [
            c for c in self.stripe.calls if c.idempotency_key and not c.idempotency_key.startswith(("setup:", "pm:"))
        ]


@pytest.fixture
def world() -> World:
    return World()


def test_seed_example_becomes_one_finalized_invoice_of_37_74_eur_with_two_lines(world):
    world.account()

    result = world.job().run(seed_plan())

    (invoice,) = world.stripe.invoices.values()
    assert invoice["status"] == "open"
    assert invoice["metadata"] == {"userId": "u1", "invoiceId": "inv_2024-11_u1", "period": "2024-11"}
    assert [(line["description"], line["amount"]) for line in invoice["lines"]["data"]] == [
        ("Monatliche Grundgebühr", 2000),
        ("AWS Infrastruktur (Nov 2024)", 1774),
    ]
    assert invoice["total"] == 3774
    record = world.invoices.get("u1", "inv_2024-11_u1")
    assert record.status == "open" and result.status == "open"
    amounts = (record.amount, record.base_fee, record.aws_costs)
    assert amounts == (Decimal("37.74"), Decimal("20"), Decimal("17.74"))
    assert record.aws_breakdown == {
        "Amazon CloudFront": Decimal("8.47"),
        "AWS Lambda": Decimal("5.23"),
        "Amazon Simple Storage Service": Decimal("2.15"),
        "Amazon DynamoDB": Decimal("1.89"),
    }
    assert record.stripe.invoice_id == invoice["id"] and record.stripe.number == invoice["number"]
    assert record.fx.rate == Decimal("1.0") and record.fx.source == "test"
    assert record.period == Period(2024, 11) and record.period.end == date(2024, 12, 1)
    assert record.stripe.payment_method_missing is False


def test_every_stripe_write_carries_an_idempotency_key_from_invoice_and_step(world):
    world.account(customer=False)

    world.job().run(seed_plan())

    assert [c.idempotency_key for c in world.stripe_writes()] == [
        "inv_2024-11_u1:customer",
        "inv_2024-11_u1:create-invoice",
        "inv_2024-11_u1:add-lines",
        "inv_2024-11_u1:finalize",
    ]


def test_an_invoice_of_an_account_with_a_customer_costs_three_stripe_requests(world):
    world.account()
    before = len(world.stripe.calls)

    world.job().run(seed_plan())

    assert [c.method for c in world.stripe.calls[before:]] == [
        "create_draft_invoice",
        "add_invoice_lines",
        "finalize_invoice",
    ]


def test_every_line_carries_the_billed_month_as_its_service_period(world):
    world.account()

    world.job().run(seed_plan())

    (invoice,) = world.stripe.invoices.values()
    # 2024-11-01 00:00:00 to 2024-11-30 23:59:59 UTC, inclusive as Stripe counts it
    assert [line["period"] for line in invoice["lines"]["data"]] == [{"start": 1730419200, "end": 1733011199}] * 2


def test_the_draft_does_not_auto_advance_until_the_job_finalizes_it_with_auto_advance(world):
    world.account()

    world.job().run(seed_plan())

    (create,) = world.stripe.calls_to("create_draft_invoice")
    (finalize,) = world.stripe.calls_to("finalize_invoice")
    assert create.kwargs["auto_advance"] is False
    assert finalize.kwargs["auto_advance"] is True
    assert next(iter(world.stripe.invoices.values()))["auto_advance"] is True


def test_a_draft_whose_total_differs_from_the_record_is_not_finalized(world):
    world.account()
    with pytest.raises(Crash):
        world.job(observe=crash_at("add-lines", "saved")).run(seed_plan())
    (draft,) = world.stripe.invoices.values()
    world.stripe.add_invoice_lines(  # someone added a line to our draft by hand
        invoice_id=draft["id"],
        lines=[InvoiceLine(amount=500, description="extra")],
        idempotency_key="by-hand",
    )

    with pytest.raises(InvoiceTotalMismatch, match="4274"):
        world.job().run(seed_plan())

    assert world.stripe.calls_to("finalize_invoice") == []
    assert world.stripe.invoices[draft["id"]]["status"] == "draft"
    assert world.invoices.get("u1", "inv_2024-11_u1").status == "draft"


def test_a_draft_stripe_finalized_before_the_lines_were_added_stops_the_job_without_adding_lines(world):
    world.account()
    with pytest.raises(Crash):
        world.job(observe=crash_at("create-invoice", "saved")).run(seed_plan())
    (draft,) = world.stripe.invoices.values()
    draft["status"] = "open"  # finalized by hand (or auto-advanced) with no lines

    with pytest.raises(InvoiceNoLongerDraft, match="base-fee, aws"):
        world.job().run(seed_plan())

    assert draft["lines"]["data"] == []
    assert world.invoices.get("u1", "inv_2024-11_u1").stripe.lines_added == frozenset()


def test_a_worker_that_finds_the_draft_finalized_by_another_worker_reports_no_missing_lines(world):
    world.account()
    with pytest.raises(Crash):
        world.job(observe=crash_at("create-invoice", "saved")).run(seed_plan())
    stale = world.invoices.get("u1", "inv_2024-11_u1")
    world.job().run(seed_plan())  # another worker finished the job meanwhile
    world.stripe._replies.clear()  # and no replay answers for it (say its keys moved on)

    # The slow worker resumes from what it read before: Stripe refuses lines on the open invoice,
    # and the worker reads the record again instead of reporting lines as missing.
    record, answer = world.job()._lines(stale)

    assert answer is None and record.stripe.lines_added == {"aws", "base-fee"}


def test_rerun_for_same_period_creates_no_second_invoice_and_calls_stripe_no_more(world):
    world.account()
    world.job().run(seed_plan())
    calls_after_first = len(world.stripe.calls)

    second = world.job().run(seed_plan())

    assert second.already_done and second.status == "open"
    assert len(world.stripe.invoices) == 1
    assert len(world.stripe.calls) == calls_after_first


CRASH_POINTS = [
    (step, phase) for step in STEPS for phase in ("stripe", "saved") if (step, phase) != ("claim", "stripe")
]


@pytest.mark.parametrize(("step", "phase"), CRASH_POINTS)
def test_crash_at_any_point_then_rerun_ends_with_exactly_one_invoice_with_the_right_lines(world, step, phase):
    world.account(customer=False)
    with pytest.raises(Crash):
        world.job(observe=crash_at(step, phase)).run(seed_plan())

    world.job().run(seed_plan())

    (invoice,) = world.stripe.invoices.values()
    assert [line["amount"] for line in invoice["lines"]["data"]] == [2000, 1774]
    assert invoice["status"] == "open"
    assert len(world.stripe.customers) == 1
    assert world.invoices.get("u1", "inv_2024-11_u1").status == "open"


@pytest.mark.parametrize(("step", "phase"), [(s, p) for s, p in CRASH_POINTS if s not in ("claim", "customer")])
def test_crash_then_rerun_after_the_idempotency_keys_expired_finds_what_stripe_already_has(world, step, phase):
    world.account()
    with pytest.raises(Crash):
        world.job(observe=crash_at(step, phase)).run(seed_plan())
    world.now += 25 * 3600
    world.stripe._replies.clear()  # Stripe forgot every key after 24 hours

    world.job().run(seed_plan())

    (invoice,) = world.stripe.invoices.values()
    assert [line["amount"] for line in invoice["lines"]["data"]] == [2000, 1774]
    assert invoice["status"] == "open"


def test_an_account_without_a_payment_method_still_gets_a_finalized_invoice_marked_as_missing_one(world):
    world.account(payment_method=None)

    result = world.job().run(seed_plan())

    (invoice,) = world.stripe.invoices.values()
    assert invoice["status"] == "open"
    assert result.payment_method_missing
    assert world.invoices.get("u1", "inv_2024-11_u1").stripe.payment_method_missing is True


def test_an_account_without_a_stripe_customer_gets_one_recorded_on_the_account(world):
    world.account(customer=False)

    world.job().run(seed_plan())

    (customer,) = world.stripe.customers.values()
    assert customer["metadata"] == {"userId": "u1"}
    assert world.accounts.get("u1").stripe_customer_id == customer["id"]


def test_a_status_a_webhook_already_advanced_is_never_set_back(world):
    world.account()
    with pytest.raises(Crash):
        world.job(observe=crash_at("finalize", "stripe")).run(seed_plan())
    # invoice.finalized and invoice.paid were applied before the job saved its own progress.
    world.invoices.update("u1", "inv_2024-11_u1", {"status": "paid"}, conditions=[FieldIs.one_of("status", "draft")])

    world.job().run(seed_plan())

    record = world.invoices.get("u1", "inv_2024-11_u1")
    assert record.status == "paid"
    assert record.stripe.number == next(iter(world.stripe.invoices.values()))["number"]


def test_zero_aws_costs_bill_the_base_fee_alone_without_an_empty_aws_line(world):
    world.account()

    result = world.job().run(seed_plan(lines=()))

    (invoice,) = world.stripe.invoices.values()
    assert [(line["metadata"]["line"], line["amount"]) for line in invoice["lines"]["data"]] == [("base-fee", 2000)]
    assert invoice["total"] == 2000 and result.status == "open"
    record = world.invoices.get("u1", "inv_2024-11_u1")
    assert record.aws_breakdown == {} and record.all_lines_added


def test_a_draft_finalized_after_all_its_lines_were_added_is_taken_as_it_is(world):
    world.account()
    plan = seed_plan(lines=())
    with pytest.raises(Crash):
        world.job(observe=crash_at("add-lines", "stripe")).run(plan)
    (invoice,) = world.stripe.invoices.values()
    invoice["status"] = "open"  # Stripe finalized the complete draft meanwhile (auto-advance)
    world.now += 25 * 3600  # past the idempotency window: the job reads Stripe before each step

    result = world.job().run(plan)

    assert result.status == "open"
    assert len(world.stripe.calls_to("add_invoice_lines")) == 1
    assert world.invoices.get("u1", plan.invoice_id).all_lines_added


def test_the_claimed_amounts_win_over_a_later_plan_with_other_costs(world):
    world.account()
    with pytest.raises(Crash):
        world.job(observe=crash_at("claim", "saved")).run(seed_plan())

    world.job().run(seed_plan(lines=(CostLine("AWS Lambda", Decimal("99")),)))

    (invoice,) = world.stripe.invoices.values()
    assert [line["amount"] for line in invoice["lines"]["data"]] == [2000, 1774]


def test_an_account_deleted_after_planning_is_an_error_the_queue_retries(world):
    with pytest.raises(AccountNotFound):
        world.job().run(seed_plan())
    assert world.stripe.invoices == {}


def test_the_job_message_carries_the_plan_exactly_with_money_as_text():
    plan = seed_plan()

    message = plan_to_message(plan, "run_1")

    body = json.loads(message)
    assert body["plan"]["total"] == "37.74" and body["plan"]["breakdown"]["AWS Lambda"] == "5.23"
    assert plan_from_message(message) == (plan, "run_1")


@pytest.mark.parametrize("body", [{}, {"type": "other"}, {"type": "invoice-job", "plan": {"userId": "u1"}}])
def test_a_message_that_is_not_an_invoice_job_is_refused(body):
    with pytest.raises(InvoiceMessageInvalid):
        plan_from_message(json.dumps(body))


def test_a_message_whose_lines_do_not_add_up_is_refused():
    message = json.loads(plan_to_message(seed_plan(), "run_1"))
    message["plan"]["total"] = "40.00"

    with pytest.raises(InvoiceMessageInvalid):
        plan_from_message(json.dumps(message))


@pytest.mark.parametrize("method", ["create_draft_invoice", "add_invoice_lines", "finalize_invoice"])
def test_a_500_after_stripe_executed_a_step_is_resumed_with_fresh_keys_and_one_invoice(world, method):
    world.account()
    world.stripe.fail_after_execution_next(method)

    with pytest.raises(StripeFailedAfterExecution):
        world.job().run(seed_plan())
    assert world.invoices.get("u1", "inv_2024-11_u1").stripe.key_generation == 1
    before = len(world.stripe.calls)

    world.job().run(seed_plan())

    (invoice,) = world.stripe.invoices.values()
    assert [line["amount"] for line in invoice["lines"]["data"]] == [2000, 1774]
    assert invoice["status"] == "open"
    assert world.invoices.get("u1", "inv_2024-11_u1").status == "open"
    # The rerun looked at Stripe instead of trusting the spent key; what it still had to send went
    # under generation-1 keys (a finalize that took effect needs nothing more).
    assert [c.idempotency_key for c in world.stripe.calls[before:] if c.idempotency_key] == {
        "create_draft_invoice": ["inv_2024-11_u1:add-lines:1", "inv_2024-11_u1:finalize:1"],
        "add_invoice_lines": ["inv_2024-11_u1:finalize:1"],
        "finalize_invoice": [],
    }[method]


def test_a_failed_finalization_is_recorded_and_retried_with_a_fresh_key(world):
    world.account()
    world.stripe.fail_finalization_next("Tax location could not be determined.")

    with pytest.raises(InvoiceFinalizationFailed, match="Tax location"):
        world.job().run(seed_plan())
    record = world.invoices.get("u1", "inv_2024-11_u1")
    assert (record.status, record.stripe.finalization_error, record.stripe.key_generation) == (
        "draft",
        "Tax location could not be determined.",
        1,
    )

    world.job().run(seed_plan())

    (invoice,) = world.stripe.invoices.values()
    assert invoice["status"] == "open"
    assert [c.idempotency_key for c in world.stripe.calls_to("finalize_invoice")] == [
        "inv_2024-11_u1:finalize",
        "inv_2024-11_u1:finalize:1",
    ]


@pytest.mark.parametrize(
    ("step", "phase"), [("customer", "saved"), ("create-invoice", "saved"), ("add-lines", "saved")]
)
def test_a_job_away_longer_than_its_visibility_reads_its_record_again_and_calls_stripe_no_more(step, phase):
    world = World()
    world.account()
    plan = seed_plan()
    resumed: list[InvoiceJob] = []

    def away(seen_step: str, seen_phase: str) -> None:
        if (seen_step, seen_phase) == (step, phase) and not resumed:
            # While this worker is frozen, another takes the job over and finishes it.
            resumed.append(world.job())
            resumed[0].run(plan)
            world.now += 60  # the frozen worker wakes a minute later
            calls_before.extend(world.stripe.calls)

    calls_before: list = []
    result = world.job(observe=away).run(plan)

    assert result.status == "open" and resumed
    assert world.stripe.calls == calls_before  # nothing sent to Stripe after it woke, not even a replay
