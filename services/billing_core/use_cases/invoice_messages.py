"""The ``billing-jobs`` message: one invoice plan, handed from the billing run to the invoice job."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from billing_core.domain.corrections import Correction, TrueUp, settle
from billing_core.domain.costs import Period
from billing_core.domain.errors import ConfigurationError
from billing_core.domain.fx import Conversion, FxQuote, FxRate
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
                **_conversion_fields(plan.conversion),
                "markupPercent": str(plan.markup_percent),
                "costsEstimated": plan.costs_estimated,
                "baseFeeDescription": plan.base_fee_description,
                "awsDescription": plan.aws_description,
                "costScope": plan.cost_scope,
                "awsRaw": {service: str(amount) for service, amount in plan.aws_raw.items()},
                "costCurrency": plan.cost_currency,
                **_true_up_fields(plan.true_up),
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
            conversion=_conversion(p),
            markup_percent=Decimal(str(p["markupPercent"])),
            costs_estimated=bool(p["costsEstimated"]),
            base_fee_description=p["baseFeeDescription"],
            aws_description=p["awsDescription"],
            cost_scope=p.get("costScope"),
            aws_raw={service: Decimal(str(amount)) for service, amount in p.get("awsRaw", {}).items()},
            cost_currency=p.get("costCurrency"),
            true_up=_true_up(p),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError, ConfigurationError) as error:
        raise InvoiceMessageInvalid(f"invoice-job message is malformed: {type(error).__name__}") from None
    true_up = plan.true_up
    before = plan.base_fee + plan.aws_costs + true_up.corrections_total - true_up.credit_in
    if settle(before) != (plan.total, true_up.carried_out):
        raise InvoiceMessageInvalid(f"invoice-job message for {plan.invoice_id} does not add up")
    run_id = body.get("runId")
    return plan, run_id if isinstance(run_id, str) else None


def _conversion_fields(conversion: Conversion | None) -> dict[str, Any]:
    if conversion is None:
        return {"fxRate": None, "fxSource": None, "fxDate": None, "fxQuote": None, "fxNote": None}
    fx = conversion.rate
    return {
        "fxRate": str(fx.rate),
        "fxSource": fx.source,
        "fxDate": fx.as_of.isoformat(),
        "fxQuote": fx.quote.value,
        "fxNote": conversion.note,
    }


def _conversion(plan: Mapping[str, Any]) -> Conversion | None:
    if plan.get("fxRate") is None:
        return None
    rate = FxRate(
        Decimal(str(plan["fxRate"])),
        plan["fxSource"],
        date.fromisoformat(plan["fxDate"]),
        FxQuote(plan.get("fxQuote") or FxQuote.INVOICE_PER_COST_UNIT.value),
    )
    return Conversion(rate, plan.get("fxNote"))


def _true_up_fields(true_up: TrueUp) -> dict[str, Any]:
    return {
        "corrections": [
            {
                "period": c.period.label,
                "amount": str(c.amount),
                "description": c.description,
                **({"byCreditNote": True} if c.by_credit_note else {}),
            }
            for c in true_up.corrections
        ],
        "creditIn": str(true_up.credit_in),
        "creditFrom": true_up.credit_from,
        "carriedOut": str(true_up.carried_out),
        "creditDescription": true_up.credit_description,
        "carriedDescription": true_up.carried_description,
    }


def _true_up(plan: Mapping[str, Any]) -> TrueUp:
    return TrueUp(
        corrections=tuple(
            Correction(
                Period.parse(c["period"]),
                Decimal(str(c["amount"])),
                c["description"],
                by_credit_note=c.get("byCreditNote") is True,
            )
            for c in plan.get("corrections", [])
        ),
        credit_in=Decimal(str(plan.get("creditIn", "0"))),
        credit_from=plan.get("creditFrom"),
        credit_description=plan.get("creditDescription"),
        carried_out=Decimal(str(plan.get("carriedOut", "0"))),
        carried_description=plan.get("carriedDescription"),
    )


def _compact(message: Mapping[str, Any]) -> str:
    return json.dumps(message, sort_keys=True, separators=(",", ":"))
