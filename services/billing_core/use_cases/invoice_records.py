"""What an invoice job writes: the claimed record of a plan, and the Stripe lines and metadata of a record."""
from __future__ import annotations

from datetime import UTC, date, datetime
from datetime import time as day_time
from decimal import Decimal

from billing_core.domain.invoice_plan import InvoicePlan, invoice_id_for
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.money import to_minor_units
from billing_core.domain.records import Invoice, LineDescriptions
from billing_core.ports import InvoiceLine, InvoiceRepository


def invoice_lines(record: Invoice) -> list[InvoiceLine]:
    """The record's Stripe lines, each with the billed month as its service period.

    Base fee first, then AWS (left off at 0.00: the invoice shows what is charged), one line per
    correction of an earlier month, the credit carried in, and what is carried on to the next invoice.
    Each line's ``metadata.line`` names it, so a resumed job can tell which lines a draft has.
    """
    start, end = _epoch(record.period.start), _epoch(record.period.end) - 1  # Stripe's period end is inclusive
    kinds: list[tuple[str, Decimal, str]] = [("base-fee", record.base_fee, record.line_descriptions.base_fee)]
    if not record.aws_costs.is_zero():
        kinds.append(("aws", record.aws_costs, record.line_descriptions.aws))
    kinds += [(f"correction:{c.period.label}", c.amount, c.description) for c in record.corrections]
    if record.credit_in:
        kinds.append(("credit", -record.credit_in, record.credit_description or "Credit"))
    if record.carried_out:
        kinds.append(("carried", record.carried_out, record.carried_description or "Carried"))
    return [
        InvoiceLine(
            amount=to_minor_units(amount, record.currency),
            description=description,
            metadata={"invoiceId": record.invoice_id, "line": kind},
            period_start=start,
            period_end=end,
        )
        for kind, amount, description in kinds
    ]


def _epoch(day: date) -> int:
    return int(datetime.combine(day, day_time.min, tzinfo=UTC).timestamp())


def new_record(plan: InvoicePlan, now_ms: int, run_id: str | None = None) -> Invoice:
    """The invoice a claim writes: status pending, the plan's amounts, no Stripe ids yet."""
    return Invoice(
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
        fx_rate=plan.fx_rate,
        fx_source=plan.fx_source if plan.fx_rate is not None else None,
        fx_date=plan.fx_date if plan.fx_rate is not None else None,
        fx_quote=plan.fx_quote if plan.fx_rate is not None else None,
        fx_note=plan.fx_note if plan.fx_rate is not None else None,
        aws_raw=dict(plan.aws_raw),
        cost_currency=plan.cost_currency,
        corrections=plan.corrections,
        credit_in=plan.credit_in,
        credit_from=plan.credit_from,
        carried_out=plan.carried_out,
        credit_description=plan.credit_description,
        carried_description=plan.carried_description,
        cost_scope=plan.cost_scope,
        run_id=run_id or None,
    )


def invoice_metadata(record: Invoice) -> dict[str, str]:
    """The Stripe invoice's metadata: what links it back to the account, the record and the period."""
    return {"userId": record.account_id, "invoiceId": record.invoice_id, "period": record.period.label}


def mark_corrected(invoices: InvoiceRepository, record: Invoice) -> None:
    """Point each invoice ``record`` corrects at it (``corrected_by``); repeating it changes nothing."""
    for correction in record.corrections:
        earlier = invoices.get(record.account_id, invoice_id_for(correction.period, record.account_id))
        if earlier is None or record.invoice_id in earlier.corrected_by:
            continue
        invoices.update(earlier.account_id, earlier.invoice_id,
                        {"corrected_by": earlier.corrected_by | {record.invoice_id}, "updated_at": record.updated_at})
