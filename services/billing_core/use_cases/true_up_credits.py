"""Downward corrections under Stripe Tax: settled by credit notes on the corrected month's invoice.

Stripe Tax refuses negative invoice items, so a month that finally cost less than it was billed cannot
be a negative line of the next invoice. Its correction stays in the new invoice's true-up (counted once,
with that invoice), marked ``by_credit_note``, and the invoice job, before it finalizes the new invoice
P, issues a credit note (Rechnungskorrektur, § 17 UStG: the earlier supply's taxable amount is reduced,
the document names the invoice it corrects) on the month's standing invoice X. It credits X's AWS line
by the correction's amount, and Stripe computes its VAT. Where the AWS line has less left (later
invoices corrected the month upward, or the operator credited it), the rest is credited from those
later invoices' correction lines of the month, oldest first (``credit_targets``).

    X paid -> settlement balance: the credit is on the customer's balance before P is finalized, so
              Stripe takes it off P (P's starting balance)
    X open -> settlement pre-payment: what X still asks is reduced

Exactly once: each credit note names P and the month it settles (``true_up_invoice_id`` /
``true_up_period``), one per credited invoice. A rerun or a resumed job counts what they took back
and issues only what is missing:

    job A: cn_2026-10_u1_1 for (inv_2026-11_u1, 2026-10) claimed, issued at Stripe ... crashes
    job B: finds cn_2026-10_u1_1 for (inv_2026-11_u1, 2026-10): 2.74 credited, nothing more to issue

The operator's own credit notes (goodwill, mistakes) are not corrections of the month: the true-up
never counts them (``true_up.history_of`` reads what the invoices billed and corrected), they only
leave less of a line to credit.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from billing_core.domain.corrections import Correction
from billing_core.domain.credit_notes import (
    CreditNote,
    CreditNoteState,
    CreditRequest,
    Settlement,
    credited_by_line,
)
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.money import ZERO
from billing_core.domain.records import Invoice
from billing_core.errors import BillingError
from billing_core.ports import InvoiceRepository
from billing_core.use_cases.credit_notes import CreditNotes
from billing_core.use_cases.invoice_records import CorrectionCredit, CreditTarget, credit_targets, record_line_items

log = logging.getLogger(__name__)


class CorrectionNotCreditable(BillingError):
    """A downward correction cannot be settled by credit notes: the month's invoices have too little left to credit."""


def true_up_actor(invoice_id: str) -> str:
    """Who issues the credit notes of ``invoice_id``'s true-up (the audit's actor)."""
    return f"true-up:{invoice_id}"


class TrueUpCredits:
    """Issues the credit notes that settle an invoice's downward corrections, once."""

    def __init__(self, invoices: InvoiceRepository, credit_notes: CreditNotes) -> None:
        self._invoices = invoices
        self._credit_notes = credit_notes

    def settle(self, record: Invoice) -> list[CorrectionCredit]:
        """Issue what is still missing of the credit notes settling ``record``'s corrections by credit note."""
        settled: list[CorrectionCredit] = []
        for correction in record.true_up.credit_note_corrections:
            settled += self._settle(record, correction)
        return settled

    def _settle(self, record: Invoice, correction: Correction) -> list[CorrectionCredit]:
        targets = credit_targets(self._invoices, record, correction.period)
        existing = {target.invoice.invoice_id: self._settling(record, correction, target) for target in targets}
        left = -correction.amount - sum((note.net for note in existing.values() if note is not None), ZERO)
        settled = []
        for target in targets:
            note = existing[target.invoice.invoice_id]
            if note is None:
                amount = min(left, self._creditable(target))
                if amount <= 0:
                    continue
                note = self._issue(record, correction, target, amount)
                left -= note.net
            elif note.state is CreditNoteState.PENDING:
                note = self._issue(record, correction, target, note.net)  # a crash left it: finished, not again
            settled.append(CorrectionCredit(correction, target.invoice, note))
        if left > 0:
            raise CorrectionNotCreditable(
                f"{record.invoice_id} corrects {correction.period.label} by {correction.amount} "
                f"{record.currency.upper()}, but its invoices have only {-correction.amount - left} left to credit "
                f"({', '.join(t.invoice.invoice_id for t in targets) or 'none'}): nothing is finalized"
            )
        return settled

    def _settling(self, record: Invoice, correction: Correction, target: CreditTarget) -> CreditNote | None:
        return next(
            (
                note
                for note in self._credit_notes.notes_of(target.invoice.invoice_id)
                if note.state is not CreditNoteState.VOID and note.settles(record.invoice_id, correction.period)
            ),
            None,
        )

    def _creditable(self, target: CreditTarget) -> Decimal:
        """What is left to credit of the target's line (net), after every credit note of its invoice."""
        nets = {kind: net for kind, net, _ in record_line_items(target.invoice)}
        taken = credited_by_line(self._credit_notes.notes_of(target.invoice.invoice_id)).get(target.kind, (ZERO,))[0]
        return max(nets.get(target.kind, ZERO) - taken, ZERO)

    def _issue(self, record: Invoice, correction: Correction, target: CreditTarget, amount: Decimal) -> CreditNote:
        invoice = target.invoice
        settlement = Settlement.BALANCE if invoice.status is InvoiceStatus.PAID else Settlement.PRE_PAYMENT
        note = self._credit_notes.credit_correction(
            invoice.invoice_id,
            CreditRequest(reason=correction.description, lines={target.kind: amount}, settlement=settlement),
            true_up_invoice_id=record.invoice_id,
            period=correction.period,
            actor=true_up_actor(record.invoice_id),
        )
        log.info(
            "correction settled by credit note",
            extra={
                "invoiceId": record.invoice_id,
                "corrects": correction.period.label,
                "creditedInvoiceId": invoice.invoice_id,
                "creditNoteId": note.credit_note_id,
                "net": str(note.net),
                "settlement": note.settlement.value,
            },
        )
        return note
