"""Correction lines (true-up): what an earlier month finally cost against what was billed for it.

AWS's numbers for a month keep moving after it was billed (late usage, refunds, credits, Support
fees). Each run asks Cost Explorer for the new month and the last ``CORRECTION_MONTHS`` months in one
query; for every earlier month the account was billed for, the correction is

    final AWS line  = cents(max(convert(final raw costs of the month), 0))   at that month's rate
    correction      = final AWS line - (the month's AWS line + every correction of it so far)

so a rate change never creates a correction, each correction is counted once (the corrections so far
are read from the later invoices that carry them), and over any sequence of revisions the AWS lines
and corrections of a month sum to exactly its final AWS line. A month missing from Cost Explorer's
answer is not corrected (missing is not zero).

An invoice never charges below zero: if corrections and credit take the total under 0.00, it is
clamped at 0.00 and the rest is carried, as a credit, to the account's next invoice.

Under Stripe Tax (``TAX_MODE=stripe-tax``) an invoice cannot carry a negative line. There a downward
correction is not a line: it stays in the invoice's true-up (so it is counted once, with its invoice)
marked ``by_credit_note``, and the invoice job settles it by a credit note (Rechnungskorrektur) on the
corrected month's invoice, which reduces that supply's taxable amount (§ 17 UStG). Such an invoice
never goes below zero, so it never carries a credit on either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import TYPE_CHECKING

from billing_core.domain.costs import CostLine, Period
from billing_core.domain.fx import FxRate
from billing_core.domain.money import ZERO, to_cents

if TYPE_CHECKING:  # pragma: no cover - the plan imports this module
    from billing_core.domain.invoice_plan import InvoicePlan

_UNROUNDED = Context(prec=60)
_HUNDRED = Decimal(100)
_MONTHS = {
    "de": ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}
_CORRECTION_TEXT = {
    "de": "Korrektur AWS Infrastruktur ({month} {year})",
    "en": "AWS infrastructure correction ({month} {year})",
}
CREDIT_TEXT = {"de": "Guthaben aus der Rechnung {period}", "en": "Credit from the invoice of {period}"}
CARRIED_TEXT = {"de": "Übertrag auf die nächste Rechnung", "en": "Carried to the next invoice"}


@dataclass(frozen=True)
class Correction:
    """One correction of an earlier month: the month, the amount (may be negative) and its text.

    ``by_credit_note``: not a line of the invoice; a credit note on the corrected month's invoice takes
    the amount back (a downward correction under Stripe Tax).
    """

    period: Period
    amount: Decimal  # invoice currency, whole cents
    description: str
    by_credit_note: bool = False


@dataclass(frozen=True)
class TrueUp:
    """What an invoice settles besides its own month: corrections of earlier months, the credit carried in
    from the account's previous invoice, and what it carries on to the next one (its total never below 0.00)."""

    corrections: tuple[Correction, ...] = ()
    credit_in: Decimal = ZERO  # a positive amount, deducted
    credit_from: str | None = None  # the invoice id the credit was carried from
    credit_description: str | None = None
    carried_out: Decimal = ZERO  # a positive amount, carried to the next invoice
    carried_description: str | None = None

    @property
    def line_corrections(self) -> tuple[Correction, ...]:
        """The corrections that are lines of the invoice."""
        return tuple(c for c in self.corrections if not c.by_credit_note)

    @property
    def credit_note_corrections(self) -> tuple[Correction, ...]:
        """The corrections settled by a credit note on the corrected month's invoice (no line here)."""
        return tuple(c for c in self.corrections if c.by_credit_note)

    @property
    def corrections_total(self) -> Decimal:
        """The sum of the correction lines (may be negative); corrections settled by credit note are not lines."""
        return sum((c.amount for c in self.line_corrections), ZERO)


NO_TRUE_UP = TrueUp()


@dataclass(frozen=True)
class BilledMonth:
    """What an account was billed for an earlier month so far, and how its costs were converted."""

    period: Period
    invoice_id: str
    aws_billed: Decimal  # the month's AWS line plus every correction of it so far
    fx: FxRate | None  # the rate the month was billed at (None: costs in the invoice currency)
    markup_percent: Decimal


def final_aws_line(lines: Sequence[CostLine], fx: FxRate | None, markup_percent: Decimal) -> Decimal:
    """A month's AWS line from its raw costs, converted as the month was: summed, converted once, clamped, rounded."""
    with localcontext(_UNROUNDED):
        raw = sum((line.amount for line in lines), ZERO)
        marked_up = raw * (1 + markup_percent / _HUNDRED)
        converted = fx.convert(marked_up) if fx else marked_up
        return to_cents(max(converted, ZERO))


def correction_for(billed: BilledMonth, final_lines: Sequence[CostLine], language: str) -> Correction | None:
    """The correction of ``billed`` given the month's final raw costs, or ``None`` if it is right to the cent."""
    delta = final_aws_line(final_lines, billed.fx, billed.markup_percent) - billed.aws_billed
    if delta.is_zero():
        return None
    month = _MONTHS[language][billed.period.month - 1]
    text = _CORRECTION_TEXT[language].format(month=month, year=billed.period.year)
    return Correction(billed.period, delta, text)


def month_text(period: Period, language: str) -> str:
    """The month as correction texts name it: "Okt 2026" / "Oct 2026"."""
    return f"{_MONTHS[language][period.month - 1]} {period.year}"


def settle(total_before: Decimal) -> tuple[Decimal, Decimal]:
    """The total charged and the credit carried to the next invoice: never below 0.00, nothing lost."""
    if total_before < 0:
        return ZERO, -total_before
    return total_before, ZERO


@dataclass(frozen=True)
class AccountHistory:
    """What the account's earlier invoices say: each month billed in the window, and the credit to carry in."""

    billed: tuple[BilledMonth, ...] = ()
    credit_in: Decimal = ZERO
    credit_from: str | None = None  # the invoice id the credit comes from


def with_history(
    plan: InvoicePlan,
    history: AccountHistory,
    final_months: Mapping[Period, Sequence[CostLine]],
    language: str,
    *,
    by_credit_note: bool = False,
) -> InvoicePlan:
    """``plan`` with the corrections of earlier months and the carried credit, its total settled at >= 0.00.

    ``by_credit_note`` (Stripe Tax): the downward corrections are settled by credit notes, not lines.
    """
    corrections = tuple(
        correction
        for billed in sorted(history.billed, key=lambda month: month.period)
        if billed.period in final_months
        and (correction := correction_for(billed, final_months[billed.period], language)) is not None
    )
    if not corrections and not history.credit_in:
        return plan
    # inv_<YYYY-MM>[r<n>]_<account>: the month the credit comes from, whichever revision carried it
    credit_period = history.credit_from.split("_")[1][:7] if history.credit_from else ""
    true_up = TrueUp(
        corrections=corrections,
        credit_in=history.credit_in,
        credit_from=history.credit_from,
        credit_description=CREDIT_TEXT[language].format(period=credit_period) if history.credit_in else None,
    )
    if by_credit_note:
        true_up = dataclasses.replace(true_up, corrections=_by_credit_note(corrections))
    return _settled(dataclasses.replace(plan, true_up=true_up), CARRIED_TEXT[language])


def with_credit_notes_for_downward_corrections(plan: InvoicePlan) -> InvoicePlan:
    """``plan`` with each downward correction settled by a credit note instead of a line, its total
    settled again (the same plan if it has none); repeating it changes nothing."""
    true_up = plan.true_up
    if not any(c.amount < 0 and not c.by_credit_note for c in true_up.corrections):
        return plan
    marked = dataclasses.replace(true_up, corrections=_by_credit_note(true_up.corrections))
    # Marking only raises the total: a credit carried on was carried before, with its text.
    return _settled(dataclasses.replace(plan, true_up=marked), true_up.carried_description or "")


def _by_credit_note(corrections: Sequence[Correction]) -> tuple[Correction, ...]:
    return tuple(dataclasses.replace(c, by_credit_note=True) if c.amount < 0 else c for c in corrections)


def _settled(plan: InvoicePlan, carried_description: str) -> InvoicePlan:
    """``plan`` with its total and carried credit from its lines: never below 0.00, the rest carried on."""
    true_up = plan.true_up
    total, carried = settle(plan.base_fee + plan.aws_costs + true_up.corrections_total - true_up.credit_in)
    true_up = dataclasses.replace(
        true_up, carried_out=carried, carried_description=carried_description if carried else None
    )
    return dataclasses.replace(plan, true_up=true_up, total=total)
