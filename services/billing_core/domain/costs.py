"""AWS costs as the billing domain sees them: a period, how costs are attributed, and the cost lines.

The words are the billing's own, whatever source the costs come from: a cost source maps its terms
(a query's grouping, its kinds of charges) onto ``CostAttribution`` and ``ChargeCategory``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

_PERIOD_LABEL = re.compile(r"^(\d{4})-(\d{2})$")
_TAG_PREFIX = "tag:"


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


class AttributionKind(StrEnum):
    """What a cost line's ``scope`` names, which tells whose costs it is."""

    PAYER = "payer"  # nothing: the whole payer account's costs, per service only
    ACCOUNT = "account"  # an AWS (linked) account's 12-digit id
    TAG = "tag"  # a value of one cost-allocation tag ("" for the costs without the tag)


@dataclass(frozen=True)
class CostAttribution:
    """How costs are attributed to customers: per service always, and per scope unless ``PAYER``.

    ``payer()`` cannot tell customers apart (one account at most may be billed from it);
    ``by_account()`` and ``by_tag(key)`` give each line the scope an account's ``cost_scope`` claims.
    """

    kind: AttributionKind = AttributionKind.PAYER
    tag_key: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is AttributionKind.TAG) != bool(self.tag_key):
            raise ValueError("a tag attribution needs its tag key, and no other attribution has one")

    @classmethod
    def payer(cls) -> CostAttribution:
        return cls(AttributionKind.PAYER)

    @classmethod
    def by_account(cls) -> CostAttribution:
        return cls(AttributionKind.ACCOUNT)

    @classmethod
    def by_tag(cls, key: str) -> CostAttribution:
        return cls(AttributionKind.TAG, key)

    @property
    def splits(self) -> bool:
        """Whether each line carries a scope, so the costs can be split between accounts."""
        return self.kind is not AttributionKind.PAYER

    @property
    def key(self) -> str:
        """A stable text form (cache keys, stored reports): ``payer``, ``account`` or ``tag:<key>``."""
        return f"{_TAG_PREFIX}{self.tag_key}" if self.kind is AttributionKind.TAG else self.kind.value

    @classmethod
    def from_key(cls, text: str) -> CostAttribution:
        """The attribution whose ``key`` is ``text``; anything else is a ``ValueError``."""
        if text.startswith(_TAG_PREFIX):
            return cls.by_tag(text[len(_TAG_PREFIX) :])
        if text in (AttributionKind.PAYER.value, AttributionKind.ACCOUNT.value):
            return cls(AttributionKind(text))
        raise ValueError(f"not a cost attribution: {text!r}")

    def __str__(self) -> str:
        if self.kind is AttributionKind.TAG:
            return f"tag {self.tag_key}"
        return "linked account" if self.kind is AttributionKind.ACCOUNT else "service only (the whole payer account)"


PAYER = CostAttribution.payer()  # the default: costs per service only


class ChargeCategory(StrEnum):
    """What a charge is, in the billing's words; a cost source maps its own kinds of charges onto these."""

    USAGE = "usage"  # resources used, on demand or covered by a reservation or Savings Plan
    TAX = "tax"  # tax AWS charges the payer (input tax the operator reclaims)
    CREDIT = "credit"
    REFUND = "refund"
    SUPPORT = "support"  # AWS Support plans
    FEE = "fee"  # purchases and fees: reservations, Savings Plans, one-time fees
    DISCOUNT = "discount"  # negotiated, bundled or commitment discounts
    OTHER = "other"  # a kind the billing has no word for (its source's name tells it apart)


@dataclass(frozen=True, order=True)
class ChargeType:
    """One kind of charge: its category and the name its cost source gives it (as reports show it).

    A category may hold several kinds (reservation fees and Savings Plan fees are both fees): the
    billing leaves out exactly the kinds it is told to, so a charge type is its category and its name.
    """

    category: ChargeCategory
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class CostLine:
    """One service's cost within one cost scope.

    ``scope`` is the linked account id or cost-allocation tag value the line belongs to, or ``None``
    when costs are attributed by service only (the whole payer account).
    """

    service: str
    amount: Decimal
    scope: str | None = None


@dataclass(frozen=True)
class CostReport:
    """What the cost source said about a time range, fetched once per billing run.

    Amounts are unrounded ``Decimal``s in ``currency`` (AWS bills in USD); rounding happens once, at
    the invoice line.
    """

    start: date
    end: date  # exclusive
    currency: str
    estimated: bool
    lines: tuple[CostLine, ...]
    attribution: CostAttribution = PAYER  # the lines' scopes: none, account ids or tag values

    def for_scope(self, scope: str | None) -> tuple[CostLine, ...]:
        """Lines of one scope; ``None`` means every line (the whole payer account)."""
        if scope is None:
            return self.lines
        return tuple(line for line in self.lines if line.scope == scope)


@dataclass(frozen=True)
class CostSnapshot:
    """A month-to-date cost report as the preview caches it: raw amounts of every scope and the forecast."""

    report: CostReport
    as_of: datetime  # when the cost source was asked (UTC)
    forecast_total: Decimal  # raw (cost currency) AWS total to the month's end
    forecast_method: str  # "cost_explorer" or "linear"


def sorted_lines(lines: Iterable[CostLine]) -> tuple[CostLine, ...]:
    """Cost lines ordered by scope, then service (the same order for the same answer)."""
    return tuple(sorted(lines, key=lambda line: (line.scope or "", line.service)))


def summed_lines(totals: Mapping[tuple[str | None, str], Decimal]) -> tuple[CostLine, ...]:
    """One line per (scope, service) total, ordered by scope, then service."""
    return sorted_lines(
        CostLine(service=service, amount=amount, scope=scope) for (scope, service), amount in totals.items()
    )


def currencies_of(months: Iterable[CostReport]) -> set[str]:
    """The currencies of the monthly reports that have lines (a source must answer in one)."""
    return {report.currency for report in months if report.lines}


def merged_months(months: Sequence[CostReport], start: date, end: date, attribution: CostAttribution) -> CostReport:
    """One report for ``start``..``end`` from a source's monthly reports (in one currency): per (scope, service)
    summed."""
    currencies = currencies_of(months)
    totals: dict[tuple[str | None, str], Decimal] = {}
    for report in months:
        for line in report.lines:
            totals[(line.scope, line.service)] = totals.get((line.scope, line.service), Decimal(0)) + line.amount
    return CostReport(
        start=start,
        end=end,
        currency=currencies.pop() if currencies else "USD",
        estimated=any(report.estimated for report in months),
        lines=summed_lines(totals),
        attribution=attribution,
    )


@dataclass(frozen=True)
class InvoicedCost:
    """A part of one AWS invoice, as a source with invoice ids (the FOCUS export) tells it.

    ``billed`` is what the AWS invoice charges (BilledCost); ``cost`` is what the billing passes on
    for it (the configured cost column, e.g. amortized). ``earlier`` marks a correction of a month
    before the invoice's billing period, which the true-up bills against that month.
    """

    invoice_id: str  # "" while AWS has not invoiced the line yet
    scope: str | None
    service: str
    charge_type: ChargeType
    billed: Decimal
    cost: Decimal
    earlier: bool = False
