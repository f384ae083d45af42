"""The API's JSON shapes, built from domain records and use-case results.

Money is a string with exactly two decimals ("37.74") next to an upper-case ISO ``currency``
("EUR"): JSON numbers are binary floats in most clients, and money must never be one. Times are
epoch milliseconds, except ``asOf`` which is also given as ISO 8601 for display. The field names
are the API's own (clients depend on them), whatever the storage calls the same things.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing_core.domain.credit_notes import CreditNote
from billing_core.domain.money import CENT
from billing_core.domain.records import Account, Invoice
from billing_core.use_cases.billing_overview import PaymentMethodStatus
from billing_core.use_cases.cost_preview import CostPreview
from billing_core.use_cases.invoice_records import record_line_items
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


def invoice(record: Invoice) -> dict[str, Any]:
    """One invoice as the API shows it."""
    return {
        "invoiceId": record.invoice_id,
        "period": {"start": record.period.start.isoformat(), "end": record.period.end.isoformat()},
        "status": record.status.value,
        "currency": currency(record.currency),
        "amount": money(record.amount),
        # Net, VAT and gross as Stripe computed them (and the claim checked); amount is the gross charged.
        "netAmount": money(record.net),
        "taxAmount": money(record.tax),
        "taxRate": format(record.vat.rate.normalize(), "f") if record.vat else None,
        "taxCategory": record.vat.category if record.vat else None,
        "taxNote": record.vat.note if record.vat else None,
        "einvoice": {"xrechnung": record.einvoice.xml is not None, "zugferd": record.einvoice.pdf is not None},
        "baseFee": money(record.base_fee),
        "awsCosts": money(record.aws_costs),
        "awsBreakdown": {service: money(amount) or "0.00" for service, amount in record.aws_breakdown.items()},
        "costsEstimated": record.costs_estimated,
        # Corrections of earlier months (true-up), each its own entry beside the AWS breakdown.
        "corrections": [
            {
                "period": c.period.label,
                "description": c.description,
                "amount": money(c.amount),
                "settledByCreditNote": c.by_credit_note,
            }
            for c in record.true_up.corrections
        ],
        "creditIn": money(record.true_up.credit_in),
        "carriedOut": money(record.true_up.carried_out),
        "fxNote": record.conversion.note if record.conversion else None,
        "number": record.stripe.number or None,
        "hostedInvoiceUrl": record.stripe.hosted_invoice_url or None,
        "invoicePdf": record.stripe.invoice_pdf or None,
        "createdAt": record.created_at,
        "paidAt": record.payment.paid_at,
        # What credit notes took back (gross): all of it is a cancellation, part of it a correction.
        "credited": money(record.payment.credited),
        "correction": record.correction,
        # Stripe's customer balance at finalization: what it took into the invoice (> 0 collected with it,
        # < 0 a credit deducted) and the amount below the minimum charge it carried to the next invoice.
        "balanceApplied": money(record.payment.balance_applied),
        "carriedToBalance": money(record.payment.carried_to_balance),
        "amountDue": money(record.amount_due),
    }


def invoice_lines(record: Invoice) -> list[dict[str, Any]]:
    """The invoice's lines as Stripe has them: ``line`` (base-fee, aws, correction:YYYY-MM, ...), text, net."""
    return [
        {"line": kind, "description": description, "net": money(net)}
        for kind, net, description in record_line_items(record)
    ]


def credit_note(note: CreditNote) -> dict[str, Any]:
    """One issued credit note as the Billing tab lists it (its reason and settlement are in its e-invoice)."""
    return {
        "creditNoteId": note.credit_note_id,
        "number": note.number,
        # A cancellation (Stornorechnung) takes back the whole invoice, a correction (Rechnungskorrektur) part.
        "kind": "cancellation" if note.full else "correction",
        "currency": currency(note.currency),
        "net": money(note.net),
        "tax": money(note.tax),
        "gross": money(note.gross),
        "issuedAt": note.issued_at,
        "einvoice": {"xrechnung": note.einvoice_xml is not None, "zugferd": note.einvoice_pdf is not None},
    }


def payment_method(status: PaymentMethodStatus) -> dict[str, Any]:
    """The payment method status and its display fields (never more than the last four)."""
    return {"status": status.status, "id": status.id, "type": status.type, "brand": status.brand, "last4": status.last4}


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
        "amountBasis": "net",  # the preview is before VAT; the invoice adds it
        "costsEstimated": preview.estimated,
        "forecastAmount": money(forecast.total),
        "forecastAwsCosts": money(forecast.aws_costs),
        "forecastMethod": preview.forecast_method,
        "fxRate": format(current.fx.rate, "f") if current.fx is not None else None,
    }


def setup_intent(setup: PaymentSetup) -> dict[str, Any]:
    """What the page needs to mount the Payment Element."""
    return {"clientSecret": setup.client_secret, "publishableKey": setup.publishable_key}


def error(code: str, message: str) -> dict[str, Any]:
    """The one error shape of the API."""
    return {"error": {"code": code, "message": message}}


def invoice_recipients(account: Account) -> dict[str, Any]:
    """Who gets the account's invoices by e-mail, and which addresses bounced or complained."""
    return {
        "invoiceEmails": list(account.invoice_recipients),
        "undeliverableEmails": list(account.undeliverable_emails),
    }
