"""The true-up of a run: earlier months' final costs against what each account was billed for them.

The run asks Cost Explorer once for the new month and the ``CORRECTION_MONTHS`` before it (one
MONTHLY query plus pages, whatever the number of accounts or months). For each account it reads its
earlier invoices (one query of the billing table per account) and adds, through
``domain.corrections``, one correction line per earlier month whose final AWS line differs by a cent
or more from what was billed for it, and the credit the previous invoice carried on.

Exactly once: what was billed for a month so far is its AWS line plus the corrections of it that
later invoices carry; those are claimed with their invoice (``create_if_absent``), so a rerun or a
crash never counts one twice. A cancelled invoice (credited in full) counts for nothing; the month's
reissue, if any, stands in its place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from billing_core.domain.corrections import AccountHistory, BilledMonth, with_history
from billing_core.domain.costs import CostAttribution, CostLine, CostReport, Period
from billing_core.domain.invoice_plan import InvoicePlan
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.money import ZERO
from billing_core.domain.records import Invoice
from billing_core.ports import CostSource, InvoiceRepository

_PAGE = 50


@dataclass(frozen=True)
class MonthsOfCosts:
    """The one query's answer: the billed month's report, and the earlier months' lines by scope."""

    billed: CostReport
    earlier: Mapping[Period, Mapping[str | None, tuple[CostLine, ...]]] = field(default_factory=dict)

    def final_lines(self, scope: str | None) -> dict[Period, tuple[CostLine, ...]]:
        """Each earlier month's lines of ``scope`` (``None``: the whole payer account)."""
        return {
            period: (
                tuple(line for lines in by_scope.values() for line in lines)
                if scope is None
                else by_scope.get(scope, ())
            )
            for period, by_scope in self.earlier.items()
        }


def fetch_months(costs: CostSource, period: Period, months_back: int, attribution: CostAttribution) -> MonthsOfCosts:
    """The billed month and the ``months_back`` before it, in one MONTHLY query."""
    first = period.shifted(-months_back)
    reports = {
        Period.containing(report.start): report for report in costs.costs_by_month(first.start, period.end, attribution)
    }
    billed = reports.get(period) or CostReport(period.start, period.end, "USD", False, (), attribution=attribution)
    earlier: dict[Period, dict[str | None, tuple[CostLine, ...]]] = {}
    for month, report in reports.items():
        if month >= period:
            continue
        by_scope: dict[str | None, list[CostLine]] = {}
        for line in report.lines:
            by_scope.setdefault(line.scope, []).append(line)
        earlier[month] = {scope: tuple(lines) for scope, lines in by_scope.items()}
    return MonthsOfCosts(billed, earlier)


def history_of(invoices: InvoiceRepository, account_id: str, period: Period, months_back: int) -> AccountHistory:
    """What the account's invoices before ``period`` billed for the window, and the credit they carry on."""
    window_start = period.shifted(-months_back)
    # A void or cancelled invoice bills nothing: its month stands as its reissue bills it (if any), and
    # the corrections it carried were taken back with it.
    earlier = [
        record
        for record in account_invoices(invoices, account_id)
        if record.period < period and record.status is not InvoiceStatus.VOID and not record.cancelled
    ]
    billed = []
    for record in earlier:
        if record.period < window_start:
            continue
        corrected = sum(
            (
                c.amount
                for later in earlier
                if later.period > record.period
                for c in later.true_up.corrections
                if c.period == record.period
            ),
            ZERO,
        )
        billed.append(
            BilledMonth(
                record.period, record.invoice_id, record.aws_costs + corrected, record.fx, record.markup_percent
            )
        )
    previous = max(earlier, key=lambda record: record.period, default=None)
    if previous is not None and previous.true_up.carried_out > 0:
        return AccountHistory(tuple(billed), previous.true_up.carried_out, previous.invoice_id)
    return AccountHistory(tuple(billed))


def trued_up(
    plans: Sequence[InvoicePlan], invoices: InvoiceRepository, months: MonthsOfCosts, months_back: int, language: str
) -> list[InvoicePlan]:
    """Each plan with its account's corrections and carried credit."""
    return [
        with_history(
            plan,
            history_of(invoices, plan.account_id, plan.period, months_back),
            months.final_lines(plan.cost_scope),
            language,
        )
        for plan in plans
    ]


def account_invoices(invoices: InvoiceRepository, account_id: str) -> Iterator[Invoice]:
    """Every invoice of the account, page by page."""
    cursor: str | None = None
    while True:
        page = invoices.list_for_account(account_id, limit=_PAGE, cursor=cursor)
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor
