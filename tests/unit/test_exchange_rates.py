"""Each period billed at its own ECB rate, stored once; a rate not out yet or a feed down stops the run."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billing_core.adapters.ecb_feed import parse_ecb_feed
from billing_core.domain.costs import PAYER, CostLine, Period
from billing_core.domain.fx import ECB_SOURCE, FxQuote, FxRate, FxRule, PeriodRate
from billing_core.domain.invoice_plan import BillingPolicy
from billing_core.errors import ExchangeRateUnavailable
from billing_core.ports.rates import PublishedRates, ReferenceRateFeed
from billing_core.use_cases.billing_run import BillingRun, RateNotAvailable
from billing_core.use_cases.exchange_rates import ExchangeRates
from billing_core.use_cases.invoice_messages import plan_from_message
from tests.support.fakes import (
    FakeAccountRepository,
    FakeCostSource,
    FakeLeases,
    FakePeriodRates,
    FakeQueue,
    FakeRunRecords,
)
from tests.support.records import stored_accounts

FX = Path(__file__).resolve().parents[3] / "shared" / "fx"
pytestmark = pytest.mark.skipif(not (FX / "eurofxref-hist-90d.xml").exists(), reason="needs ../shared/fx")
SEED_USD = (
    CostLine("AWS Lambda", Decimal("5.2312345678")),
    CostLine("Amazon CloudFront", Decimal("8.4700000001")),
    CostLine("Amazon Simple Storage Service", Decimal("2.1487654321")),
    CostLine("Amazon DynamoDB", Decimal("1.8899999999")),
)
NINETY_DAYS_URL = "https://ecb.example/eurofxref-hist-90d.xml"


class FileFeed(ReferenceRateFeed):
    """The real 90-day ECB file as the feed; ``down`` makes it unreachable."""

    def __init__(self) -> None:
        self.rates = parse_ecb_feed((FX / "eurofxref-hist-90d.xml").read_bytes())
        self.down = False
        self.reads = 0

    def published(self, *, since: date, currency: str) -> PublishedRates:
        self.reads += 1
        if self.down:
            raise ExchangeRateUnavailable("the ECB feed could not be read: ConnectionError")
        return PublishedRates(self.rates, NINETY_DAYS_URL)


def a_run(feed: FileFeed, stored: FakePeriodRates, *, manual: FxRate | None = None):
    queue = FakeQueue()
    run = BillingRun(
        accounts=FakeAccountRepository(*stored_accounts([{"userId": "u1"}])),
        costs=FakeCostSource(SEED_USD),
        leases=FakeLeases(),
        runs=FakeRunRecords(),
        billing_jobs=queue,
        policy=BillingPolicy(fx=manual),
        rates=ExchangeRates(stored, feed, rule=FxRule.LAST_WORKING_DAY, manual=manual),
        attribution=PAYER,
    )
    return run, queue


def test_a_period_is_converted_at_the_ecb_rate_of_its_last_working_day_by_division():
    feed, stored = FileFeed(), FakePeriodRates()
    run, queue = a_run(feed, stored)

    run.start(Period(2024, 12), owner="a", trigger="cli")

    ((plan, _),) = [plan_from_message(message.body) for message in queue.messages]
    # 17.74 USD / 1.0389 (ECB, 2024-12-31) = 17.0757... EUR
    assert (plan.aws_costs, plan.total) == (Decimal("17.08"), Decimal("37.08"))
    assert (plan.fx.rate, plan.fx.as_of, plan.fx.quote) == (
        Decimal("1.0389"),
        date(2024, 12, 31),
        FxQuote.COST_PER_INVOICE_UNIT,
    )
    assert plan.conversion.note == "1 EUR = 1,0389 USD, EZB-Referenzkurs vom 31.12.2024"
    kept = stored.get(Period(2024, 12))
    assert (kept.feed, kept.rule, kept.fx.source) == (NINETY_DAYS_URL, FxRule.LAST_WORKING_DAY, ECB_SOURCE)


def test_a_rerun_bills_at_the_stored_rate_without_reading_the_feed_again():
    feed, stored = FileFeed(), FakePeriodRates()
    run, queue = a_run(feed, stored)
    run.start(Period(2024, 12), owner="a", trigger="cli")
    feed.rates[date(2024, 12, 31)] = Decimal("2")  # a later correction of the feed changes nothing billed

    run.start(Period(2024, 12), owner="a", trigger="cli")

    plans = [plan_from_message(message.body)[0] for message in queue.messages]
    assert [p.fx.rate for p in plans] == [Decimal("1.0389"), Decimal("1.0389")]
    assert feed.reads == 1


def test_a_period_whose_rate_is_not_published_yet_refuses_the_run_and_stores_nothing():
    feed, stored = FileFeed(), FakePeriodRates()  # the file ends on 2025-02-25
    run, queue = a_run(feed, stored)

    with pytest.raises(RateNotAvailable, match="2025-02"):
        run.start(Period(2025, 2), owner="a", trigger="cli")

    assert queue.messages == [] and stored.items == {}


def test_a_feed_that_cannot_be_read_refuses_the_run():
    feed, stored = FileFeed(), FakePeriodRates()
    feed.down = True
    run, queue = a_run(feed, stored)

    with pytest.raises(RateNotAvailable, match="could not be read"):
        run.start(Period(2024, 12), owner="a", trigger="cli")

    assert queue.messages == [] and stored.items == {}


def test_the_operators_manual_rate_wins_is_stored_and_multiplies():
    feed, stored = FileFeed(), FakePeriodRates()
    manual = FxRate(Decimal("0.95"), "manual", date(2024, 12, 1))
    run, queue = a_run(feed, stored, manual=manual)

    run.start(Period(2024, 12), owner="a", trigger="cli")

    ((plan, _),) = [plan_from_message(message.body) for message in queue.messages]
    assert plan.aws_costs == Decimal("16.85")  # 17.74 USD * 0.95
    assert plan.conversion.note == "1 USD = 0,95 EUR, Kurs manuell vom 01.12.2024"
    assert stored.get(Period(2024, 12)).fx == manual and feed.reads == 0


def test_the_month_average_rule_averages_the_published_days():
    stored = FakePeriodRates()
    rates = ExchangeRates(stored, FileFeed(), rule=FxRule.MONTH_AVERAGE)

    fx = rates.for_period(Period(2025, 1))

    assert fx.as_of == date(2025, 1, 31) and fx.quote is FxQuote.COST_PER_INVOICE_UNIT
    assert stored.get(Period(2025, 1)).rule is FxRule.MONTH_AVERAGE


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now


def test_the_preview_converts_at_the_newest_published_day_read_once_for_every_process_for_six_hours():
    feed, stored = FileFeed(), FakePeriodRates()
    clock = Clock(datetime(2025, 2, 26, 9, tzinfo=UTC))
    ExchangeRates(stored, feed, clock=clock).for_period(Period(2025, 1))  # January, billed at 31.01.2025

    fx = ExchangeRates(stored, feed, clock=clock).for_preview(Period(2025, 2))
    clock.now += 5 * 3600
    again = ExchangeRates(stored, feed, clock=clock).for_preview(Period(2025, 2))  # another process

    # The file's newest day is 2025-02-25 (1.0497): newer than January's stored rate.
    assert (fx.rate, fx.as_of, fx.source) == (Decimal("1.0497"), date(2025, 2, 25), ECB_SOURCE)
    assert again == fx and feed.reads == 2  # January's rate, then one reading for both previews
    clock.now += 3600
    ExchangeRates(stored, feed, clock=clock).for_preview(Period(2025, 2))
    assert feed.reads == 3
    assert stored.get(Period(2025, 2)) is None  # a preview fixes no period's rate


def test_a_manual_rate_stored_for_last_month_is_newer_than_the_feed_and_wins_the_preview():
    feed, stored = FileFeed(), FakePeriodRates()
    pinned = FxRate(Decimal("1.0"), "local-stack", date(2025, 3, 3))
    stored.put_if_absent(PeriodRate(Period(2025, 2), pinned))

    fx = ExchangeRates(stored, feed, clock=Clock(datetime(2025, 3, 3, 12, tzinfo=UTC))).for_preview(Period(2025, 3))

    assert fx == pinned


def test_with_the_feed_down_the_preview_uses_the_last_reading_or_says_no_rate_is_known():
    feed, stored = FileFeed(), FakePeriodRates()
    clock = Clock(datetime(2025, 2, 26, 9, tzinfo=UTC))
    first = ExchangeRates(stored, feed, clock=clock).for_preview(Period(2025, 2))
    feed.down = True
    clock.now += 7 * 3600

    assert ExchangeRates(stored, feed, clock=clock).for_preview(Period(2025, 2)) == first
    with pytest.raises(ExchangeRateUnavailable, match="no exchange rate is known"):
        ExchangeRates(FakePeriodRates(), feed, clock=clock).for_preview(Period(2025, 2))


def test_without_a_feed_or_a_manual_rate_the_run_is_refused_with_a_clear_error():
    run = BillingRun(
        accounts=FakeAccountRepository(*stored_accounts([{"userId": "u1"}])),
        costs=FakeCostSource(SEED_USD),
        leases=FakeLeases(),
        runs=FakeRunRecords(),
        billing_jobs=FakeQueue(),
        policy=BillingPolicy(),
        rates=ExchangeRates(FakePeriodRates(), None),
        attribution=PAYER,
    )

    with pytest.raises(RateNotAvailable, match="no ECB feed configured"):
        run.start(Period(2024, 12), owner="a", trigger="cli")
