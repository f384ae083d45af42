"""Exchange rates with a date and a source: which ECB reference rate converts a billed period's costs.

The ECB quotes every rate against the euro: ``1 EUR = rate USD``. So USD -> EUR divides by the rate.
It publishes one rate per TARGET working day, none on weekends and TARGET holidays (1 January, Good
Friday, Easter Monday, 1 May, 25 and 26 December). A period is converted at one rate, chosen by a rule:

- ``last-working-day``: the rate of the last day of the period the ECB published one for;
- ``month-average``: the mean of every rate the ECB published for days of the period.

Either way the rule needs the period to be over and its rates out: a rate is never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext
from enum import StrEnum

from billing_core.domain.costs import Period
from billing_core.domain.errors import BillingDomainError, ConfigurationError, InvalidAmount
from billing_core.domain.money import parse_amount

ECB_SOURCE = "ECB euro reference rate"
MANUAL_SOURCE = "manual"
# A month's average is kept to the ECB's own precision and two more digits.
_AVERAGE_PLACES = Decimal("0.000001")


class FxQuote(StrEnum):
    """Which way a rate is quoted, so a cost converts by the exact operation its quote implies."""

    INVOICE_PER_COST_UNIT = "invoice-per-cost-unit"  # 1 USD = rate EUR: costs multiply (FX_RATE)
    COST_PER_INVOICE_UNIT = "cost-per-invoice-unit"  # 1 EUR = rate USD, the ECB's quote: costs divide


class FxRule(StrEnum):
    """Which of the period's published rates converts it."""

    LAST_WORKING_DAY = "last-working-day"
    MONTH_AVERAGE = "month-average"


class RateNotPublished(BillingDomainError):
    """The rate a period needs is not (yet) in the feed: the run waits instead of guessing."""


@dataclass(frozen=True)
class FxRate:
    """A rate between the cost currency (Cost Explorer's USD) and the invoice currency, and its origin."""

    rate: Decimal  # as quoted by ``quote``: 0.92 (EUR per USD) or 1.0497 (USD per EUR, ECB)
    source: str  # e.g. "ECB euro reference rate", "manual"
    as_of: date
    quote: FxQuote = FxQuote.INVOICE_PER_COST_UNIT

    def __post_init__(self) -> None:
        try:
            rate = parse_amount(self.rate)
        except InvalidAmount as error:
            raise ConfigurationError(f"FX rate: {error}") from error
        if rate <= 0:
            raise ConfigurationError(f"FX rate must be greater than 0, got {rate}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ConfigurationError("FX rate needs a source (where the rate comes from)")
        if not isinstance(self.as_of, date):
            raise ConfigurationError(f"FX rate needs the date it applies to, got {self.as_of!r}")
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "quote", FxQuote(self.quote))

    def convert(self, cost: Decimal) -> Decimal:
        """``cost`` in the invoice currency, unrounded (call within the planning's 60-digit context)."""
        return cost / self.rate if self.quote is FxQuote.COST_PER_INVOICE_UNIT else cost * self.rate


@dataclass(frozen=True)
class Conversion:
    """How an invoice's costs came into its currency: the rate (dated, with its source) and how the invoice
    states it ("1 EUR = 1,0497 USD, EZB-Referenzkurs vom 25.02.2025")."""

    rate: FxRate
    note: str | None = None


@dataclass(frozen=True)
class PeriodRate:
    """The rate a period is billed at, as stored once for every process: the rate, its feed, its rule."""

    period: Period
    fx: FxRate
    feed: str | None = None  # the feed's URL; None for a manual rate
    rule: FxRule | None = None  # None for a manual rate


@dataclass(frozen=True)
class NewestRate:
    """The newest day's rate a feed had when it was read: what a month-to-date preview converts at."""

    fx: FxRate
    feed: str
    read_at: int  # epoch seconds of the reading


@dataclass(frozen=True)
class ReferenceRate:
    """One euro in ``currency`` as the ECB fixed it for ``rate_date`` (or the average up to that date)."""

    currency: str  # the quoted currency, e.g. "USD"
    per_euro: Decimal  # 1 EUR = per_euro units of ``currency``
    rate_date: date  # the day of the rate; for an average, the last day averaged
    rule: FxRule


def period_rate(
    published: Mapping[date, Decimal], period: Period, rule: FxRule, *, currency: str = "USD"
) -> ReferenceRate:
    """The rate that converts ``period`` under ``rule``, from the feed's ``published`` day -> rate.

    ``RateNotPublished`` if the feed does not reach the period's last day yet (the rate of a later
    day than the last published one may still come), or holds no day of the period at all.
    """
    days = sorted(day for day in published if period.start <= day < period.end)
    newest = max(published, default=None)
    # Complete once the feed reaches the period's last TARGET working day: no rate is published for
    # the weekend or holiday after it, so nothing later can still belong to the period.
    if newest is None or newest < last_target_working_day(period):
        raise RateNotPublished(
            f"the ECB {currency} rate for the end of {period.label} is not published yet "
            f"(the feed's newest day is {newest.isoformat() if newest else 'none'})"
        )
    if not days:
        raise RateNotPublished(f"the ECB feed holds no {currency} rate for any day of {period.label}")
    if rule is FxRule.LAST_WORKING_DAY:
        return ReferenceRate(currency, published[days[-1]], days[-1], rule)
    with localcontext() as context:
        context.prec = 40
        average = sum((published[day] for day in days), Decimal(0)) / len(days)
    return ReferenceRate(currency, average.quantize(_AVERAGE_PLACES), days[-1], rule)


def is_target_working_day(day: date) -> bool:
    """Whether TARGET2 is open on ``day``: the days the ECB publishes reference rates."""
    if day.weekday() >= 5:
        return False
    if (day.month, day.day) in ((1, 1), (5, 1), (12, 25), (12, 26)):
        return False
    easter = easter_sunday(day.year)
    return day not in (easter - timedelta(days=2), easter + timedelta(days=1))  # Good Friday, Easter Monday


def last_target_working_day(period: Period) -> date:
    """The period's last day with an ECB reference rate."""
    day = period.end - timedelta(days=1)
    while not is_target_working_day(day):
        day -= timedelta(days=1)
    return day


def easter_sunday(year: int) -> date:
    """Western (Gregorian) Easter Sunday of ``year`` (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)
