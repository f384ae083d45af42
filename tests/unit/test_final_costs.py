"""The cron's run waits for Cost Explorer's final costs, re-checks once a day, and bills at the deadline."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from billing_core.domain.costs import PAYER, CostLine, Period
from billing_core.domain.fx import FxRate
from billing_core.domain.invoice_plan import BillingPolicy
from billing_core.domain.records import RunStatus
from billing_core.use_cases.billing_run import BillingRun
from billing_core.use_cases.invoice_messages import plan_from_message
from scheduler_worker.schedule import FINAL_COSTS_JOB_ID, JOB_ID, trigger_billing_run
from tests.support.fakes import FakeAccountRepository, FakeCostSource, FakeLeases, FakeQueue, FakeRunRecords
from tests.support.records import stored_accounts

NOVEMBER = Period(2026, 11)
LINES = (CostLine("AWS Lambda", Decimal("17.74")),)


class Clock:
    def __init__(self, day: int, hour: int = 0) -> None:
        self.now = datetime(2026, 12, day, hour, tzinfo=UTC).timestamp()

    def day(self, day: int, hour: int = 6) -> None:
        self.now = datetime(2026, 12, day, hour, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def world(*, wait=True, deadline_day=8, day=1):
    clock = Clock(day)
    costs = FakeCostSource(LINES, estimated=True)
    runs, queue = FakeRunRecords(clock=clock), FakeQueue()
    run = BillingRun(
        accounts=FakeAccountRepository(*stored_accounts([{"userId": "u1"}])),
        costs=costs,
        leases=FakeLeases(clock=clock),
        runs=runs,
        billing_jobs=queue,
        policy=BillingPolicy(fx=FxRate(Decimal("1"), "manual", NOVEMBER.start)),
        attribution=PAYER,
        cost_requests=lambda: costs.calls,
        wait_for_final_costs=wait,
        final_costs_deadline_day=deadline_day,
        clock=clock,
    )
    return run, clock, costs, runs, queue


def at(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def test_estimated_costs_make_the_cron_run_wait_with_one_query_and_nothing_enqueued():
    run, clock, costs, runs, queue = world()

    result = trigger_billing_run(run, "replica-a", at(clock))

    assert result is not None and result.waiting_for_final_costs and result.enqueued == 0
    assert queue.messages == []
    assert costs.calls == 1
    record = runs.get(NOVEMBER)
    assert (record.status, record.costs_estimated, record.cost_requests) == (RunStatus.WAITING_FOR_FINAL_COSTS, True, 1)


def test_each_daily_recheck_is_one_query_until_the_costs_are_final_then_it_bills_once():
    run, clock, costs, runs, queue = world()
    trigger_billing_run(run, "replica-a", at(clock))
    clock.day(2)
    trigger_billing_run(run, "replica-a", at(clock))
    assert costs.calls == 2 and queue.messages == []

    clock.day(3)
    costs.estimated = False  # Cost Explorer closed the month
    billed = trigger_billing_run(run, "replica-a", at(clock))
    clock.day(4)
    again = trigger_billing_run(run, "replica-b", at(clock))

    assert billed is not None and billed.enqueued == 1 and not billed.costs_estimated
    assert again is None  # the run record says enqueued: refused before any query
    assert costs.calls == 3
    ((plan, _),) = [plan_from_message(message.body) for message in queue.messages]
    assert plan.costs_estimated is False and plan.total == Decimal("37.74")
    assert runs.get(NOVEMBER).status is RunStatus.ENQUEUED


def test_on_the_deadline_day_the_estimate_is_billed_flagged_estimated():
    run, clock, costs, runs, queue = world(deadline_day=8)
    clock.day(7)
    assert trigger_billing_run(run, "replica-a", at(clock)).waiting_for_final_costs

    clock.day(8)
    result = trigger_billing_run(run, "replica-a", at(clock))

    assert result.enqueued == 1 and result.costs_estimated
    ((plan, _),) = [plan_from_message(message.body) for message in queue.messages]
    assert plan.costs_estimated is True
    assert runs.get(NOVEMBER).costs_estimated is True


def test_with_cost_finality_estimated_the_cron_bills_at_the_trigger():
    run, clock, _, _, queue = world(wait=False)

    result = trigger_billing_run(run, "replica-a", at(clock))

    assert result.enqueued == 1 and result.costs_estimated and len(queue.messages) == 1


def test_a_run_started_by_the_operator_does_not_wait():
    run, _, _, runs, queue = world()

    result = run.start(NOVEMBER, owner="cli", trigger="cli")

    assert result.enqueued == 1 and result.costs_estimated and len(queue.messages) == 1


def test_the_scheduler_has_the_monthly_run_and_the_daily_recheck_at_the_configured_hour():
    from billing_core.settings import Settings
    from scheduler_worker import schedule

    run, *_ = world()
    settings = Settings.from_env({"FINAL_COSTS_CHECK_HOUR": "5", "AWS_REGION": "eu-central-1"})
    use_cases = SimpleNamespace(settings=settings, billing_run=lambda: run)

    scheduler = schedule.billing_scheduler(use_cases, owner="o")

    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {JOB_ID, FINAL_COSTS_JOB_ID}
    assert str(jobs[FINAL_COSTS_JOB_ID].trigger.fields[5]) == "5"  # the hour field
