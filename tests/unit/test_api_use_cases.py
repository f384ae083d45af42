"""The API's use cases with in-memory ports: cost preview caching and the one-customer rule."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from billing_core.domain.costs import CostAttribution, CostLine, Period
from billing_core.domain.invoice_plan import BillingPolicy, FxRate
from billing_core.domain.records import Account
from billing_core.use_cases.cost_preview import (
    FORECAST_COST_EXPLORER,
    FORECAST_LINEAR,
    CostPreviewService,
    CostPreviewUnavailable,
    linear_projection,
    month_to_date,
)
from billing_core.use_cases.payment_setup import ensure_customer, start_payment_setup
from tests.support.fakes import (
    FakeAccountRepository,
    FakeCostSource,
    FakeLeases,
    FakePaymentGateway,
    FakePreviewCache,
    FakeSecretsProvider,
)

NOW = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)
MAY = Period(2026, 5)
USD_TO_EUR = FxRate(Decimal("0.92"), "ECB reference rate", date(2026, 5, 14))
COSTS = [CostLine("AWS Lambda", Decimal("5.23")), CostLine("Amazon CloudFront", Decimal("8.47"))]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock():
    return Clock(NOW)


class FakeEventsTable(FakePreviewCache, FakeLeases):
    """The preview's cache and its refill leases, in the one events table as in production."""


def preview_service(costs, ledger, clock, **kwargs) -> CostPreviewService:
    return CostPreviewService(costs, ledger, BillingPolicy(fx=USD_TO_EUR), leases=ledger, now=clock, **kwargs)


def test_a_hundred_page_views_make_one_cost_explorer_request(clock):
    costs = FakeCostSource(COSTS)
    service = preview_service(costs, FakeEventsTable(clock=clock.seconds), clock)

    previews = [service.preview(Account("u")) for _ in range(100)]

    assert costs.calls == 1
    assert len({p.current.total for p in previews}) == 1


def test_the_cache_expires_after_its_ttl_and_then_costs_are_asked_again(clock):
    costs = FakeCostSource(COSTS)
    service = preview_service(costs, FakeEventsTable(clock=clock.seconds), clock, ttl_seconds=3600)

    service.preview(Account("u"))
    clock.now += timedelta(minutes=59)
    service.preview(Account("u"))
    clock.now += timedelta(minutes=2)
    refreshed = service.preview(Account("u"))

    assert costs.calls == 2
    assert refreshed.as_of == clock.now


def test_accounts_share_the_cached_report_but_each_gets_its_own_base_fee(clock):
    costs = FakeCostSource(COSTS)
    service = preview_service(costs, FakeEventsTable(clock=clock.seconds), clock)

    standard = service.preview(Account("a"))
    discounted = service.preview(Account("b", base_fee_override=Decimal("10.00")))

    assert costs.calls == 1
    assert standard.current.base_fee == Decimal("20.00") and discounted.current.base_fee == Decimal("10.00")
    assert standard.current.aws_costs == discounted.current.aws_costs == Decimal("12.60")  # 13.70 USD * 0.92


def test_the_preview_converts_like_the_invoice_and_keeps_the_estimated_flag(clock):
    service = preview_service(FakeCostSource(COSTS, estimated=True), FakeEventsTable(clock=clock.seconds), clock)

    preview = service.preview(Account("u"))

    assert preview.current.total == Decimal("32.60")
    assert sum(preview.current.breakdown.values()) == preview.current.aws_costs
    assert preview.estimated is True and preview.as_of == NOW


def test_the_forecast_is_cost_explorers_when_it_has_one(clock):
    costs = FakeCostSource(COSTS, forecast_total=Decimal("16.30"))  # the rest of the month, USD
    preview = preview_service(costs, FakeEventsTable(clock=clock.seconds), clock).preview(Account("u"))

    assert preview.forecast_method == FORECAST_COST_EXPLORER
    assert preview.forecast.aws_costs == Decimal("27.60")  # (13.70 + 16.30) * 0.92


def test_without_a_cost_explorer_forecast_the_month_is_projected_linearly(clock):
    preview = preview_service(FakeCostSource(COSTS), FakeEventsTable(clock=clock.seconds), clock).preview(Account("u"))

    assert preview.forecast_method == FORECAST_LINEAR
    assert preview.forecast.aws_costs == Decimal("27.91")  # 13.70 / 14 days * 31 days * 0.92 = 27.909


def test_linear_projection_and_the_month_to_date_range():
    assert linear_projection(Decimal("10"), 10, 30) == Decimal("30")
    assert month_to_date(date(2026, 5, 15)) == (date(2026, 5, 1), date(2026, 5, 15))
    assert month_to_date(date(2026, 5, 1)) == (date(2026, 5, 1), date(2026, 5, 2))


def test_a_scoped_account_is_priced_from_its_own_lines(clock):
    lines = [CostLine("AWS Lambda", Decimal("10"), scope="111"), CostLine("AWS Lambda", Decimal("30"), scope="222")]
    costs = FakeCostSource(lines)
    ledger = FakeEventsTable(clock=clock.seconds)
    service = CostPreviewService(
        costs, ledger, BillingPolicy(currency="USD"), leases=ledger, attribution=CostAttribution.by_account(), now=clock
    )

    preview = service.preview(Account("u", cost_scope="111"))

    assert preview.current.aws_costs == Decimal("10.00")
    assert preview.forecast.aws_costs == Decimal("22.14")  # 10 / 14 * 31


def test_an_unscoped_account_never_sees_the_other_scopes_costs(clock):
    lines = [CostLine("AWS Lambda", Decimal("10"), scope="111"), CostLine("AWS Lambda", Decimal("30"), scope="222")]
    ledger = FakeEventsTable(clock=clock.seconds)
    service = CostPreviewService(
        FakeCostSource(lines),
        ledger,
        BillingPolicy(currency="USD"),
        leases=ledger,
        attribution=CostAttribution.by_account(),
        now=clock,
    )

    with pytest.raises(CostPreviewUnavailable, match="no cost scope"):
        service.preview(Account("new-admin"))


def test_cost_explorer_failure_makes_the_preview_unavailable_and_is_not_cached(clock):
    from billing_core.errors import CostSourceThrottled

    costs = FakeCostSource(COSTS)
    ledger = FakeEventsTable(clock=clock.seconds)
    service = preview_service(costs, ledger, clock)
    original = costs.costs

    def throttled(*args, **kwargs):
        raise CostSourceThrottled("still throttling")

    costs.costs = throttled
    with pytest.raises(CostPreviewUnavailable):
        service.preview(Account("u"))
    costs.costs = original

    assert service.preview(Account("u")).current.aws_costs == Decimal("12.60")


def test_while_another_request_fills_the_cache_a_view_waits_for_it_instead_of_asking_again(clock):
    costs = FakeCostSource(COSTS)
    ledger = FakeEventsTable(clock=clock.seconds)
    filler = preview_service(costs, ledger, clock)
    key = filler.cache_key(MAY)
    ledger.acquire_lease(key, "other-request", 60)
    waits = []

    def sleep(seconds):  # the other request finishes its fill while this one waits
        waits.append(seconds)
        if len(waits) == 3:
            ledger.release_lease(key, "other-request")
            filler.preview(Account("other"))  # the other request's fill, now that its lease is gone

    waiter = preview_service(costs, ledger, clock, sleep=sleep)
    preview = waiter.preview(Account("u"))

    assert len(waits) == 3 and preview.current.aws_costs == Decimal("12.60")
    assert costs.calls == 1  # the other request's fill only


def test_a_view_gives_up_waiting_for_a_stuck_fill_without_asking_cost_explorer(clock):
    costs = FakeCostSource(COSTS)
    ledger = FakeEventsTable(clock=clock.seconds)
    ticks = iter(range(1000))
    service = preview_service(costs, ledger, clock, sleep=lambda s: None, monotonic=lambda: next(ticks), wait_seconds=5)
    ledger.acquire_lease(service.cache_key(MAY), "stuck", 60)

    with pytest.raises(CostPreviewUnavailable):
        service.preview(Account("u"))
    assert costs.calls == 0


# --- the one Stripe customer per account ----------------------------------------------------------


def test_the_first_setup_creates_the_customer_and_later_ones_reuse_it():
    accounts, payments = FakeAccountRepository(), FakePaymentGateway()

    first = start_payment_setup(
        "u1",
        request_key="r1",
        accounts=accounts,
        payments=payments,
        secrets=FakeSecretsProvider(),
        email="a@example.com",
    )
    second = start_payment_setup(
        "u1",
        request_key="r2",
        accounts=accounts,
        payments=payments,
        secrets=FakeSecretsProvider(),
        email="a@example.com",
    )

    assert first.customer_id == second.customer_id
    assert len(payments.calls_to("create_customer")) == 1
    assert first.setup_intent_id != second.setup_intent_id
    assert payments.customers[first.customer_id]["metadata"] == {"userId": "u1"}


def test_racing_requests_that_both_saw_no_customer_end_up_with_one():
    accounts, payments = FakeAccountRepository(), FakePaymentGateway()
    both_read = threading.Barrier(2, timeout=5)
    real_get = accounts.get

    def get_then_wait(account_id):
        item = real_get(account_id)
        if item is None or item.stripe_customer_id is None:
            both_read.wait()  # both requests have seen "no customer" before either creates one
        return item

    accounts.get = get_then_wait
    results = []

    def request():
        results.append(ensure_customer("u1", accounts=accounts, payments=payments))

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(results) == 2 and results[0] == results[1]
    assert len(payments.customers) == 1
    assert len(payments.calls_to("create_customer", replayed=True)) == 1
    assert real_get("u1").stripe_customer_id == results[0]


def test_a_customer_recorded_by_someone_else_first_wins_over_ours():
    accounts, payments = FakeAccountRepository(), FakePaymentGateway()
    real_set = accounts.set_stripe_customer_id_if_absent

    def someone_else_first(account_id, customer_id, fields=None):
        real_set(account_id, "cus_recorded_first")
        return real_set(account_id, customer_id, fields)

    accounts.set_stripe_customer_id_if_absent = someone_else_first

    assert ensure_customer("u1", accounts=accounts, payments=payments) == "cus_recorded_first"
