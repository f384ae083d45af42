"""What an invoice job writes: the claimed record of a plan, and the Stripe lines and metadata of a record."""
from __future__ import annotations

from datetime import UTC, date, datetime
from datetime import time as day_time

from billing_core.domain.invoice_plan import InvoicePlan
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.money import to_minor_units
from billing_core.domain.records import LINE_KINDS, Invoice, LineDescriptions
from billing_core.ports import InvoiceLine


def invoice_lines(record: Invoice) -> list[InvoiceLine]:
    """The record's Stripe lines, base fee first, each with the billed month as its service period.

    An AWS line of 0.00 is left off: the invoice shows what is charged, not an empty line.
    """
    start, end = _epoch(record.period.start), _epoch(record.period.end) - 1  # Stripe's period end is inclusive
    amounts = {"base-fee": record.base_fee, "aws": record.aws_costs}
    return [
        InvoiceLine(
            amount=to_minor_units(amounts[kind], record.currency),
            description=record.line_descriptions.of(kind),
            metadata={"invoiceId": record.invoice_id, "line": kind},
            period_start=start,
            period_end=end,
        )
        for kind in LINE_KINDS
        if kind != "aws" or not record.aws_costs.is_zero()
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
        cost_scope=plan.cost_scope,
        run_id=run_id or None,
    )


def invoice_metadata(record: Invoice) -> dict[str, str]:
    """The Stripe invoice's metadata: what links it back to the account, the record and the period."""
    return {"userId": record.account_id, "invoiceId": record.invoice_id, "period": record.period.label}
