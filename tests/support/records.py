"""Builders of domain records for tests: a valid invoice or account, with any field overridden."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing_core.adapters.dynamodb_items import account_from_item
from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import CreditLine, CreditNote, CreditVat, Settlement, credit_note_id_for
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Account, Invoice, LineDescriptions, invoice_fields, invoice_from_fields
from billing_core.errors import InvalidStoredRecord

SEED_BREAKDOWN = {
    "Amazon CloudFront": Decimal("8.47"),
    "AWS Lambda": Decimal("5.23"),
    "Amazon Simple Storage Service": Decimal("2.15"),
    "Amazon DynamoDB": Decimal("1.89"),
}


def an_invoice(**overrides: Any) -> Invoice:
    """The seed invoice (20.00 base fee + 17.74 AWS = 37.74 EUR, November 2024), pending, with overrides.

    Overrides name the invoice's own fields or its parts' fields as changes do (``stripe_invoice_id``,
    ``paid_at``, ``einvoice_xml``: ``INVOICE_PART_FIELDS``)."""
    account_id = overrides.pop("account_id", "user-1")
    period = overrides.pop("period", Period(2024, 11))
    invoice = Invoice(
        account_id=account_id,
        invoice_id=overrides.pop("invoice_id", f"inv_{period.label}_{account_id}"),
        status=InvoiceStatus.PENDING,
        period=period,
        currency="EUR",
        amount=Decimal("37.74"),
        base_fee=Decimal("20.00"),
        aws_costs=Decimal("17.74"),
        aws_breakdown=dict(SEED_BREAKDOWN),
        line_descriptions=LineDescriptions("Monatliche Grundgebühr", "AWS Infrastruktur (Nov 2024)"),
        created_at=1_700_000_000_000,
        updated_at=1_700_000_000_000,
    )
    return invoice_from_fields({**invoice_fields(invoice), **overrides})


def a_credit_note(invoice: Invoice | None = None, sequence: int = 1, **overrides: Any) -> CreditNote:
    """A pending credit note of ``invoice`` (the seed invoice) taking back 10.00 EUR net of its base fee."""
    invoice = invoice or an_invoice()
    values: dict[str, Any] = {
        "credit_note_id": credit_note_id_for(invoice.invoice_id, sequence),
        "account_id": invoice.account_id,
        "invoice_id": invoice.invoice_id,
        "sequence": sequence,
        "currency": invoice.currency,
        "lines": (CreditLine("base-fee", "Monatliche Grundgebühr", Decimal("10.00"), Decimal("1.90"), invoice.period),),
        "vat": CreditVat("S", Decimal(19)),
        "reason": "Grundgebühr zu hoch berechnet",
        "settlement": Settlement.REFUND,
        "full": False,
        "actor": "operator@example.com",
        "created_at": 1_700_000_100_000,
        "updated_at": 1_700_000_100_000,
    }
    return CreditNote(**{**values, **overrides})


def an_account(account_id: str = "user-1", **overrides: Any) -> Account:
    """An account with any fields given."""
    return Account(account_id, **overrides)


def stored_accounts(items: list[dict[str, Any]]) -> tuple[list[Account], list[InvalidStoredRecord]]:
    """Accounts-table items as the repository reads them: the valid accounts and the errors of the others."""
    accounts, invalid = [], []
    for item in items:
        try:
            accounts.append(account_from_item(item, "payment-methods"))
        except InvalidStoredRecord as error:
            invalid.append(error)
    return accounts, invalid
