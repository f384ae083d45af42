"""The operator's invoices: list them across accounts, retry a failed payment, void an invoice; audited.

A retry asks Stripe to pay the open invoice now with the customer's current default payment method
(``payment_retry.pay_again``: one idempotency key per Stripe attempt):

    retrieve in_123 (attempt_count 2) -> pay, key inv_2026-10_x:retry:2 -> paid | declined | SCA

The outcome reaches the invoice record through Stripe's events (``invoice.paid`` ...), as every
payment does; the command reports what Stripe answered.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from billing_core.domain.audit import AuditEntry
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Invoice
from billing_core.errors import BillingError, InvalidStoredRecord
from billing_core.ports import AuditLog, InvoiceRepository, PaymentGateway
from billing_core.ports.storage import FieldIs
from billing_core.use_cases.payment_retry import NothingToPay, pay_again

RETRYABLE = frozenset({InvoiceStatus.OPEN, InvoiceStatus.PAYMENT_FAILED, InvoiceStatus.ACTION_REQUIRED})
VOIDABLE = frozenset(
    {InvoiceStatus.OPEN, InvoiceStatus.PAYMENT_FAILED, InvoiceStatus.ACTION_REQUIRED, InvoiceStatus.UNCOLLECTIBLE}
)


class InvoiceNotFound(BillingError):
    """No invoice has that id."""


class InvoiceNotRetryable(BillingError):
    """The invoice is in a state that cannot be paid again (paid, void, not finalized, ...)."""


@dataclass(frozen=True)
class RetryOutcome:
    """What Stripe answered to a retry."""

    invoice: Invoice
    stripe_status: str  # "paid", "open", ... as Stripe reports the invoice after the attempt
    declined: str | None = None  # the decline code, if the payment method was declined
    action_url: str | None = None  # the hosted invoice page, if the customer must authenticate (SCA)

    @property
    def paid(self) -> bool:
        """Whether Stripe reports the invoice paid."""
        return self.stripe_status == "paid"


def account_of_invoice_id(invoice_id: str) -> str:
    """The account id inside an invoice id (``inv_2026-10_<account>``); ``InvoiceNotFound`` if it has none."""
    parts = invoice_id.split("_", 2)
    if len(parts) != 3 or parts[0] != "inv" or not parts[2]:
        raise InvoiceNotFound(f"{invoice_id!r} is not an invoice id (inv_YYYY-MM_<account>)")
    return parts[2]


class OperatorInvoices:
    """Invoices across accounts for the operator (CLI and operator API)."""

    def __init__(
        self,
        invoices: InvoiceRepository,
        payments: PaymentGateway,
        audit: AuditLog,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._invoices = invoices
        self._payments = payments
        self._audit = audit
        self._clock = clock

    def all_invoices(
        self, *, period_label: str | None = None, status: str | None = None, account_id: str | None = None
    ) -> Iterator[Invoice | InvalidStoredRecord]:
        """Every invoice matching the filters (one account's through its own listing)."""
        if account_id is None:
            yield from self._invoices.list_all(period_label=period_label, status=status)
            return
        cursor: str | None = None
        while True:
            page = self._invoices.list_for_account(account_id, limit=100, cursor=cursor)
            for invoice in page.items:
                if (period_label is None or invoice.period.label == period_label) and (
                    status is None or invoice.status.value == status
                ):
                    yield invoice
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def find(self, account_id: str, invoice_id: str) -> Invoice | None:
        """The account's invoice ``invoice_id``, or ``None`` if it has none (yet)."""
        return self._invoices.get(account_id, invoice_id)

    def newest_for_account(self, account_id: str) -> Invoice | None:
        """The account's invoice of its latest period, if it has any."""
        page = self._invoices.list_for_account(account_id, limit=1)
        return page.items[0] if page.items else None

    def get(self, invoice_id: str) -> Invoice:
        """The invoice; ``InvoiceNotFound`` if there is none."""
        invoice = self._invoices.get(account_of_invoice_id(invoice_id), invoice_id)
        if invoice is None:
            raise InvoiceNotFound(f"no invoice {invoice_id!r}")
        return invoice

    def retry(self, invoice_id: str, *, actor: str, reason: str | None = None) -> RetryOutcome:
        """Pay the open invoice again now with the current default payment method."""
        invoice = self.get(invoice_id)
        if invoice.status not in RETRYABLE or invoice.stripe.invoice_id is None:
            raise InvoiceNotRetryable(
                f"{invoice_id} is {invoice.status.value}: only an open, failed or "
                "action-required invoice can be paid again"
            )
        try:
            attempt = pay_again(self._payments, invoice)
        except NothingToPay as nothing:
            raise InvoiceNotRetryable(str(nothing)) from None
        outcome = RetryOutcome(invoice, attempt.stripe_status, declined=attempt.declined, action_url=attempt.action_url)
        self._record(
            "invoice.retry",
            invoice,
            before={"status": invoice.status.value},
            after={"stripe": outcome.stripe_status, **({"declined": outcome.declined} if outcome.declined else {})},
            actor=actor,
            reason=reason,
        )
        return outcome

    def void(self, invoice_id: str, *, actor: str, reason: str) -> Invoice:
        """Void a finalized, unpaid invoice never sent to anyone (no e-invoice issued); a reason is required."""
        if not reason or not reason.strip():
            raise InvoiceNotRetryable("say why the invoice is voided (--reason)")
        invoice = self.get(invoice_id)
        if invoice.status is InvoiceStatus.VOID:
            return invoice
        if invoice.status not in VOIDABLE or invoice.stripe.invoice_id is None:
            raise InvoiceNotRetryable(
                f"{invoice_id} is {invoice.status.value}: only a finalized, unpaid invoice can be voided"
            )
        if invoice.einvoice.xml or invoice.einvoice.pdf or invoice.payment.credited:
            # Its e-invoice went out (§ 14 UStG): it is corrected by a document that names it, not unsaid.
            raise InvoiceNotRetryable(
                f"{invoice_id} was issued to the customer (its e-invoice is stored): cancel it with a credit "
                "note instead (billing invoices cancel)"
            )
        self._payments.void_invoice(invoice.stripe.invoice_id, idempotency_key=f"{invoice_id}:void")
        voided = self._invoices.update(
            invoice.account_id,
            invoice_id,
            {"status": InvoiceStatus.VOID, "updated_at": self._now_ms()},
            conditions=[FieldIs.one_of("status", *VOIDABLE, InvoiceStatus.VOID)],
        )
        self._record(
            "invoice.void",
            invoice,
            before={"status": invoice.status.value},
            after={"status": "void"},
            actor=actor,
            reason=reason,
        )
        return voided

    def _record(
        self,
        action: str,
        invoice: Invoice,
        *,
        before: dict[str, str],
        after: dict[str, str],
        actor: str,
        reason: str | None,
    ) -> None:
        self._audit.record(
            AuditEntry(
                entry_id=uuid.uuid4().hex,
                at=self._now_ms(),
                actor=actor,
                action=action,
                account_id=invoice.account_id,
                before={"invoice": invoice.invoice_id, **before},
                after={"invoice": invoice.invoice_id, **after},
                reason=reason,
            )
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
