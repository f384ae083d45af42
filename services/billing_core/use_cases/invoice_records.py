"""What an invoice job writes: the claimed record of a plan, and the Stripe lines and metadata of a record."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as day_time
from decimal import Decimal
from typing import Protocol

from billing_core.domain.corrections import Correction, TrueUp
from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import CreditNote, CreditNoteState
from billing_core.domain.einvoice import VatCategory
from billing_core.domain.invoice_plan import InvoicePlan, invoice_id_for
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.money import to_minor_units
from billing_core.domain.records import Invoice, InvoiceVat, LineDescriptions
from billing_core.domain.tax import (
    TaxMode,
    TaxTreatment,
    category_tax,
    manual_line_taxes,
    rates_agree,
)
from billing_core.ports import CreditNoteRepository, InvoiceLine, InvoiceRepository, TaxRateSpec
from billing_core.use_cases.true_up import account_invoices


class _Billed(Protocol):
    """What a plan and a record both say about an invoice's lines."""

    @property
    def base_fee(self) -> Decimal: ...

    @property
    def aws_costs(self) -> Decimal: ...

    @property
    def true_up(self) -> TrueUp: ...


def line_items(billed: _Billed, base_fee_text: str, aws_text: str) -> list[tuple[str, Decimal, str]]:
    """The invoice's lines as (kind, net amount, text): base fee, AWS (left off at 0.00: the invoice
    shows what is charged), one per correction of an earlier month (but those a credit note settles),
    the credit carried in, and what is carried on to the next invoice."""
    kinds: list[tuple[str, Decimal, str]] = [("base-fee", billed.base_fee, base_fee_text)]
    if not billed.aws_costs.is_zero():
        kinds.append(("aws", billed.aws_costs, aws_text))
    true_up = billed.true_up
    kinds += [(f"correction:{c.period.label}", c.amount, c.description) for c in true_up.line_corrections]
    if true_up.credit_in:
        kinds.append(("credit", -true_up.credit_in, true_up.credit_description or "Credit"))
    if true_up.carried_out:
        kinds.append(("carried", true_up.carried_out, true_up.carried_description or "Carried"))
    return kinds


def record_line_items(record: Invoice) -> list[tuple[str, Decimal, str]]:
    """The record's lines as (kind, net amount, text)."""
    return line_items(record, record.line_descriptions.base_fee, record.line_descriptions.aws)


def invoice_lines(
    record: Invoice, *, tax_rate_id: str | None = None, tax_rate: TaxRateSpec | None = None
) -> list[InvoiceLine]:
    """The record's Stripe lines, each with the billed month as its service period and its VAT.

    Under German VAT each line carries the Tax Rate ``tax_rate_id``, or, where the claim found that
    Stripe's per-line rounding would not give EN 16931's tax, its manual tax amount of ``tax_rate``.
    Each line's ``metadata.line`` names it, so a resumed job can tell which lines a draft has.
    """
    start, end = _epoch(record.period.start), _epoch(record.period.end) - 1  # Stripe's period end is inclusive
    vat = record.vat
    manual = vat.manual_line_tax if vat and vat.category == VatCategory.STANDARD.value else ()
    return [
        InvoiceLine(
            amount=to_minor_units(amount, record.currency),
            description=description,
            metadata={"invoiceId": record.invoice_id, "line": kind},
            period_start=start,
            period_end=end,
            tax_rate_ids=(tax_rate_id,) if tax_rate_id and not manual else (),
            tax_amount=manual[index] if manual else None,
            tax_rate=tax_rate if manual else None,
        )
        for index, (kind, amount, description) in enumerate(record_line_items(record))
    ]


@dataclass(frozen=True)
class TaxClaim:
    """The VAT an invoice is claimed with: the customer's treatment, the mode and the legend's language."""

    treatment: TaxTreatment
    mode: TaxMode
    language: str


def _with_tax(record: Invoice, plan: InvoicePlan, claim: TaxClaim | None) -> Invoice:
    """``record`` with its VAT under ``claim``: ``amount`` becomes the gross, ``vat.net`` the lines' sum."""
    if claim is None:
        return record
    treatment, net = claim.treatment, plan.total
    tax, manual = Decimal(0), tuple[int, ...]()
    if treatment.taxed:
        cents = [
            to_minor_units(amount, plan.currency)
            for _, amount, _ in line_items(plan, plan.base_fee_description, plan.aws_description)
        ]
        tax = category_tax(net, treatment.rate)
        # Stripe Tax sums, then rounds (docs.stripe.com/billing/taxes/tax-rates#rounding), as EN 16931 does;
        # Tax Rates round per line, so where that would differ the lines carry manual amounts.
        if claim.mode is not TaxMode.STRIPE_TAX and not rates_agree(cents, treatment.rate):
            manual = tuple(manual_line_taxes(cents, treatment.rate))
    vat = InvoiceVat(
        category=treatment.category.value,
        net=net,
        tax=tax,
        rate=treatment.rate,
        note=treatment.legend(claim.language),
        manual_line_tax=manual,
    )
    return dataclasses.replace(record, amount=net + tax, vat=vat)


def _epoch(day: date) -> int:
    return int(datetime.combine(day, day_time.min, tzinfo=UTC).timestamp())


def new_record(plan: InvoicePlan, now_ms: int, run_id: str | None = None, *, tax: TaxClaim | None = None) -> Invoice:
    """The invoice a claim writes: status pending, the plan's amounts and VAT, no Stripe ids yet."""
    record = Invoice(
        account_id=plan.account_id,
        invoice_id=plan.invoice_id,
        status=InvoiceStatus.PENDING,
        period=plan.period,
        currency=plan.currency,
        amount=plan.total,
        base_fee=plan.base_fee,
        aws_costs=plan.aws_costs,
        aws_breakdown=dict(plan.breakdown),
        line_descriptions=LineDescriptions(base_fee=plan.base_fee_description, aws=plan.aws_description),
        costs_estimated=plan.costs_estimated,
        markup_percent=plan.markup_percent,
        created_at=now_ms,
        updated_at=now_ms,
        conversion=plan.conversion,
        aws_raw=dict(plan.aws_raw),
        cost_currency=plan.cost_currency,
        true_up=plan.true_up,
        cost_scope=plan.cost_scope,
        run_id=run_id or None,
    )
    return _with_tax(record, plan, tax)


def invoice_metadata(record: Invoice) -> dict[str, str]:
    """The Stripe invoice's metadata: what links it back to the account, the record and the period."""
    return {"userId": record.account_id, "invoiceId": record.invoice_id, "period": record.period.label}


def month_invoices(invoices: InvoiceRepository, account_id: str, period: Period) -> list[Invoice]:
    """Every invoice of the account's month, first to last: the month's invoice and its reissues."""
    found: list[Invoice] = []
    for revision in itertools.count(1):
        record = invoices.get(account_id, invoice_id_for(period, account_id, revision))
        if record is None:
            return found  # a reissue is claimed only after the revision before it, so they are contiguous
        found.append(record)
    raise AssertionError("unreachable")


def standing_invoice(invoices: InvoiceRepository, account_id: str, period: Period) -> Invoice | None:
    """The invoice that bills the account's month now: the last one not cancelled (else the last one)."""
    records = month_invoices(invoices, account_id, period)
    standing = [record for record in records if not record.cancelled]
    chosen = standing or records
    return chosen[-1] if chosen else None


def mark_corrected(invoices: InvoiceRepository, record: Invoice) -> None:
    """Point each invoice ``record`` corrects at it (``corrected_by``); repeating it changes nothing."""
    for correction in record.true_up.corrections:
        earlier = standing_invoice(invoices, record.account_id, correction.period)
        if earlier is None or record.invoice_id in earlier.corrected_by:
            continue
        invoices.update(
            earlier.account_id,
            earlier.invoice_id,
            {"corrected_by": earlier.corrected_by | {record.invoice_id}, "updated_at": record.updated_at},
        )


@dataclass(frozen=True)
class CreditTarget:
    """An invoice line a downward correction of ``period`` by credit note takes its amount back from."""

    invoice: Invoice
    kind: str  # "aws" of the month's invoice, or "correction:<YYYY-MM>" of a later one


def credit_targets(invoices: InvoiceRepository, record: Invoice, period: Period) -> list[CreditTarget]:
    """Where ``record``'s correction of ``period`` is credited, in this order: the month's standing
    invoice's AWS line, then the correction lines of the month on the invoices between it and ``record``
    (they corrected the month upward), oldest first."""
    targets = []
    standing = standing_invoice(invoices, record.account_id, period)
    if standing is not None:
        targets.append(CreditTarget(standing, "aws"))
    later = sorted(
        (
            earlier
            for earlier in account_invoices(invoices, record.account_id)
            if period < earlier.period < record.period
            and earlier.status is not InvoiceStatus.VOID
            and not earlier.cancelled
            and any(c.period == period and c.amount > 0 for c in earlier.true_up.line_corrections)
        ),
        key=lambda earlier: (earlier.period, earlier.created_at, earlier.invoice_id),
    )
    targets += [CreditTarget(earlier, f"correction:{period.label}") for earlier in later]
    return targets


@dataclass(frozen=True)
class CorrectionCredit:
    """A credit note that settles (some of) a correction by credit note: the correction, the invoice credited."""

    correction: Correction
    invoice: Invoice
    note: CreditNote


def correction_credits(
    invoices: InvoiceRepository, credit_notes: CreditNoteRepository, record: Invoice
) -> list[CorrectionCredit]:
    """The credit notes (not void) that settle ``record``'s corrections by credit note, in correction order."""
    found = []
    for correction in record.true_up.credit_note_corrections:
        for target in credit_targets(invoices, record, correction.period):
            found += [
                CorrectionCredit(correction, target.invoice, note)
                for note in credit_notes.list_for_invoice(target.invoice.invoice_id)
                if note.state is not CreditNoteState.VOID and note.settles(record.invoice_id, correction.period)
            ]
    return found
