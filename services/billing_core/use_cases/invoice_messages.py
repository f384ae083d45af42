"""The ``billing-jobs`` message: one invoice plan, handed from the billing run to the invoice job."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from billing_core.domain.corrections import Correction, settle
from billing_core.domain.costs import Period
from billing_core.domain.fx import FxQuote
from billing_core.domain.invoice_plan import InvoicePlan
from billing_core.errors import BillingError

MESSAGE_TYPE = "invoice-job"


class InvoiceMessageInvalid(BillingError):
    """A ``billing-jobs`` message that does not describe an invoice job; retrying will not help."""


def plan_to_message(plan: InvoicePlan, run_id: str) -> str:
    """The ``billing-jobs`` message for one plan: everything the job needs, money as strings."""
    return _compact(
        {
            "type": MESSAGE_TYPE,
            "runId": run_id,
            "plan": {
                "userId": plan.account_id,
                "invoiceId": plan.invoice_id,
                "period": plan.period.label,
                "currency": plan.currency,
                "baseFee": str(plan.base_fee),
                "awsCosts": str(plan.aws_costs),
                "breakdown": {service: str(amount) for service, amount in plan.breakdown.items()},
                "total": str(plan.total),
                "fxRate": None if plan.fx_rate is None else str(plan.fx_rate),
                "fxSource": plan.fx_source,
                "fxDate": None if plan.fx_date is None else plan.fx_date.isoformat(),
                "fxQuote": None if plan.fx_quote is None else plan.fx_quote.value,
                "fxNote": plan.fx_note,
                "markupPercent": str(plan.markup_percent),
                "costsEstimated": plan.costs_estimated,
                "baseFeeDescription": plan.base_fee_description,
                "awsDescription": plan.aws_description,
                "costScope": plan.cost_scope,
                "awsRaw": {service: str(amount) for service, amount in plan.aws_raw.items()},
                "costCurrency": plan.cost_currency,
                "corrections": [
                    {"period": c.period.label, "amount": str(c.amount), "description": c.description}
                    for c in plan.corrections
                ],
                "creditIn": str(plan.credit_in),
                "creditFrom": plan.credit_from,
                "carriedOut": str(plan.carried_out),
                "creditDescription": plan.credit_description,
                "carriedDescription": plan.carried_description,
            },
        }
    )


def plan_from_message(text: str) -> tuple[InvoicePlan, str | None]:
    """The plan and run id of a ``billing-jobs`` message; ``InvoiceMessageInvalid`` if it is not one."""
    try:
        body = json.loads(text, parse_float=Decimal)
    except ValueError:
        raise InvoiceMessageInvalid("not a JSON message") from None
    if not isinstance(body, Mapping) or body.get("type") != MESSAGE_TYPE or not isinstance(body.get("plan"), Mapping):
        raise InvoiceMessageInvalid("not an invoice-job message")
    p = body["plan"]
    try:
        plan = InvoicePlan(
            account_id=p["userId"],
            invoice_id=p["invoiceId"],
            period=Period.parse(p["period"]),
            currency=p["currency"],
            base_fee=Decimal(str(p["baseFee"])),
            aws_costs=Decimal(str(p["awsCosts"])),
            breakdown={service: Decimal(str(amount)) for service, amount in p["breakdown"].items()},
            total=Decimal(str(p["total"])),
            fx_rate=None if p.get("fxRate") is None else Decimal(str(p["fxRate"])),
            fx_source=p.get("fxSource"),
            fx_date=None if p.get("fxDate") is None else date.fromisoformat(p["fxDate"]),
            fx_quote=None if p.get("fxQuote") is None else FxQuote(p["fxQuote"]),
            fx_note=p.get("fxNote"),
            markup_percent=Decimal(str(p["markupPercent"])),
            costs_estimated=bool(p["costsEstimated"]),
            base_fee_description=p["baseFeeDescription"],
            aws_description=p["awsDescription"],
            cost_scope=p.get("costScope"),
            aws_raw={service: Decimal(str(amount)) for service, amount in p.get("awsRaw", {}).items()},
            cost_currency=p.get("costCurrency"),
            corrections=tuple(
                Correction(Period.parse(c["period"]), Decimal(str(c["amount"])), c["description"])
                for c in p.get("corrections", [])
            ),
            credit_in=Decimal(str(p.get("creditIn", "0"))),
            credit_from=p.get("creditFrom"),
            carried_out=Decimal(str(p.get("carriedOut", "0"))),
            credit_description=p.get("creditDescription"),
            carried_description=p.get("carriedDescription"),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise InvoiceMessageInvalid(f"invoice-job message is malformed: {type(error).__name__}") from None
    before = plan.base_fee + plan.aws_costs + sum((c.amount for c in plan.corrections), Decimal(0)) - plan.credit_in
    if settle(before) != (plan.total, plan.carried_out):
        raise InvoiceMessageInvalid(f"invoice-job message for {plan.invoice_id} does not add up")
    run_id = body.get("runId")
    return plan, run_id if isinstance(run_id, str) else None


def _compact(message: Mapping[str, Any]) -> str:
    return json.dumps(message, sort_keys=True, separators=(",", ":"))
