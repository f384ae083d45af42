"""Credit notes of issued invoices: planned here, confirmed by Stripe's preview, issued once, audited.

An operator credits an invoice (``billing invoices credit`` / ``cancel``, the operator page):

    plan (domain.credit_notes) -> claim cn_2026-10_x_1 (pending) -> Stripe preview == plan? -> create,
    key cn_2026-10_x_1:create -> issued (number, Stripe id) -> invoice.credited -> e-invoice (381) -> audit

Every step can be resumed: the claim is the first write, the Stripe credit note is created under one
idempotency key per credit note (and found again by its ``metadata.creditNoteId``), and a rerun of the
same request finishes the pending credit note instead of issuing a second one. A preview that does
not agree with the plan to the cent stops the credit note before anything reaches the customer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from billing_core.domain.audit import AuditEntry
from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import (
    CreditableLine,
    CreditNote,
    CreditNoteChanges,
    CreditNoteState,
    CreditPlan,
    CreditRefused,
    CreditRequest,
    CreditVat,
    Settlement,
    credit_note_id_for,
    credited_total,
    plan_credit,
)
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.money import from_minor_units, to_minor_units
from billing_core.domain.records import Invoice
from billing_core.errors import ConditionFailed, StripeRequestRejected
from billing_core.ports import (
    AccountRepository,
    AuditLog,
    CreditNoteRepository,
    FieldIs,
    InvoiceRepository,
    PaymentGateway,
)
from billing_core.ports.stripe import CreditNoteLineRequest, CreditNoteRequest
from billing_core.ports.stripe_objects import StripeCreditNote, StripeInvoiceLine
from billing_core.use_cases.einvoices import CreditNoteEInvoices, CreditNoteFiles
from billing_core.use_cases.invoice_records import record_line_items
from billing_core.use_cases.operator_invoices import InvoiceNotFound, account_of_invoice_id

log = logging.getLogger(__name__)

UNPAID = frozenset({InvoiceStatus.OPEN, InvoiceStatus.PAYMENT_FAILED, InvoiceStatus.ACTION_REQUIRED})
CREDITABLE = UNPAID | {InvoiceStatus.PAID}
_WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class CreditProposal:
    """What a credit note would take back, for the operator to confirm (nothing written yet)."""

    invoice: Invoice
    plan: CreditPlan
    stripe_total: int  # Stripe's preview, minor units: equal to the plan's gross, or the proposal is refused
    stripe_tax: int


class CreditNotes:
    """Credit notes of the operator's invoices (CLI, operator API, the worker's events)."""

    def __init__(
        self,
        invoices: InvoiceRepository,
        credit_notes: CreditNoteRepository,
        payments: PaymentGateway,
        audit: AuditLog,
        *,
        issue_files: Callable[[CreditNote, Invoice], CreditNote] | None = None,
        after_issue: Callable[[CreditNote], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._after_issue = after_issue  # queues the issued credit note's e-mail once its files exist
        self._invoices = invoices
        self._notes = credit_notes
        self._payments = payments
        self._audit = audit
        self._issue_files = issue_files  # writes the credit note's e-invoice; returns the note naming its files
        self._clock = clock

    # --- reading ---------------------------------------------------------------------------------

    def notes_of(self, invoice_id: str) -> list[CreditNote]:
        """The invoice's credit notes, first to last (any state)."""
        return self._notes.list_for_invoice(invoice_id)

    def get(self, credit_note_id: str) -> CreditNote | None:
        """One credit note, or ``None``."""
        return self._notes.get(credit_note_id)

    def propose(self, invoice_id: str, request: CreditRequest) -> CreditProposal:
        """The credit note ``request`` would issue, as Stripe previews it; ``CreditRefused`` if not possible."""
        invoice = self._invoice(invoice_id)
        lines = self._stripe_lines(invoice)
        plan = self._plan(invoice, lines, self.notes_of(invoice_id), request)
        preview = self._preview(self._stripe_request(invoice, lines, plan, None))
        self._check_agrees(invoice, plan, preview)
        return CreditProposal(invoice, plan, preview.total or 0, preview.total_tax)

    # --- issuing ---------------------------------------------------------------------------------

    def credit(self, invoice_id: str, request: CreditRequest, *, actor: str) -> CreditNote:
        """Issue the credit note ``request`` asks for (or finish the same one a crash left pending)."""
        invoice = self._invoice(invoice_id)
        lines = self._stripe_lines(invoice)
        notes = self.notes_of(invoice_id)
        for pending in (note for note in notes if note.state is CreditNoteState.PENDING):
            finished = self._finish(pending, invoice, lines)
            if _asks_for(finished, request):
                return finished  # the rerun of a request that crashed half way: nothing more to issue
        notes = self.notes_of(invoice_id)
        plan = self._plan(invoice, lines, notes, request)
        note = self._claim(invoice, plan, request, len(notes) + 1, actor)
        self._replan_with_earlier(note, invoice, lines, notes, request, plan)
        return self._finish(note, invoice, lines)

    def credit_correction(
        self, invoice_id: str, request: CreditRequest, *, true_up_invoice_id: str, period: Period, actor: str
    ) -> CreditNote:
        """The credit note of the true-up of invoice ``true_up_invoice_id`` for its correction of ``period``
        on ``invoice_id``, issued once: a rerun finds it (finishing it if a crash left it pending)."""
        invoice = self._invoice(invoice_id)
        lines = self._stripe_lines(invoice)
        notes = self.notes_of(invoice_id)
        issued = _settling(notes, true_up_invoice_id, period)
        if issued is not None:
            return self._finish(issued, invoice, lines)
        plan = self._plan(invoice, lines, notes, request)
        # Checked before the claim too: a disagreement would recur on every retry of the job, each time
        # spending a credit note number of the invoice on a void credit note.
        self._check_agrees(invoice, plan, self._preview(self._stripe_request(invoice, lines, plan, None)))
        note = self._claim(
            invoice, plan, request, len(notes) + 1, actor, true_up_invoice_id=true_up_invoice_id, true_up_period=period
        )
        # Two attempts of one invoice job at once each claim one: the first claimed stands.
        earlier = [n for n in self.notes_of(invoice_id) if n.sequence < note.sequence]
        first = _settling(earlier, true_up_invoice_id, period)
        if first is not None:
            self._abandon(note, f"{first.credit_note_id} settles the same correction")
            return self._finish(first, invoice, lines)
        self._replan_with_earlier(note, invoice, lines, notes, request, plan)
        return self._finish(note, invoice, lines)

    def cancel(self, invoice_id: str, *, reason: str, actor: str, settlement: Settlement | None = None) -> CreditNote:
        """Take back the whole invoice (Stornorechnung)."""
        return self.credit(invoice_id, CreditRequest(reason=reason, full=True, settlement=settlement), actor=actor)

    # --- Stripe's events -------------------------------------------------------------------------

    def apply_stripe_credit_note(self, stripe_note: StripeCreditNote) -> bool:
        """Move our credit note forward to what Stripe says (issued, or void); whether it changed."""
        return apply_stripe_credit_note(stripe_note, self._invoices, self._notes, self._now_ms())

    # --- steps -----------------------------------------------------------------------------------

    def _invoice(self, invoice_id: str) -> Invoice:
        invoice = self._invoices.get(account_of_invoice_id(invoice_id), invoice_id)
        if invoice is None:
            raise InvoiceNotFound(f"no invoice {invoice_id!r}")
        return invoice

    def _stripe_lines(self, invoice: Invoice) -> list[StripeInvoiceLine]:
        if invoice.status not in CREDITABLE or invoice.stripe.invoice_id is None or invoice.vat is None:
            raise CreditRefused(
                f"{invoice.invoice_id} is {invoice.status.value}: only a finalized invoice that is open or "
                "paid can be credited (a draft is changed, a void one is void)"
            )
        return self._payments.list_invoice_lines(invoice.stripe.invoice_id)

    def _plan(
        self, invoice: Invoice, lines: Sequence[StripeInvoiceLine], notes: Sequence[CreditNote], request: CreditRequest
    ) -> CreditPlan:
        assert invoice.vat is not None  # checked by _stripe_lines
        return plan_credit(
            invoice_gross=invoice.amount,
            invoice_tax=invoice.tax,
            lines=creditable_lines(invoice, lines),
            notes=notes,
            vat=CreditVat(invoice.vat.category, invoice.vat.rate, invoice.vat.note),
            currency=invoice.currency,
            request=request,
            paid=invoice.status is InvoiceStatus.PAID,
            # Stripe credits what was charged or is still due, not what the customer's balance paid.
            creditable_gross=min(invoice.amount, invoice.amount_due),
        )

    def _replan_with_earlier(
        self,
        note: CreditNote,
        invoice: Invoice,
        lines: Sequence[StripeInvoiceLine],
        notes: Sequence[CreditNote],
        request: CreditRequest,
        plan: CreditPlan,
    ) -> None:
        """A concurrent credit note claimed just before ``note`` is counted now: plan again with it."""
        earlier = [n for n in self.notes_of(invoice.invoice_id) if n.sequence < note.sequence]
        if earlier == list(notes):
            return
        try:
            replanned = self._plan(invoice, lines, earlier, request)
        except CreditRefused:
            self._abandon(note, "another credit note of the invoice was issued at the same time")
            raise
        if replanned != plan:
            self._abandon(note, "another credit note of the invoice was issued at the same time")
            raise CreditRefused("another credit note of this invoice was issued at the same time: try again")

    def _claim(
        self,
        invoice: Invoice,
        plan: CreditPlan,
        request: CreditRequest,
        sequence: int,
        actor: str,
        *,
        true_up_invoice_id: str | None = None,
        true_up_period: Period | None = None,
    ) -> CreditNote:
        assert invoice.vat is not None
        now = self._now_ms()
        note = CreditNote(
            credit_note_id=credit_note_id_for(invoice.invoice_id, sequence),
            account_id=invoice.account_id,
            invoice_id=invoice.invoice_id,
            sequence=sequence,
            currency=invoice.currency,
            lines=plan.lines,
            vat=CreditVat(invoice.vat.category, invoice.vat.rate, invoice.vat.note),
            reason=request.reason.strip(),
            settlement=plan.settlement,
            full=plan.full,
            actor=actor,
            created_at=now,
            updated_at=now,
            true_up_invoice_id=true_up_invoice_id,
            true_up_period=true_up_period,
        )
        if not self._notes.create_if_absent(note):
            raise CreditRefused("another credit note of this invoice is being issued right now: try again")
        return note

    def _finish(self, note: CreditNote, invoice: Invoice, lines: Sequence[StripeInvoiceLine]) -> CreditNote:
        """Take a pending credit note through Stripe, the invoice's credited amount, its files and the audit."""
        if note.state is CreditNoteState.PENDING:
            found = [n for n in self._payments.list_credit_notes(note_invoice(invoice)) if _is_of(n, note)]
            if found:
                stripe_note = found[0]
            else:
                plan = CreditPlan(note.lines, note.full, note.settlement)
                request = self._stripe_request(invoice, lines, plan, note)
                try:
                    self._check_agrees(invoice, plan, self._preview(request))
                    stripe_note = self._payments.create_credit_note(
                        request, idempotency_key=f"{note.credit_note_id}:create"
                    )
                except StripeRequestRejected as rejected:  # a refusal creates nothing, under this key ever
                    self._abandon(note, str(rejected))
                    raise CreditRefused(f"Stripe refused the credit note: {rejected}; nothing was issued") from None
                except CreditRefused as disagreement:
                    self._abandon(note, str(disagreement))
                    raise
            note = self._mark_issued(note, stripe_note)
            self._check_credited(self._refresh_credited(invoice))
            self._record(note, invoice)
        if note.state is CreditNoteState.ISSUED and not (note.einvoice_xml and note.einvoice_pdf):
            if self._issue_files is not None:
                note = self._issue_files(note, self._invoice(invoice.invoice_id))
        if note.state is CreditNoteState.ISSUED and self._after_issue is not None:
            self._after_issue(note)
        return note

    def _preview(self, request: CreditNoteRequest) -> StripeCreditNote:
        """Stripe's preview of ``request``; ``CreditRefused`` with Stripe's reason if Stripe refuses it."""
        try:
            return self._payments.preview_credit_note(request)
        except StripeRequestRejected as rejected:
            raise CreditRefused(f"Stripe refuses this credit note: {rejected}") from None

    def _stripe_request(
        self, invoice: Invoice, lines: Sequence[StripeInvoiceLine], plan: CreditPlan, note: CreditNote | None
    ) -> CreditNoteRequest:
        by_kind = {line.kind: line for line in lines if line.kind}
        manual = bool(invoice.vat and invoice.vat.manual_line_tax)
        requested = []
        for credited in plan.lines:
            line = by_kind[credited.kind]
            tax_rate_id = line.taxes[0].tax_rate_id if manual and len(line.taxes) == 1 else None
            requested.append(
                CreditNoteLineRequest(
                    invoice_line_id=line.id,
                    amount=to_minor_units(credited.net, invoice.currency),
                    # Lines billed with manual tax amounts are credited with theirs; lines with Tax Rates
                    # take Stripe's proportional tax, which the preview check holds to ours.
                    tax_amount=to_minor_units(credited.tax, invoice.currency) if tax_rate_id else None,
                    tax_rate_id=tax_rate_id,
                    taxable_amount=to_minor_units(credited.net, invoice.currency) if tax_rate_id else None,
                )
            )
        metadata = {"invoiceId": invoice.invoice_id, "userId": invoice.account_id}
        if note is not None:
            metadata["creditNoteId"] = note.credit_note_id
        if note is not None and note.true_up_invoice_id and note.true_up_period:
            metadata["trueUpInvoiceId"] = note.true_up_invoice_id
            metadata["trueUpPeriod"] = note.true_up_period.label
        return CreditNoteRequest(
            invoice_id=note_invoice(invoice),
            lines=tuple(requested),
            settlement=plan.settlement.value,
            memo=note.reason if note else None,
            metadata=metadata,
            # After payment Stripe wants the whole credit settled; lines on Tax Rates carry no tax amount
            # of their own, so the amount is ours (a preview whose total differs is refused).
            amount_settled=None
            if plan.settlement is Settlement.PRE_PAYMENT
            else to_minor_units(plan.gross, invoice.currency),
        )

    def _check_agrees(self, invoice: Invoice, plan: CreditPlan, stripe_note: StripeCreditNote) -> None:
        """Stripe's credit note and ours agree to the cent, or nothing is issued."""
        gross = to_minor_units(plan.gross, invoice.currency)
        tax = to_minor_units(plan.tax, invoice.currency)
        if stripe_note.total != gross or stripe_note.total_tax != tax:
            theirs = from_minor_units(stripe_note.total or 0, invoice.currency)
            their_tax = from_minor_units(stripe_note.total_tax, invoice.currency)
            raise CreditRefused(
                f"Stripe would credit {theirs} (VAT {their_tax}), this system computed {plan.gross} "
                f"(VAT {plan.tax}): nothing was issued"
            )

    def _mark_issued(self, note: CreditNote, stripe_note: StripeCreditNote) -> CreditNote:
        try:
            return self._notes.update(
                note.credit_note_id,
                _issued_changes(stripe_note, self._now_ms()),
                conditions=[FieldIs.one_of("state", CreditNoteState.PENDING)],
            )
        except ConditionFailed as moved:  # Stripe's event (or a concurrent run) got there first
            current: CreditNote = moved.current
            return current

    def _abandon(self, note: CreditNote, why: str) -> None:
        """A claimed credit note that never reached Stripe: void, so its amount is creditable again."""
        log.warning("credit note abandoned", extra={"creditNoteId": note.credit_note_id, "reason": why})
        try:
            self._notes.update(
                note.credit_note_id,
                {"state": CreditNoteState.VOID, "voided_at": self._now_ms(), "updated_at": self._now_ms()},
                conditions=[FieldIs.one_of("state", CreditNoteState.PENDING)],
            )
        except ConditionFailed:
            pass  # issued after all (by a concurrent run): it stands

    def _check_credited(self, invoice: Invoice) -> None:
        """Stripe's invoice says it is credited by what our credit notes took back (logged loudly if not)."""
        assert invoice.stripe.invoice_id is not None
        stripe_invoice = self._payments.retrieve_invoice(invoice.stripe.invoice_id)
        theirs = stripe_invoice.pre_payment_credit_notes_amount + stripe_invoice.post_payment_credit_notes_amount
        if theirs != to_minor_units(invoice.payment.credited, invoice.currency):
            # The credit note stands at Stripe either way; what differs is for the operator to look at.
            log.error(
                "Stripe's invoice is credited by another amount than our credit notes",
                extra={
                    "invoiceId": invoice.invoice_id,
                    "stripeCredited": theirs,
                    "credited": str(invoice.payment.credited),
                },
            )

    def _refresh_credited(self, invoice: Invoice) -> Invoice:
        return refresh_credited(invoice.invoice_id, self._invoices, self._notes, self._now_ms())

    def _record(self, note: CreditNote, invoice: Invoice) -> None:
        self._audit.record(
            AuditEntry(
                entry_id=uuid.uuid5(uuid.NAMESPACE_URL, f"credit-note/{note.credit_note_id}").hex,
                at=self._now_ms(),
                actor=note.actor,
                action="invoice.cancel" if note.full else "invoice.credit",
                account_id=invoice.account_id,
                before={"invoice": invoice.invoice_id, "credited": str(invoice.payment.credited)},
                after={
                    "invoice": invoice.invoice_id,
                    "creditNote": note.credit_note_id,
                    "number": note.number or "",
                    "net": str(note.net),
                    "tax": str(note.tax),
                    "gross": str(note.gross),
                    "settlement": note.settlement.value,
                },
                reason=note.reason,
            )
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def apply_stripe_credit_note(
    stripe_note: StripeCreditNote, invoices: InvoiceRepository, notes: CreditNoteRepository, now_ms: int
) -> bool:
    """Our credit note moved forward to Stripe's state (issued, or void), the invoice's credited with it.

    Forward only, whatever the order of Stripe's events: a void credit note stays void. A credit note
    this system did not issue (no ``metadata.creditNoteId``) is not ours to record: ``False``.
    """
    credit_note_id = stripe_note.metadata.get("creditNoteId")
    note = notes.get(credit_note_id) if credit_note_id else None
    if note is None:
        return False
    if stripe_note.status == "void" and note.state is not CreditNoteState.VOID:
        changes: CreditNoteChanges = {"state": CreditNoteState.VOID, "voided_at": now_ms, "updated_at": now_ms}
    elif stripe_note.status != "void" and note.state is CreditNoteState.PENDING:
        changes = _issued_changes(stripe_note, now_ms)
    else:
        return False
    try:
        notes.update(note.credit_note_id, changes, conditions=[FieldIs.one_of("state", *_BEFORE[changes["state"]])])
    except ConditionFailed:
        return False  # another delivery or the command moved it first
    refresh_credited(note.invoice_id, invoices, notes, now_ms)
    return True


_BEFORE = {
    CreditNoteState.ISSUED: (CreditNoteState.PENDING,),
    CreditNoteState.VOID: (CreditNoteState.PENDING, CreditNoteState.ISSUED),
}


def _issued_changes(stripe_note: StripeCreditNote, now_ms: int) -> CreditNoteChanges:
    return {
        "state": CreditNoteState.ISSUED,
        "stripe_credit_note_id": stripe_note.id,
        "number": stripe_note.number,
        "issued_at": (stripe_note.created or 0) * 1000 or now_ms,
        "updated_at": now_ms,
    }


def refresh_credited(invoice_id: str, invoices: InvoiceRepository, notes: CreditNoteRepository, now_ms: int) -> Invoice:
    """The invoice's ``credited`` set to what its issued credit notes took back.

    A function of the credit notes, not an increment, so a repeated or resumed call writes the same;
    conditional on the value read, so two writers at once cannot lose one's credit note.
    """
    account_id = account_of_invoice_id(invoice_id)
    for _ in range(_WRITE_ATTEMPTS):
        current = invoices.get(account_id, invoice_id)
        if current is None:
            raise InvoiceNotFound(f"no invoice {invoice_id!r}")
        credited = credited_total(notes.list_for_invoice(invoice_id))
        if credited == current.payment.credited:
            return current
        try:
            return invoices.update(
                account_id,
                invoice_id,
                {"credited": credited, "updated_at": now_ms},
                conditions=[
                    FieldIs.one_of("credited", current.payment.credited, or_absent=not current.payment.credited)
                ],
            )
        except ConditionFailed:
            continue
    raise CreditRefused(f"{invoice_id}: its credited amount kept changing; run the command again")


def note_invoice(invoice: Invoice) -> str:
    """The Stripe invoice a credit note of ``invoice`` is issued on."""
    if invoice.stripe.invoice_id is None:
        raise CreditRefused(f"{invoice.invoice_id} has no Stripe invoice")
    return invoice.stripe.invoice_id


def creditable_lines(invoice: Invoice, stripe_lines: Sequence[StripeInvoiceLine]) -> list[CreditableLine]:
    """The invoice's lines with the tax Stripe charged on each; a line Stripe does not have is refused."""
    by_kind = {line.kind: line for line in stripe_lines if line.kind}
    creditable = []
    for kind, net, description in record_line_items(invoice):
        line = by_kind.get(kind)
        if line is None or line.amount != to_minor_units(net, invoice.currency):
            raise CreditRefused(f"{invoice.invoice_id}: Stripe's line {kind} is not the record's: nothing is credited")
        period = Period.parse(kind.split(":", 1)[1]) if kind.startswith("correction:") else invoice.period
        creditable.append(CreditableLine(kind, description, net, from_minor_units(line.tax, invoice.currency), period))
    return creditable


def _settling(notes: Sequence[CreditNote], true_up_invoice_id: str, period: Period) -> CreditNote | None:
    """The first credit note of ``notes`` (not void) that settles the true-up's correction of ``period``."""
    return next(
        (n for n in notes if n.state is not CreditNoteState.VOID and n.settles(true_up_invoice_id, period)), None
    )


def _is_of(stripe_note: StripeCreditNote, note: CreditNote) -> bool:
    return stripe_note.metadata.get("creditNoteId") == note.credit_note_id


def _asks_for(note: CreditNote, request: CreditRequest) -> bool:
    """Whether ``note`` is what ``request`` asks for (the same lines and amounts, or the whole invoice)."""
    if request.full:
        return note.full
    return not note.full and dict(request.lines) == {line.kind: line.net for line in note.lines}


def credit_note_files(
    files: CreditNoteEInvoices,
    accounts: AccountRepository,
    notes: CreditNoteRepository,
    clock: Callable[[], float] = time.time,
) -> Callable[[CreditNote, Invoice], CreditNote]:
    """The step that writes an issued credit note's e-invoice once and keeps its keys (or why not) on it."""

    def issue(note: CreditNote, record: Invoice) -> CreditNote:
        account = accounts.get(record.account_id)
        if account is None:
            return note
        outcome = files.issue(note, record, account)
        now = int(clock() * 1000)
        if isinstance(outcome, CreditNoteFiles):
            return notes.update(
                note.credit_note_id,
                {
                    "einvoice_xml": outcome.xml_key,
                    "einvoice_pdf": outcome.pdf_key,
                    "einvoice_error": None,
                    "updated_at": now,
                },
            )
        log.error("credit note e-invoice not written", extra={"creditNoteId": note.credit_note_id})
        return notes.update(note.credit_note_id, {"einvoice_error": outcome.problem, "updated_at": now})

    return issue
