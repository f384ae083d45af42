"""The billing run with in-memory fakes: one cost query, one job per account, one run per period."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing_core.bootstrap import policy_from_settings
from billing_core.domain.costs import PAYER, CostAttribution, CostLine, Period
from billing_core.domain.errors import ConfigurationError
from billing_core.domain.invoice_plan import BillingPolicy, FxRate
from billing_core.domain.records import RunStatus
from billing_core.errors import SettingsError
from billing_core.settings import Settings
from billing_core.use_cases.billing_run import AlreadyBilled, BillingRun, LeaseHeld, PeriodNotEnded, lease_name
from billing_core.use_cases.invoice_messages import plan_from_message
from scheduler_worker.schedule import trigger_billing_run
from tests.support.fakes import FakeAccountRepository, FakeCostSource, FakeLeases, FakeQueue, FakeRunRecords
from tests.support.records import stored_accounts

PERIOD = Period(2024, 11)
POLICY = BillingPolicy(fx=FxRate(Decimal("1.0"), "test", date(2024, 11, 30)))
SEED_LINES = (
    CostLine("AWS Lambda", Decimal("5.23")),
    CostLine("Amazon Simple Storage Service", Decimal("2.15")),
    CostLine("Amazon CloudFront", Decimal("8.47")),
    CostLine("Amazon DynamoDB", Decimal("1.89")),
)


BY_ACCOUNT = CostAttribution.by_account()


def linked_account_of(account_id: str) -> str:
    return f"acct-{account_id}"


def make_run(accounts=("u1",), *, policy=POLICY, lines=SEED_LINES, items=(), attribution=BY_ACCOUNT, clock=None):
    """A run over ``accounts``; grouped by linked account, each has its own and ``lines`` as its costs."""
    if not attribution.splits:
        items = [{"userId": account_id} for account_id in accounts] + list(items)
        repo = FakeAccountRepository(*stored_accounts(items))
        costs = FakeCostSource(lines)
    else:
        items = [{"userId": a, "costScope": linked_account_of(a)} for a in accounts] + list(items)
        repo = FakeAccountRepository(*stored_accounts(items))
        costs = FakeCostSource(
            [
                CostLine(line.service, line.amount, linked_account_of(account_id))
                for account_id in accounts
                for line in lines
            ]
        )
    ledger = Ledger()
    queue = FakeQueue()
    run = BillingRun(
        accounts=repo,
        costs=costs,
        leases=ledger,
        runs=ledger.runs,
        billing_jobs=queue,
        policy=policy,
        attribution=attribution,
        cost_requests=lambda: costs.calls,
        **({"clock": clock} if clock else {}),
    )
    return run, costs, ledger, queue


class Ledger(FakeLeases):
    """The run's leases, with its run records beside them."""

    def __init__(self) -> None:
        super().__init__()
        self.runs = FakeRunRecords()


def test_run_queries_costs_once_and_enqueues_one_job_per_account():
    run, costs, ledger, queue = make_run([f"u{i}" for i in range(50)])

    result = run.start(PERIOD, owner="a", trigger="test")

    assert costs.calls == 1 and result.cost_requests == 1
    plans = [plan_from_message(message.body)[0] for message in queue.messages]
    assert sorted(p.account_id for p in plans) == sorted(f"u{i}" for i in range(50))
    assert {p.total for p in plans} == {Decimal("37.74")}
    assert run.run_record(PERIOD).status is RunStatus.ENQUEUED and run.run_record(PERIOD).enqueued == 50
    assert ledger.leases == {}  # released


def test_run_refuses_to_start_when_costs_are_usd_and_no_fx_rate_is_configured():
    run, _, ledger, queue = make_run(policy=BillingPolicy())

    with pytest.raises(ConfigurationError, match="no FX rate"):
        run.start(PERIOD, owner="a", trigger="test")

    assert queue.messages == [] and run.run_record(PERIOD) is None and ledger.leases == {}


FIRST_OF_DECEMBER_2026 = datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("label", ["2026-12", "2027-01", "2030-06"])
def test_a_period_that_has_not_ended_is_refused_and_nothing_is_written(label):
    run, costs, ledger, queue = make_run(clock=lambda: FIRST_OF_DECEMBER_2026)

    with pytest.raises(PeriodNotEnded, match=f"{label} has not ended"):
        run.start(Period.parse(label), owner="a", trigger="cli")
    with pytest.raises(PeriodNotEnded):
        run.plan(Period.parse(label))

    assert queue.messages == [] and ledger.runs.records == {} and ledger.leases == {} and costs.queries == []


def test_the_month_just_ended_can_be_billed_from_midnight_utc():
    run, _, _, queue = make_run(clock=lambda: FIRST_OF_DECEMBER_2026)

    run.start(Period(2026, 11), owner="a", trigger="cli")

    assert len(queue.messages) == 1


def test_a_second_trigger_while_the_lease_is_held_enqueues_nothing():
    run, _, ledger, queue = make_run()
    ledger.acquire_lease(lease_name(PERIOD), "replica-a", 60)

    with pytest.raises(LeaseHeld):
        run.start(PERIOD, owner="replica-b", trigger="cron", only_once=True)

    assert queue.messages == []


def test_the_cron_does_not_bill_a_period_whose_run_already_enqueued():
    run, _, _, queue = make_run()
    run.start(PERIOD, owner="replica-a", trigger="cron", only_once=True)

    with pytest.raises(AlreadyBilled):
        run.start(PERIOD, owner="replica-b", trigger="cron", only_once=True)

    assert len(queue.messages) == 1


def test_a_rerun_from_the_cli_enqueues_again_so_a_crashed_run_completes():
    run, _, _, queue = make_run(["u1", "u2"])
    run.start(PERIOD, owner="a", trigger="cron", only_once=True)

    run.start(PERIOD, owner="b", trigger="cli")

    assert len(queue.messages) == 4  # the jobs themselves make the second pair a no-op


def test_a_dry_run_plans_every_account_and_writes_nothing():
    run, costs, ledger, queue = make_run(["u1", "u2"])

    result = run.plan(PERIOD)

    assert [p.total for p in result.plans] == [Decimal("37.74"), Decimal("37.74")]
    assert queue.messages == [] and ledger.runs.records == {} and ledger.leases == {}


def test_one_account_run_bills_only_that_account_and_leaves_the_run_record_alone():
    run, _, _, queue = make_run(["u1", "u2"])

    run.start(PERIOD, owner="a", trigger="cli", only_account="u2")

    assert [b["plan"]["userId"] for b in queue.sent_bodies] == ["u2"]
    assert run.run_record(PERIOD) is None


def test_a_misconfigured_account_is_skipped_and_the_others_are_billed():
    run, _, _, queue = make_run(["u1"], items=[{"userId": "broken", "baseFeeOverride": Decimal("-5")}])

    result = run.start(PERIOD, owner="a", trigger="test")

    assert [s.account_id for s in result.skipped] == ["broken"]
    assert [b["plan"]["userId"] for b in queue.sent_bodies] == ["u1"]


def test_an_account_without_cost_scope_is_skipped_instead_of_billed_every_accounts_costs():
    run, _, _, queue = make_run(["u1", "u2"], items=[{"userId": "new-admin"}])

    result = run.start(PERIOD, owner="a", trigger="test")

    (skipped,) = result.skipped
    assert skipped.account_id == "new-admin" and "costScope" in skipped.reason
    assert sorted((b["plan"]["userId"], b["plan"]["total"]) for b in queue.sent_bodies) == [
        ("u1", "37.74"),
        ("u2", "37.74"),
    ]


def test_grouped_by_service_the_only_account_is_billed_the_whole_payer_account():
    run, _, _, queue = make_run(["u1"], attribution=PAYER)

    run.start(PERIOD, owner="a", trigger="test")

    (body,) = queue.sent_bodies
    assert body["plan"]["userId"] == "u1" and body["plan"]["total"] == "37.74"


def test_grouped_by_service_several_accounts_refuse_the_run_naming_them():
    run, costs, ledger, queue = make_run(["u1", "u2"], attribution=PAYER)

    with pytest.raises(ConfigurationError, match="u1, u2"):
        run.start(PERIOD, owner="a", trigger="test")

    assert queue.messages == [] and costs.calls == 0
    assert run.run_record(PERIOD) is None and ledger.leases == {}


def test_grouped_by_service_a_one_account_run_is_refused_while_other_accounts_exist():
    run, _, _, queue = make_run(["u1", "u2"], attribution=PAYER)

    with pytest.raises(ConfigurationError, match="u1, u2"):
        run.start(PERIOD, owner="a", trigger="cli", only_account="u2")

    assert queue.messages == []


def test_credits_reduce_the_aws_line_and_never_show_in_the_breakdown():
    run, _, _, queue = make_run(lines=SEED_LINES + (CostLine("Credit", Decimal("-7.74")),))

    run.start(PERIOD, owner="a", trigger="test")

    (body,) = queue.sent_bodies
    assert body["plan"]["awsCosts"] == "10.00" and body["plan"]["total"] == "30.00"
    assert "Credit" not in body["plan"]["breakdown"]
    assert sum(Decimal(v) for v in body["plan"]["breakdown"].values()) == Decimal("10.00")


def test_the_cron_trigger_bills_the_previous_month_once():
    run, costs, _, queue = make_run()
    first_of_december = datetime(2024, 12, 1, 0, 0, tzinfo=UTC)

    first = trigger_billing_run(run, "replica-a", first_of_december)
    second = trigger_billing_run(run, "replica-b", first_of_december)

    assert first is not None and first.period == PERIOD
    assert second is None
    assert costs.queries == [(date(2024, 11, 1), date(2024, 12, 1), BY_ACCOUNT)]
    assert len(queue.messages) == 1


def test_policy_comes_from_the_settings():
    settings = Settings.from_env(
        {
            "FX_RATE": "0.92",
            "FX_SOURCE": "ECB",
            "FX_DATE": "2024-11-29",
            "BASE_FEE": "25.00",
            "MARKUP_PERCENT": "10",
            "INVOICE_LANGUAGE": "en",
        }
    )

    policy = policy_from_settings(settings)

    assert policy.fx == FxRate(Decimal("0.92"), "ECB", date(2024, 11, 29))
    assert (policy.base_fee, policy.markup_percent, policy.language, policy.currency) == (
        Decimal("25.00"),
        Decimal("10"),
        "en",
        "EUR",
    )


def test_an_fx_rate_without_its_source_is_a_settings_error():
    with pytest.raises(SettingsError, match="FX_SOURCE"):
        policy_from_settings(Settings.from_env({"FX_RATE": "0.92"}))


def test_billing_settings_have_the_documented_defaults():
    settings = Settings.from_env({})

    assert settings.base_fee == Decimal("20.00") and settings.fx_rate is None
    assert settings.billing_cron == "0 0 1 * *" and settings.invoice_language == "de"
    assert settings.stripe_max_requests_per_second is None and settings.cost_group_by == PAYER
