"""Invoice lifecycle events: each moves the invoice's record forward, never back (``domain.lifecycle``).

The write is conditional on the status being one of the new status's allowed predecessors *and* on
the stored order key being the one read, so two workers racing cannot move a record backward; the
loser re-reads and usually finds it has nothing left to do. Each applied state writes the same set of
attributes (set or removed), so the final record depends only on the furthest-along event.
"""

from __future__ import annotations

import logging

from billing_core.domain.lifecycle import (
    EVENT_STATUS,
    InvoiceProgress,
    InvoiceStatus,
    allowed_predecessors,
    progress_for_event,
)
from billing_core.domain.records import Invoice, InvoiceChanges
from billing_core.errors import ConditionFailed, NotFound, UpdateConflict
from billing_core.ports import FieldIs, InvoiceRepository, StripeEvent, StripeInvoice
from billing_core.use_cases.event_support import (
    WRITE_ATTEMPTS,
    EventHandler,
    EventOutcome,
    EventPorts,
    epoch_ms,
    names_unknown_account,
    object_of,
)

log = logging.getLogger(__name__)


def invoice_event(event: StripeEvent, ports: EventPorts) -> EventOutcome:
    """Any invoice lifecycle event: the state it implies, if further along than the record's."""
    invoice = object_of(event, StripeInvoice)
    progress = progress_for_event(event.type, event.created, invoice.attempt_count)
    assert progress is not None  # every invoice event type maps to a status
    if event.type == "invoice.finalization_failed":
        log.error(
            "Stripe could not finalize an invoice",
            extra={"eventId": event.id, "stripeInvoiceId": invoice.id, "reason": invoice.finalization_error},
        )
    return record_invoice_state(invoice, progress, event.created_ms, ports)


INVOICE_HANDLERS: dict[str, EventHandler] = {event_type: invoice_event for event_type in EVENT_STATUS}


# Stripe's invoice status -> ours, for records repaired from an invoice object rather than an event.
# An open invoice may be retrying; the snapshot cannot say which attempt failed how, so it says "open"
# and the forward-only rule keeps a more precise retrying status already recorded.
_SNAPSHOT_STATUS = {
    "draft": InvoiceStatus.DRAFT,
    "open": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "uncollectible": InvoiceStatus.UNCOLLECTIBLE,
    "void": InvoiceStatus.VOID,
}


def _entered_status_at(invoice: StripeInvoice) -> int | None:
    """When the invoice entered its current status (epoch seconds), as far as Stripe says."""
    transitions = invoice.status_transitions
    return {
        "paid": transitions.paid_at,
        "void": transitions.voided_at,
        "uncollectible": transitions.marked_uncollectible_at,
        "open": transitions.finalized_at,
    }.get(invoice.status or "")


def record_invoice_snapshot(invoice: StripeInvoice, ports: EventPorts) -> EventOutcome:
    """Bring the invoice's record up to the state of a Stripe invoice object (reconciliation)."""
    status = _SNAPSHOT_STATUS.get(invoice.status or "")
    if status is None:
        return EventOutcome.IGNORED
    observed = _entered_status_at(invoice) or invoice.created
    progress = InvoiceProgress(status, attempt_count=invoice.attempt_count, event_created=observed)
    return record_invoice_state(invoice, progress, observed * 1000, ports)


def record_invoice_state(
    invoice: StripeInvoice, progress: InvoiceProgress, observed_at_ms: int, ports: EventPorts
) -> EventOutcome:
    """Move the invoice's record to ``progress`` if that is further along than what is stored."""
    record = find_invoice_record(invoice, ports.invoices)
    if record is None:
        if _names_unknown_account(invoice, ports):
            log.warning(
                "stripe invoice names an account billing does not have; not applied yet",
                extra={"stripeInvoiceId": invoice.id, "userId": invoice.metadata.get("userId")},
            )
            return EventOutcome.UNKNOWN_ACCOUNT
        log.info("stripe invoice unknown to billing; acknowledged", extra={"stripeInvoiceId": invoice.id})
        return EventOutcome.UNKNOWN
    for _ in range(WRITE_ATTEMPTS):
        if not _is_billed_by(record, invoice):
            return EventOutcome.UNKNOWN
        stored_key = stored_order_key(record)
        if progress.order_key <= stored_key:
            return EventOutcome.UNCHANGED
        changes = _invoice_changes(invoice, progress, observed_at_ms, ports.now_ms())
        conditions = [
            FieldIs.one_of("status", *sorted(allowed_predecessors(progress.status))),
            FieldIs.one_of("status_order", record.payment.status_order)
            if record.payment.status_order is not None
            else FieldIs.absent("status_order"),
            # The job may record its own draft meanwhile: never overwrite it with another invoice's id.
            FieldIs.one_of("stripe_invoice_id", invoice.id, or_absent=True),
        ]
        try:
            ports.invoices.update(record.account_id, record.invoice_id, changes, conditions=conditions)
        except ConditionFailed as refused:
            # Someone else wrote first (another worker, or the billing run): decide again on their result.
            if refused.current is None:
                return EventOutcome.UNKNOWN
            record = refused.current
            continue
        except NotFound:
            return EventOutcome.UNKNOWN
        return EventOutcome.APPLIED
    raise UpdateConflict(f"invoice record {record.invoice_id} kept changing while an event was applied")


def stored_order_key(record: Invoice) -> str:
    """How far along a record is: its stored order key, or the key of its status if that is further.

    The billing run advances ``status`` without an order key (it knows no attempts), so both count.
    """
    from_status = InvoiceProgress(record.status).order_key
    return max(record.payment.status_order or "", from_status)


def _names_unknown_account(invoice: StripeInvoice, ports: EventPorts) -> bool:
    """Whether the invoice's metadata names an account billing does not have, nor a record of it."""
    if not names_unknown_account(invoice.metadata, ports.accounts):
        return False
    invoice_id = invoice.metadata.get("invoiceId")
    return not invoice_id or ports.invoices.get(invoice.metadata["userId"], invoice_id) is None


def find_invoice_record(invoice: StripeInvoice, invoices: InvoiceRepository) -> Invoice | None:
    """The record a Stripe invoice belongs to: by its metadata (userId, invoiceId), else by its Stripe id.

    Metadata alone is not proof: the invoice must be the record's (or the record has none yet) and be
    addressed to the record's Stripe customer.
    """
    account_id, invoice_id = invoice.metadata.get("userId"), invoice.metadata.get("invoiceId")
    record = invoices.get(account_id, invoice_id) if account_id and invoice_id else None
    if record is None:
        record = invoices.find_by_stripe_invoice_id(invoice.id)
    if record is None or not _is_billed_by(record, invoice):
        return None
    return record


def _is_billed_by(record: Invoice, invoice: StripeInvoice) -> bool:
    """Whether ``invoice`` may be the record's Stripe invoice; logs why not when it may not."""
    if record.stripe.invoice_id not in (None, invoice.id):
        # The record was billed through another Stripe invoice (e.g. a voided draft was replaced).
        reason = "stripe invoice names a record billed by another invoice; ignored"
    elif record.stripe.customer_id and invoice.customer_id != record.stripe.customer_id:
        # Metadata can be copied onto any invoice; only the record's own customer is billed through it.
        reason = "stripe invoice of another customer names a record; ignored"
    else:
        return True
    log.warning(reason, extra={"stripeInvoiceId": invoice.id, "invoiceId": record.invoice_id})
    return False


def _invoice_changes(
    invoice: StripeInvoice, progress: InvoiceProgress, observed_at_ms: int, now_ms: int
) -> InvoiceChanges:
    """Every field an applied state writes: the same set each time, ``None`` removing what Stripe no longer says."""
    paid_at = invoice.status_transitions.paid_at
    return {
        "status": progress.status,
        "status_order": progress.order_key,
        "stripe_invoice_id": invoice.id,
        "attempt_count": invoice.attempt_count,
        "last_event_at": observed_at_ms,
        "updated_at": now_ms,
        "number": invoice.number,
        "hosted_invoice_url": invoice.hosted_invoice_url,
        "invoice_pdf": invoice.invoice_pdf,
        "next_payment_attempt": epoch_ms(invoice.next_payment_attempt),
        "paid_at": epoch_ms(paid_at) if progress.status is InvoiceStatus.PAID else None,
        # Why Stripe could not finalize (invoice.finalization_failed); gone once it finalized.
        "finalization_error": invoice.finalization_error,
    }
