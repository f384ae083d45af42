"""A cancelled invoice's month billed again under a new number (``billing invoices reissue``).

    inv_2026-10_u1 (cancelled by its Stornorechnung) -> inv_2026-10r2_u1: the same month, the same AWS
    costs and rate, the account's current data (base fee, address, VAT id, tax treatment, language)

Once: the reissue's id follows from the cancelled invoice's (revision + 1) and is claimed like every
invoice, so a rerun (or a crash half way) finishes the same reissue through the invoice job instead
of billing the month a third time. The AWS costs are the month's as the cancelled invoice billed them:
a later true-up corrects them as it corrects every month. The corrections and the credit the cancelled
invoice carried are billed again, unless the account was billed for a later month after the
cancellation: that run found them taken back and billed them itself.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable

from billing_core.domain.audit import AuditEntry
from billing_core.domain.corrections import NO_TRUE_UP, settle
from billing_core.domain.invoice_plan import (
    BillingPolicy,
    InvoicePlan,
    invoice_id_for,
    invoice_revision_of,
    line_descriptions,
)
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.money import ZERO
from billing_core.domain.records import Account, Invoice
from billing_core.errors import BillingError
from billing_core.ports import AccountRepository, AuditLog, CreditNoteRepository, InvoiceRepository
from billing_core.use_cases.invoice_job import InvoiceJob, InvoiceJobResult
from billing_core.use_cases.invoice_records import month_invoices
from billing_core.use_cases.operator_invoices import InvoiceNotFound, account_of_invoice_id
from billing_core.use_cases.true_up import account_invoices

log = logging.getLogger(__name__)


class ReissueRefused(BillingError):
    """The invoice cannot be reissued (not cancelled, reissued already, the account is gone)."""


@dataclasses.dataclass(frozen=True)
class Reissued:
    """The cancelled invoice and the invoice that bills its month now."""

    cancelled: Invoice
    reissue: InvoiceJobResult


class Reissue:
    """Bills a cancelled invoice's month again, once."""

    def __init__(
        self,
        invoices: InvoiceRepository,
        accounts: AccountRepository,
        credit_notes: CreditNoteRepository,
        job: InvoiceJob,
        policy: BillingPolicy,
        audit: AuditLog,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._invoices = invoices
        self._accounts = accounts
        self._notes = credit_notes
        self._job = job
        self._policy = policy
        self._audit = audit
        self._clock = clock

    def reissue(self, invoice_id: str, *, actor: str) -> Reissued:
        """Bill the month of cancelled invoice ``invoice_id`` again (or finish the reissue already begun)."""
        account_id = account_of_invoice_id(invoice_id)
        cancelled = self._invoices.get(account_id, invoice_id)
        if cancelled is None:
            raise InvoiceNotFound(f"no invoice {invoice_id!r}")
        if not cancelled.cancelled:
            raise ReissueRefused(
                f"{invoice_id} is not cancelled: cancel it first (billing invoices cancel {invoice_id} --reason ...)"
            )
        account = self._accounts.get(account_id)
        if account is None:
            raise ReissueRefused(f"account {account_id} no longer exists: its month cannot be billed again")
        records = month_invoices(self._invoices, account_id, cancelled.period)
        _, revision = invoice_revision_of(invoice_id)
        later = records[revision:]
        if later and later[-1].cancelled:
            raise ReissueRefused(
                f"{invoice_id} was reissued as {later[0].invoice_id}, which is cancelled too: "
                f"reissue {later[-1].invoice_id}"
            )
        reissue_id = later[-1].invoice_id if later else invoice_id_for(cancelled.period, account_id, len(records) + 1)
        plan = self._plan(cancelled, account, reissue_id)
        result = self._job.run(plan)
        self._record(cancelled, result, actor)  # one entry per reissue, whichever run gets here
        return Reissued(cancelled, result)

    def _plan(self, cancelled: Invoice, account: Account, reissue_id: str) -> InvoicePlan:
        """The cancelled invoice's month with the account's base fee and texts as they are now."""
        language = account.language or self._policy.language
        base_text, aws_text = line_descriptions(cancelled.period, language)
        base_fee = self._policy.base_fee if account.base_fee_override is None else account.base_fee_override
        true_up = cancelled.true_up if not self._billed_since(cancelled) else NO_TRUE_UP
        # What the cancelled invoice carried on is recomputed (and refused below if there is any).
        true_up = dataclasses.replace(true_up, carried_out=ZERO, carried_description=None)
        total, carried = settle(base_fee + cancelled.aws_costs + true_up.corrections_total - true_up.credit_in)
        if carried:
            raise ReissueRefused(
                f"the reissue of {cancelled.invoice_id} would be below zero ({-carried} {cancelled.currency}); "
                "it is not reissued"
            )
        return InvoicePlan(
            account_id=account.account_id,
            invoice_id=reissue_id,
            period=cancelled.period,
            currency=cancelled.currency,
            base_fee=base_fee,
            aws_costs=cancelled.aws_costs,
            breakdown=dict(cancelled.aws_breakdown),
            total=total,
            markup_percent=cancelled.markup_percent,
            costs_estimated=cancelled.costs_estimated,
            base_fee_description=base_text,
            aws_description=aws_text,
            cost_scope=cancelled.cost_scope,
            conversion=cancelled.conversion,
            aws_raw=dict(cancelled.aws_raw),
            cost_currency=cancelled.cost_currency,
            true_up=true_up,
        )

    def _billed_since(self, cancelled: Invoice) -> bool:
        """Whether the account was billed for a later month after ``cancelled`` was cancelled."""
        cancelled_at = max(
            (note.issued_at or note.created_at for note in self._notes.list_for_invoice(cancelled.invoice_id)),
            default=cancelled.updated_at,
        )
        return any(
            record.period > cancelled.period
            and record.created_at >= cancelled_at
            and record.status is not InvoiceStatus.VOID
            for record in account_invoices(self._invoices, cancelled.account_id)
        )

    def _record(self, cancelled: Invoice, result: InvoiceJobResult, actor: str) -> None:
        self._audit.record(
            AuditEntry(
                entry_id=uuid.uuid5(uuid.NAMESPACE_URL, f"reissue/{result.invoice_id}").hex,
                at=int(self._clock() * 1000),
                actor=actor,
                action="invoice.reissue",
                account_id=cancelled.account_id,
                before={"invoice": cancelled.invoice_id, "amount": str(cancelled.amount)},
                after={"invoice": result.invoice_id, "amount": str(result.total), "status": result.status},
                reason=f"reissue of the cancelled invoice {cancelled.stripe.number or cancelled.invoice_id}",
            )
        )
