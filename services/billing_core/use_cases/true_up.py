"""The true-up of a run: earlier months' final costs against what each account was billed for them.

The run asks Cost Explorer once for the new month and the ``CORRECTION_MONTHS`` before it (one
MONTHLY query plus pages, whatever the number of accounts or months). For each account it reads its
earlier invoices (one query of the billing table per account) and adds, through
``domain.corrections``, one correction line per earlier month whose final AWS line differs by a cent
or more from what was billed for it, and the credit the previous invoice carried on. Where Stripe Tax
computes the invoice's VAT, a downward correction is settled by a credit note on the corrected
month's invoice instead (``use_cases.true_up_credits``); it is still counted here, with its invoice.

Exactly once: what was billed for a month so far is its AWS line plus the corrections of it that
later invoices carry; those are claimed with their invoice (``create_if_absent``), so a rerun or a
crash never counts one twice. A cancelled invoice (credited in full) counts for nothing; the month's
reissue, if any, stands in its place. But a correction settled by a credit note counts whatever
becomes of the invoice that carried it: the credit note is on the corrected invoice and stands.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

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
    before = [record for record in account_invoices(invoices, account_id) if record.period < period]
    earlier = [record for record in before if record.status is not InvoiceStatus.VOID and not record.cancelled]
    by_credit_note = _settled_by_credit_notes(before)
    billed = []
    for record in earlier:
        if record.period < window_start:
            continue
        corrected = sum(
            (
                c.amount
                for later in earlier
                if later.period > record.period
                for c in later.true_up.line_corrections
                if c.period == record.period
            ),
            ZERO,
        ) + sum(
            (
                amount
                for (carrier, corrected_month), amount in by_credit_note.items()
                if corrected_month == record.period and carrier > record.period
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


def _settled_by_credit_notes(records: Sequence[Invoice]) -> dict[tuple[Period, Period], Decimal]:
    """Per (month of the carrying invoice, corrected month), the correction a credit note settles.

    Such a correction stands whatever becomes of the invoice that carried it: its credit note is on the
    corrected invoice, so voiding or cancelling the carrier does not take it back. A reissue carries
    its cancelled invoice's corrections again, settled by the same credit notes: counted once per month.
    """
    settled: dict[tuple[Period, Period], Decimal] = {}
    for record in sorted(records, key=lambda r: (r.period, r.created_at, r.invoice_id)):
        for correction in record.true_up.credit_note_corrections:
            settled.setdefault((record.period, correction.period), correction.amount)
    return settled


def trued_up(
    plans: Sequence[InvoicePlan],
    invoices: InvoiceRepository,
    months: MonthsOfCosts,
    months_back: int,
    language: str,
    *,
    by_credit_note: Collection[str] = frozenset(),
) -> list[InvoicePlan]:
    """Each plan with its account's corrections and carried credit; the downward corrections of the
    accounts in ``by_credit_note`` (whose VAT Stripe Tax computes) are settled by credit notes."""
    return [
        with_history(
            plan,
            history_of(invoices, plan.account_id, plan.period, months_back),
            months.final_lines(plan.cost_scope),
            language,
            by_credit_note=plan.account_id in by_credit_note,
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
