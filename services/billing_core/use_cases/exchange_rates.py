"""The rate a period is billed at: fixed once from the ECB feed (or the operator's manual rate), then stored.

Every process (the run, the CLI, the API's preview) reads the stored rate, so no two can bill one
period at different rates, and a rerun bills at the rate the first run stored:

    run A: no rate stored for 2026-11 -> feed -> 1.0497 (2026-11-30) -> put_if_absent -> stored
    run B: no rate stored for 2026-11 -> feed -> 1.0497               -> put_if_absent -> A's, same

A rate that is not published yet (the period's last working day is still to come) or a feed that
cannot be read stops the run with a clear error: a rate is never guessed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from billing_core.domain.costs import Period
from billing_core.domain.fx import (
    ECB_SOURCE,
    FxQuote,
    FxRate,
    FxRule,
    NewestRate,
    PeriodRate,
    period_rate,
)
from billing_core.domain.invoice_plan import BillingPolicy
from billing_core.domain.money import normalize_currency
from billing_core.errors import ExchangeRateUnavailable
from billing_core.ports.rates import PeriodRates, ReferenceRateFeed

log = logging.getLogger(__name__)

# The ECB publishes once a working day (about 16:00 CET): a preview's reading of the newest rate is
# kept for every process and renewed after this long, so page views do not each read the feed.
NEWEST_RATE_MAX_AGE_SECONDS = 6 * 3600


class ExchangeRates:
    """The USD->invoice-currency rate of each billed period."""

    def __init__(
        self,
        stored: PeriodRates,
        feed: ReferenceRateFeed | None,
        *,
        rule: FxRule = FxRule.LAST_WORKING_DAY,
        manual: FxRate | None = None,
        currency: str = "USD",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stored = stored
        self._feed = feed
        self._rule = rule
        self._manual = manual
        self._currency = currency
        self._clock = clock

    def for_period(self, period: Period) -> FxRate:
        """The period's rate: the stored one, else the manual override, else the ECB's, stored first.

        Raises ``RateNotPublished`` or ``ExchangeRateUnavailable`` instead of guessing.
        """
        stored = self._stored.get(period)
        if stored is not None:
            return stored.fx
        if self._manual is not None:
            chosen = PeriodRate(period, self._manual)
        else:
            chosen = self._from_feed(period)
        kept = self._stored.put_if_absent(chosen)
        log.info(
            "exchange rate fixed for the period",
            extra={
                "period": period.label,
                "rate": str(kept.fx.rate),
                "rateDate": kept.fx.as_of.isoformat(),
                "source": kept.fx.source,
                "feed": kept.feed,
            },
        )
        return kept.fx

    def for_preview(self, month: Period) -> FxRate:
        """The rate a month-to-date preview converts at: the newest one known.

        That is the newest day's ECB rate, or a rate stored for one of the two months before if it
        is dated later (a manual one). With a manual override (``FX_RATE``) the feed is not read.
        Raises ``ExchangeRateUnavailable`` when no rate is known at all.
        """
        recent = [
            stored.fx
            for earlier in (month.shifted(-1), month.shifted(-2))
            if (stored := self._stored.get(earlier)) is not None
        ]
        if self._manual is not None:
            return recent[0] if recent else self._manual
        newest = self._newest_published()
        candidates = recent + ([newest.fx] if newest is not None else [])
        if not candidates:
            raise ExchangeRateUnavailable(f"no exchange rate is known for a preview of {month.label} yet")
        return max(candidates, key=lambda fx: fx.as_of)

    def _newest_published(self) -> NewestRate | None:
        """The newest day's rate in the feed: the kept reading while it is recent, else read and kept."""
        kept = self._stored.newest()
        now = int(self._clock())
        if self._feed is None or (kept is not None and now - kept.read_at < NEWEST_RATE_MAX_AGE_SECONDS):
            return kept
        today = datetime.fromtimestamp(now, UTC).date()
        try:
            published = self._feed.published(since=today - timedelta(days=7), currency=self._currency)
        except ExchangeRateUnavailable as error:
            log.warning(
                "the ECB feed could not be read for the preview; it uses the last reading", extra={"reason": str(error)}
            )
            return kept
        if not published.rates:
            return kept
        day = max(published.rates)
        reading = NewestRate(
            FxRate(published.rates[day], ECB_SOURCE, day, FxQuote.COST_PER_INVOICE_UNIT), published.feed, now
        )
        self._stored.keep_newest(reading)
        return reading

    def policy_for(
        self, policy: BillingPolicy, period: Period, cost_currency: str, *, preview: bool = False
    ) -> BillingPolicy:
        """``policy`` with the rate that converts ``period``'s costs (unchanged if no conversion is needed).

        Raises ``RateNotPublished`` or ``ExchangeRateUnavailable``.
        """
        if normalize_currency(cost_currency) == policy.currency:
            return policy
        fx = self.for_preview(period) if preview else self.for_period(period)
        return dataclasses.replace(policy, fx=fx)

    def _from_feed(self, period: Period) -> PeriodRate:
        if self._feed is None:
            raise ExchangeRateUnavailable("no ECB feed configured and no manual rate (FX_RATE)")
        # A week before the period reaches a working day before it even across holidays.
        published = self._feed.published(since=period.start - timedelta(days=7), currency=self._currency)
        reference = period_rate(published.rates, period, self._rule, currency=self._currency)
        fx = FxRate(reference.per_euro, ECB_SOURCE, reference.rate_date, FxQuote.COST_PER_INVOICE_UNIT)
        return PeriodRate(period, fx, feed=published.feed, rule=self._rule)
