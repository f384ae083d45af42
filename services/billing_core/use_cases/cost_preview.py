"""The current month's cost preview: month-to-date AWS costs priced as the invoice would price them.

Each Cost Explorer request costs 0.01 USD, so page views must never multiply them. The raw
month-to-date report (every scope, unconverted) is cached in the ``events`` table per attribution and
month for ``ttl_seconds``; each page view converts it for its own account, which is pure and cheap.
When the cache is empty, one request refills it and the others wait for that refill:

    view A: no cache -> takes the fill lease -> Cost Explorer -> stores the report -> releases
    view B: no cache -> lease taken -> polls the cache until A has stored it (or gives up: unavailable)
    view C (later, within the TTL): cache hit, no Cost Explorer request
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from billing_core.domain.costs import PAYER, CostAttribution, CostLine, CostReport, CostSnapshot, Period
from billing_core.domain.errors import BillingDomainError
from billing_core.domain.fx import RateNotPublished
from billing_core.domain.invoice_plan import BillingPolicy, InvoicePlan, plan_invoice
from billing_core.domain.records import Account
from billing_core.errors import BillingError, ExchangeRateUnavailable
from billing_core.ports import CostSource, Leases, PreviewCache
from billing_core.use_cases.exchange_rates import ExchangeRates

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 6 * 3600
FILL_LEASE_SECONDS = 60
DEFAULT_WAIT_SECONDS = 10.0
POLL_INTERVAL_SECONDS = 0.1

FORECAST_COST_EXPLORER = "cost_explorer"
FORECAST_LINEAR = "linear"
_FORECAST_SERVICE = "forecast"


class CostPreviewUnavailable(BillingError):
    """No preview can be given right now (Cost Explorer failed, or a refill by another request is slow)."""


@dataclass(frozen=True)
class CostPreview:
    """The month so far, priced like the invoice, and where the month is heading."""

    period: Period
    as_of: datetime  # when Cost Explorer was asked
    current: InvoicePlan  # base fee + month-to-date AWS costs, converted and rounded like the invoice
    forecast: InvoicePlan  # base fee + AWS costs projected to the month's end
    forecast_method: str  # "cost_explorer" or "linear"
    estimated: bool  # Cost Explorer marks unfinished months as estimated


def month_to_date(today: date) -> tuple[date, date]:
    """Start of the month to ``today`` (exclusive); on the 1st, the 1st itself (Cost Explorer needs a range)."""
    start = today.replace(day=1)
    return start, max(today, start + timedelta(days=1))


def linear_projection(month_to_date_total: Decimal, days_elapsed: int, days_in_month: int) -> Decimal:
    """The month's total if the rest of it costs what the elapsed days cost on average."""
    if days_elapsed <= 0:
        raise ValueError("at least one day must have elapsed")
    return month_to_date_total / days_elapsed * days_in_month


class CostPreviewService:
    """Month-to-date preview per account from one cached cost report per attribution and month."""

    def __init__(
        self,
        costs: CostSource,
        cache: PreviewCache | None,
        policy: BillingPolicy,
        *,
        rates: ExchangeRates | None = None,
        leases: Leases | None = None,
        attribution: CostAttribution = PAYER,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._costs = costs
        if cache is not None and leases is None:
            raise ValueError("a preview cache needs leases, so one request refills it while the others wait")
        self._cache = cache
        self._leases = leases
        self._policy = policy
        self._rates = rates
        self._attribution = attribution
        self._ttl = ttl_seconds
        self._wait = wait_seconds
        self._now = now
        self._sleep = sleep
        self._monotonic = monotonic

    def preview(self, account: Account) -> CostPreview:
        """The account's current-month preview; ``CostPreviewUnavailable`` if none can be had now."""
        today = self._now().astimezone(UTC).date()
        period = Period.containing(today)
        cached = self._cached_costs(period, today)
        report = cached.report
        if account.cost_scope is not None and not report.attribution.splits:
            raise CostPreviewUnavailable("account has a cost scope but costs are attributed by service only")
        if account.cost_scope is None and report.attribution.splits:
            # Without a scope the account would see every customer's costs, as the run would bill them.
            raise CostPreviewUnavailable(f"account has no cost scope but costs are attributed by {report.attribution}")
        lines = report.for_scope(account.cost_scope)
        try:
            current = self._plan(period, report, lines, account)
            forecast_lines = self._forecast_lines(cached, lines, account)
            forecast = self._plan(period, report, forecast_lines, account)
        except BillingDomainError as error:  # e.g. no FX rate configured for Cost Explorer's USD
            raise CostPreviewUnavailable(f"costs cannot be priced: {type(error).__name__}") from error
        return CostPreview(
            period=period,
            as_of=cached.as_of,
            current=current,
            forecast=forecast,
            forecast_method=cached.forecast_method,
            estimated=report.estimated,
        )

    def cache_key(self, period: Period) -> str:
        """Where the month's report is cached in the ``events`` table."""
        return f"preview#{self._attribution.key}#{period.label}"

    # --- cache ------------------------------------------------------------------------------------

    def _cached_costs(self, period: Period, today: date) -> CostSnapshot:
        key = self.cache_key(period)
        if self._cache is None or self._leases is None:
            return self._fetch(period, today)
        record = self._read(key)
        if record is not None:
            return record
        owner = uuid.uuid4().hex
        if self._leases.acquire_lease(key, owner, FILL_LEASE_SECONDS):
            try:
                record = self._read(key)  # filled between our read and our lease
                if record is None:
                    record = self._fetch(period, today)
                    self._cache.put(key, record, ttl_seconds=self._ttl)
                return record
            finally:
                self._leases.release_lease(key, owner)
        deadline = self._monotonic() + self._wait
        while self._monotonic() < deadline:
            self._sleep(POLL_INTERVAL_SECONDS)
            record = self._read(key)
            if record is not None:
                return record
        raise CostPreviewUnavailable("another request is fetching the costs; try again shortly")

    def _read(self, key: str) -> CostSnapshot | None:
        return self._cache.get(key) if self._cache else None

    def _fetch(self, period: Period, today: date) -> CostSnapshot:
        start, end = month_to_date(today)
        as_of = self._now().astimezone(UTC)
        try:
            report = self._costs.costs(start, end, self._attribution)
        except BillingError as error:
            raise CostPreviewUnavailable(f"Cost Explorer failed: {type(error).__name__}") from error
        total = sum((line.amount for line in report.lines), Decimal(0))
        remaining = self._costs.forecast(end, period.end) if end < period.end else Decimal(0)
        if remaining is not None:
            forecast_total, method = total + remaining, FORECAST_COST_EXPLORER
        else:
            forecast_total = linear_projection(total, (end - start).days, period.days)
            method = FORECAST_LINEAR
        log.info(
            "cost preview fetched from Cost Explorer",
            extra={"period": period.label, "groupBy": self._attribution.key, "forecastMethod": method},
        )
        return CostSnapshot(report=report, as_of=as_of, forecast_total=forecast_total, forecast_method=method)

    # --- pricing ----------------------------------------------------------------------------------

    def _forecast_lines(
        self, cached: CostSnapshot, lines: tuple[CostLine, ...], account: Account
    ) -> tuple[CostLine, ...]:
        # The forecast is one total for the whole report; a scoped account's share of it is its
        # share of the month so far.
        if account.cost_scope is None:
            share = Decimal(1)
        else:
            report_total = sum((line.amount for line in cached.report.lines), Decimal(0))
            account_total = sum((line.amount for line in lines), Decimal(0))
            share = account_total / report_total if report_total else Decimal(0)
        return (CostLine(service=_FORECAST_SERVICE, amount=cached.forecast_total * share),)

    def _plan(self, period: Period, report: CostReport, lines: tuple[CostLine, ...], account: Account) -> InvoicePlan:
        # ``lines`` are already the account's; planning sees them as the whole month of an unscoped
        # account (it checks that the report covers the billed month and matches the scope).
        month = CostReport(
            start=period.start,
            end=period.end,
            currency=report.currency,
            estimated=report.estimated,
            lines=tuple(CostLine(line.service, line.amount) for line in lines),
        )
        unscoped = Account(account.account_id, base_fee_override=account.base_fee_override)
        return plan_invoice(period, month, unscoped, self._policy_for(period, report.currency))

    def _policy_for(self, period: Period, cost_currency: str) -> BillingPolicy:
        """The policy with the newest stored period rate, the one every process reads."""
        if self._rates is None:
            return self._policy
        try:
            return self._rates.policy_for(self._policy, period, cost_currency, preview=True)
        except (RateNotPublished, ExchangeRateUnavailable) as missing:
            raise CostPreviewUnavailable(f"no exchange rate to convert the preview: {missing}") from None
