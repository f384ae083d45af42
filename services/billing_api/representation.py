"""The API's JSON shapes, built from stored items and use-case results.

Money is a string with exactly two decimals ("37.74") next to an upper-case ISO ``currency``
("EUR"): JSON numbers are binary floats in most clients, and money must never be one. Times are
epoch milliseconds (as stored), except ``asOf`` which is also given as ISO 8601 for display.
Field names are the ``billing`` table's.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from billing_core.domain.money import CENT
from billing_core.ports import Item
from billing_core.use_cases.billing_overview import PaymentMethodStatus
from billing_core.use_cases.cost_preview import CostPreview
from billing_core.use_cases.payment_setup import PaymentSetup


def money(value: Any) -> str | None:
    """A stored amount as "12.34" (``None`` if absent or not a number)."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        return None
    amount = Decimal(value)
    if not amount.is_finite():
        return None
    return format(amount.quantize(CENT), "f")


def currency(value: Any) -> str | None:
    """An ISO currency code in upper case."""
    return value.upper() if isinstance(value, str) and value else None


def invoice(item: Item) -> dict[str, Any]:
    """One invoice of the ``billing`` table as the API shows it."""
    breakdown = item.get("awsBreakdown")
    period = item.get("period")
    return {
        "invoiceId": item["invoiceId"],
        "period": _period(period) if isinstance(period, Mapping) else None,
        "status": _text(item.get("status")),
        "currency": currency(item.get("currency")),
        "amount": money(item.get("amount")),
        "baseFee": money(item.get("baseFee")),
        "awsCosts": money(item.get("awsCosts")),
        "awsBreakdown": {
            str(service): money(amount) or "0.00" for service, amount in breakdown.items()
        } if isinstance(breakdown, Mapping) else {},
        "costsEstimated": bool(item.get("costsEstimated", False)),
        "number": _text(item.get("number")),
        "hostedInvoiceUrl": _text(item.get("hostedInvoiceUrl")),
        "invoicePdf": _text(item.get("invoicePdf")),
        "createdAt": _epoch_ms(item.get("createdAt")),
        "paidAt": _epoch_ms(item.get("paidAt")),
    }


def payment_method(status: PaymentMethodStatus) -> dict[str, Any]:
    """The payment method status and its display fields (never more than the last four)."""
    return {"status": status.status, "type": status.type, "brand": status.brand, "last4": status.last4}


def current_costs(preview: CostPreview) -> dict[str, Any]:
    """The month-to-date preview, priced like the invoice, with the forecast to the month's end."""
    current, forecast = preview.current, preview.forecast
    return {
        "period": {"start": preview.period.start.isoformat(), "end": preview.period.end.isoformat()},
        "asOf": int(preview.as_of.timestamp() * 1000),
        "asOfIso": preview.as_of.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "currency": current.currency,
        "baseFee": money(current.base_fee),
        "awsCosts": money(current.aws_costs),
        "awsBreakdown": {service: money(amount) for service, amount in current.breakdown.items()},
        "amount": money(current.total),
        "costsEstimated": preview.estimated,
        "forecastAmount": money(forecast.total),
        "forecastAwsCosts": money(forecast.aws_costs),
        "forecastMethod": preview.forecast_method,
        "fxRate": format(current.fx_rate, "f") if current.fx_rate is not None else None,
    }


def setup_intent(setup: PaymentSetup) -> dict[str, Any]:
    """What the page needs to mount the Payment Element."""
    return {"clientSecret": setup.client_secret, "publishableKey": setup.publishable_key}


def error(code: str, message: str) -> dict[str, Any]:
    """The one error shape of the API."""
    return {"error": {"code": code, "message": message}}


def _period(period: Mapping[str, Any]) -> dict[str, str | None]:
    return {"start": _text(period.get("start")), "end": _text(period.get("end"))}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _epoch_ms(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        return None
    return int(value)
