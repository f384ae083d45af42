"""What an admin sees of their own account: invoices (newest first) and the payment method status."""

from __future__ import annotations

from dataclasses import dataclass

from billing_core.domain.costs import Period
from billing_core.domain.records import Invoice, RunStatus
from billing_core.errors import InvalidCursor, NotFound
from billing_core.ports import AccountRepository, InvoiceRepository, Page, RunRecords

DEFAULT_PAGE_SIZE = 12
MAX_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 1024

# Payment method status as the Billing tab shows it.
NO_PAYMENT_METHOD = "none"  # no Stripe customer yet, or one without a saved method
PAYMENT_METHOD_ACTIVE = "active"  # a default payment method the monthly invoice is charged to


class InvoiceNotFound(NotFound):
    """The account has no invoice with that id (another account's invoice is reported the same way)."""


@dataclass(frozen=True)
class PaymentMethodStatus:
    """The account's default payment method as far as it may be shown (never a full number)."""

    status: str
    type: str | None = None  # "card" or "sepa_debit"
    brand: str | None = None  # card brand, e.g. "visa"
    last4: str | None = None  # card or IBAN last four
    id: str | None = None  # Stripe's payment method id: tells a re-added card with the same last four apart


def list_invoices(
    invoices: InvoiceRepository, account_id: str, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
) -> Page[Invoice]:
    """One page of the account's invoices, newest period first; the cursor only reads this account."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    if cursor is not None and (not cursor or len(cursor) > MAX_CURSOR_LENGTH):
        raise InvalidCursor("not a cursor this system issued")
    return invoices.list_for_account(account_id, limit=limit, cursor=cursor)


def get_invoice(invoices: InvoiceRepository, account_id: str, invoice_id: str) -> Invoice:
    """The account's invoice ``invoice_id``; ``InvoiceNotFound`` if it is not this account's."""
    # The key includes the account, so another account's invoice id simply is not found here.
    invoice = invoices.get(account_id, invoice_id)
    if invoice is None:
        raise InvoiceNotFound("no such invoice")
    return invoice


def payment_method_status(accounts: AccountRepository, account_id: str) -> PaymentMethodStatus:
    """Whether the account has a default payment method, with its display fields."""
    account = accounts.get(account_id)
    if account is None:
        return PaymentMethodStatus(NO_PAYMENT_METHOD)
    method = account.payment_method
    if method is None:
        return PaymentMethodStatus(NO_PAYMENT_METHOD)
    return PaymentMethodStatus(
        PAYMENT_METHOD_ACTIVE,
        type=method.type or None,
        brand=method.brand or None,
        # Only ever four characters leave this module, whatever was stored.
        last4=method.last4[-4:] if method.last4 else None,
        id=method.id,
    )


def waiting_for_final_costs(runs: RunRecords, month: Period) -> bool:
    """Whether ``month``'s billing run waits for Cost Explorer's final costs (its invoice comes later)."""
    record = runs.get(month)
    return record is not None and record.status is RunStatus.WAITING_FOR_FINAL_COSTS
