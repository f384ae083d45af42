"""Credit notes: how an issued invoice is corrected, to the cent, without ever touching the invoice itself.

A finalized invoice is never changed. It is corrected by a credit note that names it (§ 14 UStG,
§ 31 (5) UStDV; EN 16931 type 381 with the invoice in BG-3): a *cancellation* (Stornorechnung) takes
back the whole invoice, a *partial* credit note (Rechnungskorrektur) takes back amounts of its lines.

Amounts. A credit note credits net amounts of the invoice's lines; its VAT is that of the invoice,
in the invoice's proportions, as Stripe computes a credit note line's tax ("in proportion to the
refunded amount ... based on the original tax rate", docs.stripe.com/tax/invoicing/refunds): of each
line, the share of the tax the invoice charged on it that all its credit notes so far take of its net,
rounded half up, less what earlier credit notes took. So a line credited in full takes back exactly
its tax, and credit notes never take more tax than was charged. The credited VAT per category may
differ from EN 16931's ``taxable x rate`` by a cent per credited line, which BR-CO-17 allows (its
schematron accepts up to one currency unit). Never more is credited than is still creditable, per
line and in total (Stripe's own rule: the credit notes of an invoice never exceed its total).

Where the money goes (Stripe's split): an unpaid invoice's amount due is reduced (pre-payment); a
paid invoice's credit is refunded to the original payment method, put on the customer's balance
(the next invoice collects less) or recorded as settled outside Stripe (out of band).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict

from billing_core.domain.costs import Period
from billing_core.domain.errors import BillingDomainError
from billing_core.domain.invoice_plan import invoice_revision_of
from billing_core.domain.money import ZERO, is_whole_cents, to_cents
from billing_core.domain.records import CreditStatus, credit_status_of

MAX_REASON_LENGTH = 500


class CreditRefused(BillingDomainError):
    """The credit note asked for is not possible (nothing left to credit, an unknown line, a bad amount)."""


class CreditNoteState(StrEnum):
    """Where a credit note stands: claimed here, issued at Stripe, or voided there."""

    PENDING = "pending"  # claimed, Stripe not yet confirmed (a resumed command finishes it)
    ISSUED = "issued"
    VOID = "void"


_STATE_ORDER = {CreditNoteState.PENDING: 0, CreditNoteState.ISSUED: 1, CreditNoteState.VOID: 2}


def state_may_move(current: CreditNoteState, new: CreditNoteState) -> bool:
    """Forward only: pending -> issued -> void (a void credit note stays void)."""
    return _STATE_ORDER[new] > _STATE_ORDER[current]


class Settlement(StrEnum):
    """Where a credit note's money goes (Stripe's ``pre_payment_amount`` / ``refund_amount`` / ...)."""

    PRE_PAYMENT = "pre_payment"  # the invoice is unpaid: what is due is reduced
    REFUND = "refund"  # paid: back to the original payment method
    BALANCE = "balance"  # paid: a credit on the customer's balance, taken off the next invoice
    OUT_OF_BAND = "out_of_band"  # paid: settled outside Stripe (bank transfer, ...)


@dataclass(frozen=True)
class CreditableLine:
    """One line of an invoice as a credit note sees it: its net, the tax charged on it, its period."""

    kind: str  # the invoice line's ``metadata.line``: "base-fee", "aws", "correction:2026-09", ...
    description: str
    net: Decimal
    tax: Decimal
    period: Period  # the month the line is for (a correction's is the corrected month)


@dataclass(frozen=True)
class CreditLine:
    """One credited line of a credit note: which invoice line, the net and tax taken back."""

    kind: str
    description: str
    net: Decimal
    tax: Decimal
    period: Period


class _CreditedAmounts:
    """The totals of credited ``lines``: net, tax and gross, each the sum of the lines' own."""

    lines: tuple[CreditLine, ...]

    @property
    def net(self) -> Decimal:
        """The credited net."""
        return sum((line.net for line in self.lines), ZERO)

    @property
    def tax(self) -> Decimal:
        """The VAT taken back."""
        return sum((line.tax for line in self.lines), ZERO)

    @property
    def gross(self) -> Decimal:
        """What the customer is credited."""
        return self.net + self.tax


@dataclass(frozen=True)
class CreditVat:
    """The VAT treatment of the credited invoice, repeated on its credit notes."""

    category: str  # EN 16931: S, AE, O, E
    rate: Decimal  # percent
    note: str | None = None


@dataclass(frozen=True)
class CreditNote(_CreditedAmounts):
    """A credit note of one invoice: what it takes back, why, where the money goes, how far it got."""

    credit_note_id: str  # cn_<YYYY-MM>_<userId>_<n>: the n-th credit note of the invoice
    account_id: str
    invoice_id: str
    sequence: int
    currency: str
    lines: tuple[CreditLine, ...]
    vat: CreditVat
    reason: str
    settlement: Settlement
    full: bool  # a cancellation: the whole invoice is taken back
    actor: str
    created_at: int  # epoch ms
    updated_at: int
    state: CreditNoteState = CreditNoteState.PENDING
    stripe_credit_note_id: str | None = None
    number: str | None = None  # Stripe's credit note number (BT-1 of its e-invoice)
    issued_at: int | None = None  # epoch ms, when Stripe created it
    voided_at: int | None = None
    refunded_at: int | None = None  # when Stripe reported the refund done (charge.refunded)
    einvoice_xml: str | None = None
    einvoice_pdf: str | None = None
    einvoice_error: str | None = None
    # Issued by the true-up of invoice ``true_up_invoice_id`` for its downward correction of the month
    # ``true_up_period`` (Stripe Tax: no negative line); both None for the operator's own credit notes.
    true_up_invoice_id: str | None = None
    true_up_period: Period | None = None

    @property
    def counts(self) -> bool:
        """Whether it takes money back: issued and not voided (a pending one may still be issued)."""
        return self.state is CreditNoteState.ISSUED

    @property
    def from_true_up(self) -> bool:
        """Whether a true-up issued it (a correction of the month), not the operator (goodwill, errors)."""
        return self.true_up_invoice_id is not None

    def settles(self, invoice_id: str, period: Period) -> bool:
        """Whether it settles the correction of ``period`` that invoice ``invoice_id`` carries.

        Issued for any invoice of the same month: a reissue carries its cancelled invoice's
        corrections, which that invoice's credit notes settled already (they stand whatever becomes
        of the invoice that carried the correction)."""
        if self.true_up_invoice_id is None or self.true_up_period != period:
            return False
        return invoice_revision_of(self.true_up_invoice_id)[0] == invoice_revision_of(invoice_id)[0]


class CreditNoteChanges(TypedDict, total=False):
    """A partial update of a ``CreditNote`` (``None`` removes a field): how far it got, and its files."""

    state: CreditNoteState
    updated_at: int
    stripe_credit_note_id: str | None
    number: str | None
    issued_at: int | None
    voided_at: int | None
    refunded_at: int | None
    einvoice_xml: str | None
    einvoice_pdf: str | None
    einvoice_error: str | None


def credit_note_id_for(invoice_id: str, sequence: int) -> str:
    """``cn_<YYYY-MM>_<userId>_<n>`` of the invoice ``inv_<YYYY-MM>_<userId>``."""
    if sequence < 1:
        raise ValueError("a credit note's sequence starts at 1")
    return f"cn_{invoice_id.removeprefix('inv_')}_{sequence}"


@dataclass(frozen=True)
class CreditRequest:
    """What the operator asks: the whole invoice, or amounts (net) of named lines; why; where the money goes."""

    reason: str
    lines: Mapping[str, Decimal] = field(default_factory=dict)  # kind -> net to credit; empty: all
    full: bool = False
    settlement: Settlement | None = None  # None: pre-payment if unpaid, refund if paid

    def __post_init__(self) -> None:
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise CreditRefused("say why the invoice is credited (a reason is required)")
        if len(self.reason) > MAX_REASON_LENGTH:
            raise CreditRefused(f"the reason is at most {MAX_REASON_LENGTH} characters")
        if self.full == bool(self.lines):
            raise CreditRefused("credit either the whole invoice or named lines with amounts, not both or neither")
        for kind, amount in self.lines.items():
            if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
                raise CreditRefused(f"line {kind}: the amount to credit must be a positive amount, got {amount}")
            if not is_whole_cents(amount):
                raise CreditRefused(f"line {kind}: the amount to credit must be whole cents, got {amount}")


@dataclass(frozen=True)
class CreditPlan(_CreditedAmounts):
    """The lines and amounts of a credit note about to be issued."""

    lines: tuple[CreditLine, ...]
    full: bool
    settlement: Settlement


def credited_by_line(notes: Sequence[CreditNote]) -> dict[str, tuple[Decimal, Decimal]]:
    """Per invoice line, the (net, tax) the credit notes that are not void (issued or pending) take back."""
    taken: dict[str, tuple[Decimal, Decimal]] = {}
    for note in notes:
        if note.state is CreditNoteState.VOID:
            continue
        for line in note.lines:
            net, tax = taken.get(line.kind, (ZERO, ZERO))
            taken[line.kind] = (net + line.net, tax + line.tax)
    return taken


def remaining_lines(lines: Sequence[CreditableLine], notes: Sequence[CreditNote]) -> list[CreditableLine]:
    """The invoice's positive lines as far as they are still creditable (nothing is credited twice)."""
    taken = credited_by_line(notes)
    remaining = []
    for line in lines:
        if line.net <= 0:
            continue  # a credit carried in or a downward correction: nothing to take back
        net_taken, tax_taken = taken.get(line.kind, (ZERO, ZERO))
        if line.net - net_taken > 0:
            remaining.append(
                CreditableLine(line.kind, line.description, line.net - net_taken, line.tax - tax_taken, line.period)
            )
    return remaining


def plan_credit(
    *,
    invoice_gross: Decimal,
    invoice_tax: Decimal,
    lines: Sequence[CreditableLine],
    notes: Sequence[CreditNote],
    vat: CreditVat,
    currency: str,
    request: CreditRequest,
    paid: bool,
    creditable_gross: Decimal | None = None,
) -> CreditPlan:
    """The credit note ``request`` asks for on an invoice of ``lines`` already credited by ``notes``.

    ``creditable_gross`` is what Stripe lets the invoice's credit notes take back in all, when it is less
    than its gross: only what was charged or is still due, not what the customer's balance paid of it
    (or what was carried to the balance as too small to charge).

    ``CreditRefused`` when it is not possible: an unknown line, more than is left, a settlement that
    does not fit the invoice's state, or tax that EN 16931 and Stripe would round differently.
    """
    settlement = request.settlement or (Settlement.REFUND if paid else Settlement.PRE_PAYMENT)
    if paid and settlement is Settlement.PRE_PAYMENT:
        raise CreditRefused("the invoice is paid: its credit is refunded, put on the balance or settled out of band")
    if not paid and settlement is not Settlement.PRE_PAYMENT:
        raise CreditRefused(
            "the invoice is not paid: its credit reduces what is due (no refund, balance or out of band)"
        )
    left = remaining_lines(lines, notes)
    limit = invoice_gross if creditable_gross is None else min(invoice_gross, creditable_gross)
    left_gross = limit - sum((note.gross for note in notes if note.state is not CreditNoteState.VOID), ZERO)
    if not left or left_gross <= 0:
        raise CreditRefused(
            "nothing is left to credit on this invoice"
            if limit == invoice_gross
            else "nothing is left to credit on this invoice: the customer's balance paid the rest of it"
        )
    by_kind = {line.kind: line for line in left}
    if request.full:
        if any(note.state is not CreditNoteState.VOID for note in notes):
            raise CreditRefused("the invoice is credited in part already: credit what is left by line instead")
        if limit < invoice_gross:
            raise CreditRefused(
                f"the customer's balance paid {invoice_gross - limit} {currency.upper()} of this invoice, which "
                f"Stripe does not credit: credit its lines up to {limit} {currency.upper()} instead"
            )
        planned = _allocate(left, invoice_gross - invoice_tax, invoice_tax)
    else:
        planned = []
        known = {line.kind for line in lines}
        original = {line.kind: line for line in lines}
        taken = credited_by_line(notes)
        for kind, amount in request.lines.items():
            if kind not in known:
                raise CreditRefused(f"the invoice has no line {kind!r} (lines: {', '.join(sorted(known))})")
            line = by_kind.get(kind)
            if line is None:
                raise CreditRefused(f"line {kind} is credited in full already")
            if amount > line.net:
                raise CreditRefused(
                    f"line {kind}: at most {line.net} {currency.upper()} is left to credit, not {amount}"
                )
            before = taken.get(kind, (ZERO, ZERO))
            planned.append(_credited(line, original[kind], before, to_cents(amount)))
    plan = CreditPlan(tuple(planned), request.full, settlement)
    if plan.gross > left_gross:
        raise CreditRefused(f"at most {left_gross} {currency.upper()} is left to credit, not {plan.gross}")
    return plan


def _credited(left: CreditableLine, line: CreditableLine, before: tuple[Decimal, Decimal], net: Decimal) -> CreditLine:
    """``net`` of ``line`` with its share of the line's tax (``left`` is what is still creditable of it).

    The share is of all that is credited of the line by now, less the tax credited ``before``, so the
    credit notes of a line add up to exactly its tax once it is credited in full.
    """
    net_before, tax_before = before
    if net == left.net:
        tax = left.tax
    elif line.net:
        share = to_cents(line.tax * (net_before + net) / line.net)
        tax = min(max(share - tax_before, ZERO), left.tax)
    else:
        tax = ZERO
    return CreditLine(line.kind, line.description, net, tax, line.period)


def _allocate(lines: Sequence[CreditableLine], net_total: Decimal, tax_total: Decimal) -> list[CreditLine]:
    """A cancellation's lines: every positive line in full, but never more net than the invoice's own.

    An invoice whose lines include a credit carried in or a downward correction has a net below the
    sum of its positive lines; its cancellation takes back that net, line by line in order, and
    exactly the invoice's tax (the last line takes the cent a share rounded away).
    """
    credited, left = [], net_total
    for line in lines:
        if left <= 0:
            break
        if line.net <= left:
            credited.append(CreditLine(line.kind, line.description, line.net, line.tax, line.period))
            left -= line.net
        else:
            share = to_cents(line.tax * left / line.net) if line.net else ZERO
            credited.append(CreditLine(line.kind, line.description, left, share, line.period))
            left = ZERO
    if credited:
        last = credited[-1]
        rest = tax_total - sum((line.tax for line in credited[:-1]), ZERO)
        credited[-1] = CreditLine(last.kind, last.description, last.net, rest, last.period)
    return credited


def credited_total(notes: Sequence[CreditNote]) -> Decimal:
    """What the issued credit notes took back (gross)."""
    return sum((note.gross for note in notes if note.counts), ZERO)


def credit_status(invoice_gross: Decimal, notes: Sequence[CreditNote]) -> CreditStatus:
    """``cancelled`` once the issued credit notes take back the whole invoice, ``credited`` for part of it."""
    return credit_status_of(invoice_gross, credited_total(notes))
