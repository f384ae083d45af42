"""AWS costs as the billing domain sees them: a period and its cost lines."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

_PERIOD_LABEL = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month in UTC: ``start`` inclusive, ``end`` exclusive (Cost Explorer's convention)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 2000 <= self.year <= 9999:
            raise ValueError(f"not a billing period: {self.year}-{self.month}")

    @classmethod
    def parse(cls, label: str) -> Period:
        """Parse ``YYYY-MM``; anything else is a ``ValueError``."""
        match = _PERIOD_LABEL.match(label or "")
        if not match:
            raise ValueError(f"period must look like YYYY-MM, got {label!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, moment: datetime | date) -> Period:
        """The month that contains ``moment`` (naive datetimes are taken as UTC)."""
        if isinstance(moment, datetime) and moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    @classmethod
    def previous(cls, now: datetime | date) -> Period:
        """The calendar month before the one containing ``now`` (the default billing period)."""
        current = cls.containing(now)
        return current.shifted(-1)

    def shifted(self, months: int) -> Period:
        index = self.year * 12 + (self.month - 1) + months
        return Period(index // 12, index % 12 + 1)

    def has_ended(self, now: datetime) -> bool:
        """Whether the month is over in UTC at ``now`` (naive datetimes are taken as UTC)."""
        if now.tzinfo is not None:
            now = now.astimezone(UTC)
        return now.date() >= self.end

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """The first day of the next month (exclusive end)."""
        return self.shifted(1).start

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class CostLine:
    """One service's cost within one cost scope.

    ``scope`` is the linked account id or cost-allocation tag value the line belongs to, or ``None``
    when costs are grouped by service only (the whole payer account).
    """

    service: str
    amount: Decimal
    scope: str | None = None


@dataclass(frozen=True)
class CostReport:
    """What Cost Explorer said about a time range, fetched once per billing run.

    Amounts are unrounded ``Decimal``s in ``currency`` (Cost Explorer answers in USD); rounding
    happens once, at the invoice line.
    """

    start: date
    end: date  # exclusive
    currency: str
    estimated: bool
    lines: tuple[CostLine, ...]
    grouped_by: str = "SERVICE"  # SERVICE, LINKED_ACCOUNT or TAG:<key>, always with SERVICE

    def for_scope(self, scope: str | None) -> tuple[CostLine, ...]:
        """Lines of one scope; ``None`` means every line (the whole payer account)."""
        if scope is None:
            return self.lines
        return tuple(line for line in self.lines if line.scope == scope)


@dataclass(frozen=True)
class CostSnapshot:
    """A month-to-date cost report as the preview caches it: raw amounts of every scope and the forecast."""

    report: CostReport
    as_of: datetime  # when Cost Explorer was asked (UTC)
    forecast_total: Decimal  # raw (cost currency) AWS total to the month's end
    forecast_method: str  # "cost_explorer" or "linear"
