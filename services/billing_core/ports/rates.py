"""The exchange-rate ports: the reference-rate feed, and the rate each period was (or will be) billed at."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing_core.domain.costs import Period
from billing_core.domain.fx import NewestRate, PeriodRate


@dataclass(frozen=True)
class PublishedRates:
    """A feed's rates of one currency: day -> ``1 EUR = rate`` units, and which feed said so."""

    rates: Mapping[date, Decimal]
    feed: str


class ReferenceRateFeed(abc.ABC):
    """The ECB's euro reference rates (``ExchangeRateUnavailable`` when the feed cannot be read)."""

    @abc.abstractmethod
    def published(self, *, since: date, currency: str) -> PublishedRates:
        """Every published rate of ``currency``, from a feed that reaches back to ``since`` if one does."""


class PeriodRates(abc.ABC):
    """The rate each period is billed at, stored once: every process reads the same one."""

    @abc.abstractmethod
    def get(self, period: Period) -> PeriodRate | None:
        """The period's stored rate, or ``None`` if none is stored yet."""

    @abc.abstractmethod
    def put_if_absent(self, rate: PeriodRate) -> PeriodRate:
        """Store ``rate`` unless the period has one; returns the one stored (the first writer's)."""

    @abc.abstractmethod
    def newest(self) -> NewestRate | None:
        """The newest published rate last read from the feed, or ``None`` if it was never read."""

    @abc.abstractmethod
    def keep_newest(self, rate: NewestRate) -> None:
        """Keep ``rate`` as the newest published one, unless a later reading is kept already."""
