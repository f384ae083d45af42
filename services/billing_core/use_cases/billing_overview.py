"""What an admin sees of their own account: invoices (newest first) with their credit notes, and the payment
method status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import CreditNote
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Account, Invoice, RunStatus
from billing_core.errors import BillingError, InvalidCursor, NotFound
from billing_core.ports import (
    AccountRepository,
    CreditNoteRepository,
    InvoiceRepository,
    Page,
    PaymentGateway,
    RunRecords,
    SecretsProvider,
)
from billing_core.use_cases.payment_retry import AlreadyPaid, NothingToPay, PaymentAttempt, pay_again
from billing_core.use_cases.payment_setup import PaymentSetup, start_payment_setup

DEFAULT_PAGE_SIZE = 12
MAX_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 1024

# Payment method status as the Billing tab shows it.
NO_PAYMENT_METHOD = "none"  # no Stripe customer yet, or one without a saved method
PAYMENT_METHOD_ACTIVE = "active"  # a default payment method the monthly invoice is charged to


# What an admin may pay now from the Billing tab.
PAYABLE = frozenset({InvoiceStatus.OPEN, InvoiceStatus.PAYMENT_FAILED, InvoiceStatus.ACTION_REQUIRED})


class InvoiceNotFound(NotFound):
    """The account has no invoice with that id (another account's invoice is reported the same way)."""


class CreditNoteNotFound(NotFound):
    """The invoice has no issued credit note with that id (another account's is reported the same way)."""


class InvoiceNotPayable(BillingError):
    """The invoice is paid, void or not finalized: there is nothing to pay now."""


class InvoicePaid(InvoiceNotPayable):
    """The invoice is paid (perhaps a moment ago, by a concurrent payment): there is nothing to pay."""


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


def issued_credit_notes(notes: CreditNoteRepository | None, invoice: Invoice) -> list[CreditNote]:
    """The credit notes Stripe issued on ``invoice``, first to last (pending and void ones are not the customer's)."""
    # Most invoices are never credited: ``credited`` tells without reading the credit notes.
    if notes is None or invoice.payment.credited <= 0:
        return []
    return [note for note in notes.list_for_invoice(invoice.invoice_id) if note.counts]


def get_credit_note(notes: CreditNoteRepository | None, invoice: Invoice, credit_note_id: str) -> CreditNote:
    """The issued credit note ``credit_note_id`` of ``invoice``; ``CreditNoteNotFound`` if it is not one of them."""
    note = notes.get(credit_note_id) if notes is not None else None
    # The id names the invoice, but the stored note's own invoice and account decide.
    if (
        note is None
        or not note.counts
        or note.invoice_id != invoice.invoice_id
        or note.account_id != invoice.account_id
    ):
        raise CreditNoteNotFound("no such credit note")
    return note


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


class CustomerBilling:
    """The Billing tab of one admin's account: invoices, paying now, saving a payment method.

    ``email_of``: the signed-in admin's e-mail from their access token, asked only when the account
    gets its first Stripe customer (access tokens carry no e-mail).
    """

    def __init__(
        self,
        *,
        invoices: InvoiceRepository,
        accounts: AccountRepository,
        payments: PaymentGateway,
        secrets: SecretsProvider,
        runs: RunRecords | None = None,
        email_of: Callable[[str], str | None] | None = None,
        credit_notes: CreditNoteRepository | None = None,
    ) -> None:
        self._invoices = invoices
        self._accounts = accounts
        self._payments = payments
        self._secrets = secrets
        self._runs = runs
        self._email_of = email_of
        self._credit_notes = credit_notes

    def invoices(self, account_id: str, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None) -> Page[Invoice]:
        """One page of the account's invoices, newest first."""
        return list_invoices(self._invoices, account_id, limit=limit, cursor=cursor)

    def invoice(self, account_id: str, invoice_id: str) -> Invoice:
        """The account's invoice ``invoice_id``; ``InvoiceNotFound`` otherwise."""
        return get_invoice(self._invoices, account_id, invoice_id)

    def credit_notes(self, invoice: Invoice) -> list[CreditNote]:
        """The issued credit notes of one of the account's invoices (as ``invoice``/``invoices`` returned it)."""
        return issued_credit_notes(self._credit_notes, invoice)

    def credit_note(self, account_id: str, invoice_id: str, credit_note_id: str) -> CreditNote:
        """The issued credit note ``credit_note_id`` of the account's invoice ``invoice_id``; else a ``NotFound``."""
        return get_credit_note(self._credit_notes, self.invoice(account_id, invoice_id), credit_note_id)

    def payment_method(self, account_id: str) -> PaymentMethodStatus:
        """The account's default payment method as the tab shows it."""
        return payment_method_status(self._accounts, account_id)

    def account(self, account_id: str) -> Account:
        """The account's record, or a new one's defaults before its first card is saved."""
        return self._accounts.get(account_id) or Account(account_id)

    def waiting_for_final_costs(self, month: Period) -> bool | None:
        """Whether ``month``'s invoice waits for final costs (``None``: the run state is not known here)."""
        if self._runs is None:
            return None
        return waiting_for_final_costs(self._runs, month)

    def pay_now(self, account_id: str, invoice_id: str) -> PaymentAttempt:
        """Pay the account's open or failed invoice now; ``InvoiceNotPayable`` if there is nothing to pay
        (``InvoicePaid`` if it is paid, as the record says or as Stripe says, a racing payment having
        paid it). Without a payment method the attempt is declined ``no_payment_method``."""
        invoice = self.invoice(account_id, invoice_id)
        if invoice.status is InvoiceStatus.PAID:
            raise InvoicePaid(invoice_id)
        if invoice.status not in PAYABLE:
            raise InvoiceNotPayable(invoice_id)
        try:
            return pay_again(self._payments, invoice, purpose="pay-now")
        except AlreadyPaid:
            raise InvoicePaid(invoice_id) from None
        except NothingToPay:
            raise InvoiceNotPayable(invoice_id) from None

    def start_payment_setup(
        self, account_id: str, *, request_key: str, email: str | None, access_token: str
    ) -> PaymentSetup:
        """A SetupIntent on the account's one Stripe customer (created now, with ``email``, if it has none)."""
        email_of = self._email_of
        asked: str | Callable[[], str | None] | None = email or (
            (lambda: email_of(access_token)) if email_of is not None else None
        )
        return start_payment_setup(
            account_id,
            request_key=request_key,
            accounts=self._accounts,
            payments=self._payments,
            secrets=self._secrets,
            email=asked,
        )
