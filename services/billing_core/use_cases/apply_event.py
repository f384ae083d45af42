"""Apply Stripe events to the billing records: invoice status, payment methods and customer data.

Stripe delivers each event at least once, in no guaranteed order, for up to three days. Two rules
keep the records true anyway:

- **Exactly once per event id.** ``process_event`` claims the event id in the ledger before it
  applies the event and marks it done after (see ``ProcessedEvents.claim_event`` for the race).
- **Forward only.** An invoice record takes the state an event implies only if that state is further
  along than the stored one (``domain.lifecycle``). The write is conditional on the status being one
  of the new status's allowed predecessors *and* on the stored order key being the one read, so two
  workers racing cannot move a record backward either; the loser re-reads and usually finds it has
  nothing left to do.

Each applied invoice state writes the same set of attributes (set or removed), so the final record
depends only on the furthest-along event, whatever the order and number of deliveries.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from billing_core.domain.lifecycle import (
    EVENT_STATUS,
    InvoiceProgress,
    InvoiceStatus,
    allowed_predecessors,
    progress_for_event,
)
from billing_core.domain.records import (
    Account,
    AccountChanges,
    Invoice,
    InvoiceChanges,
    SavedPaymentMethod,
    SetupFailure,
)
from billing_core.errors import ConditionFailed, InvalidStripeEvent, NotFound, UpdateConflict
from billing_core.ports import (
    AccountRepository,
    EventClaim,
    FieldIs,
    InvoiceRepository,
    PaymentGateway,
    ProcessedEvents,
    StripeObject,
)

log = logging.getLogger(__name__)

INVOICE_EVENT_TYPES = frozenset(EVENT_STATUS)
ACCOUNT_EVENT_TYPES = frozenset(
    {"setup_intent.succeeded", "setup_intent.setup_failed", "payment_method.detached", "customer.updated"}
)
# Everything else Stripe sends is acknowledged by the webhook receiver and never enqueued.
HANDLED_EVENT_TYPES = INVOICE_EVENT_TYPES | ACCOUNT_EVENT_TYPES

# A claim outlives a normal application by far; it equals the stripe-events visibility timeout, so a
# crashed worker's event is free again about when SQS shows its message again.
CLAIM_LEASE_SECONDS = 60
# Stripe retries for three days; done markers are kept for a week so any late copy is recognised.
DONE_RETENTION_SECONDS = 7 * 24 * 3600
_WRITE_ATTEMPTS = 5


class EventOutcome(StrEnum):
    """What handling one event did."""

    APPLIED = "applied"  # a record changed
    UNCHANGED = "unchanged"  # the record already reflects this or a later state (late or repeated event)
    UNKNOWN = "unknown"  # no record of this system for the invoice or customer: logged and acknowledged
    IGNORED = "ignored"  # an event type this system does not use
    DUPLICATE = "duplicate"  # this event id was applied before
    IN_PROGRESS = "in_progress"  # another worker is applying this event id right now


@dataclass
class EventPorts:
    """What applying events needs: the two record tables, the processed events and Stripe."""

    invoices: InvoiceRepository
    accounts: AccountRepository
    payments: PaymentGateway
    events: ProcessedEvents
    clock: Callable[[], float] = time.time

    def now_ms(self) -> int:
        """The current time in epoch milliseconds, as records store it."""
        return int(self.clock() * 1000)


# --- entry: exactly once ---------------------------------------------------------------------------


def process_event(event: Mapping[str, Any], ports: EventPorts) -> EventOutcome:
    """Apply a delivered event once per event id: claim it, apply it, mark it done."""
    event_id, event_type = event_identity(event)
    if event_type not in HANDLED_EVENT_TYPES:
        return EventOutcome.IGNORED
    claim = ports.events.claim_event(
        event_id, lease_seconds=CLAIM_LEASE_SECONDS, retention_seconds=DONE_RETENTION_SECONDS
    )
    if claim is EventClaim.DONE:
        return EventOutcome.DUPLICATE
    if claim is EventClaim.IN_PROGRESS:
        return EventOutcome.IN_PROGRESS
    try:
        outcome = apply_event(event, ports)
    except BaseException:
        # Free the claim so the redelivery can try at once instead of waiting for the lease.
        ports.events.release_event(event_id)
        raise
    ports.events.complete_event(event_id, retention_seconds=DONE_RETENTION_SECONDS)
    return outcome


def event_identity(event: Any) -> tuple[str, str]:
    """The event's id and type; ``InvalidStripeEvent`` if it is not shaped like a Stripe event."""
    if not isinstance(event, Mapping):
        raise InvalidStripeEvent("the payload is not a JSON object")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        raise InvalidStripeEvent("the payload has no event id or type")
    data = event.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
        raise InvalidStripeEvent("the payload has no data.object")
    return event_id, event_type


# --- the rules -------------------------------------------------------------------------------------


def apply_event(event: Mapping[str, Any], ports: EventPorts) -> EventOutcome:
    """Apply one event's rule to the records (no deduplication: every rule here tolerates repeats)."""
    event_id, event_type = event_identity(event)
    obj = event["data"]["object"]
    created = _int(event.get("created"))
    if event_type in INVOICE_EVENT_TYPES:
        progress = progress_for_event(event_type, created, _int(obj.get("attempt_count")))
        assert progress is not None  # every invoice event type maps to a status
        if event_type == "invoice.finalization_failed":
            log.error("Stripe could not finalize an invoice",
                      extra={"eventId": event_id, "stripeInvoiceId": obj.get("id"),
                             "reason": (obj.get("last_finalization_error") or {}).get("message")})
        outcome = record_invoice_state(obj, progress, created * 1000, ports)
    elif event_type == "setup_intent.succeeded":
        outcome = _setup_intent_succeeded(obj, created * 1000, ports)
    elif event_type == "setup_intent.setup_failed":
        outcome = _setup_intent_failed(obj, created * 1000, ports)
    elif event_type == "payment_method.detached":
        previous = (event["data"].get("previous_attributes") or {}).get("customer")
        outcome = _payment_method_detached(obj, previous, created * 1000, ports)
    elif event_type == "customer.updated":
        outcome = _customer_updated(obj, created * 1000, ports)
    else:
        return EventOutcome.IGNORED
    log.info("stripe event applied", extra={"eventId": event_id, "eventType": event_type, "outcome": outcome.value})
    return outcome


# --- invoices --------------------------------------------------------------------------------------

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
_SNAPSHOT_TIME = {"paid": "paid_at", "void": "voided_at", "uncollectible": "marked_uncollectible_at",
                  "open": "finalized_at"}


def record_invoice_snapshot(invoice: StripeObject, ports: EventPorts) -> EventOutcome:
    """Bring the invoice's record up to the state of a Stripe invoice object (reconciliation)."""
    status = _SNAPSHOT_STATUS.get(invoice.get("status") or "")
    if status is None:
        return EventOutcome.IGNORED
    transitions = invoice.get("status_transitions") or {}
    observed = _int(transitions.get(_SNAPSHOT_TIME.get(invoice["status"], ""))) or _int(invoice.get("created"))
    progress = InvoiceProgress(status, attempt_count=_int(invoice.get("attempt_count")), event_created=observed)
    return record_invoice_state(invoice, progress, observed * 1000, ports)


def record_invoice_state(
    invoice: StripeObject, progress: InvoiceProgress, observed_at_ms: int, ports: EventPorts
) -> EventOutcome:
    """Move the invoice's record to ``progress`` if that is further along than what is stored."""
    record = find_invoice_record(invoice, ports.invoices)
    if record is None:
        log.info("stripe invoice unknown to billing; acknowledged", extra={"stripeInvoiceId": invoice.get("id")})
        return EventOutcome.UNKNOWN
    for _ in range(_WRITE_ATTEMPTS):
        if not _is_billed_by(record, invoice):
            return EventOutcome.UNKNOWN
        stored_key = stored_order_key(record)
        if progress.order_key <= stored_key:
            return EventOutcome.UNCHANGED
        changes = _invoice_changes(invoice, progress, observed_at_ms, ports.now_ms())
        conditions = [
            FieldIs.one_of("status", *sorted(allowed_predecessors(progress.status))),
            FieldIs.one_of("status_order", record.status_order)
            if record.status_order is not None
            else FieldIs.absent("status_order"),
            # The job may record its own draft meanwhile: never overwrite it with another invoice's id.
            FieldIs.one_of("stripe_invoice_id", invoice["id"], or_absent=True),
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
    return max(record.status_order or "", from_status)


def find_invoice_record(invoice: StripeObject, invoices: InvoiceRepository) -> Invoice | None:
    """The record a Stripe invoice belongs to: by its metadata (userId, invoiceId), else by its Stripe id.

    Metadata alone is not proof: the invoice must be the record's (or the record has none yet) and be
    addressed to the record's Stripe customer.
    """
    metadata = invoice.get("metadata") or {}
    account_id, invoice_id = metadata.get("userId"), metadata.get("invoiceId")
    record = invoices.get(str(account_id), str(invoice_id)) if account_id and invoice_id else None
    if record is None and invoice.get("id"):
        record = invoices.find_by_stripe_invoice_id(invoice["id"])
    if record is None or not _is_billed_by(record, invoice):
        return None
    return record


def _is_billed_by(record: Invoice, invoice: StripeObject) -> bool:
    """Whether ``invoice`` may be the record's Stripe invoice; logs why not when it may not."""
    if record.stripe_invoice_id not in (None, invoice.get("id")):
        # The record was billed through another Stripe invoice (e.g. a voided draft was replaced).
        reason = "stripe invoice names a record billed by another invoice; ignored"
    elif record.stripe_customer_id and _id(invoice.get("customer")) != record.stripe_customer_id:
        # Metadata can be copied onto any invoice; only the record's own customer is billed through it.
        reason = "stripe invoice of another customer names a record; ignored"
    else:
        return True
    log.warning(reason, extra={"stripeInvoiceId": invoice.get("id"), "invoiceId": record.invoice_id})
    return False


def _invoice_changes(
    invoice: StripeObject, progress: InvoiceProgress, observed_at_ms: int, now_ms: int
) -> InvoiceChanges:
    """Every field an applied state writes: the same set each time, ``None`` removing what Stripe no longer says."""
    transitions = invoice.get("status_transitions") or {}
    return {
        "status": progress.status,
        "status_order": progress.order_key,
        "stripe_invoice_id": str(invoice["id"]),
        "attempt_count": _int(invoice.get("attempt_count")),
        "last_event_at": observed_at_ms,
        "updated_at": now_ms,
        "number": _str(invoice.get("number")),
        "hosted_invoice_url": _str(invoice.get("hosted_invoice_url")),
        "invoice_pdf": _str(invoice.get("invoice_pdf")),
        "next_payment_attempt": _ms(invoice.get("next_payment_attempt")),
        "paid_at": _ms(transitions.get("paid_at")) if progress.status is InvoiceStatus.PAID else None,
        # Why Stripe could not finalize (invoice.finalization_failed); gone once it finalized.
        "finalization_error": _str((invoice.get("last_finalization_error") or {}).get("message")),
    }


# --- accounts: payment methods and customer data ------------------------------------------------------


def _setup_intent_succeeded(intent: StripeObject, event_ms: int, ports: EventPorts) -> EventOutcome:
    """Make the set-up payment method the customer's default in Stripe, then store it with its display fields."""
    payment_method_id = _id(intent.get("payment_method"))
    customer_id = _id(intent.get("customer"))
    account = find_account(customer_id, intent.get("metadata"), ports.accounts)
    if account is None or not payment_method_id or not customer_id:
        log.info("setup intent of an unknown customer; acknowledged", extra={"setupIntentId": intent.get("id")})
        return EventOutcome.UNKNOWN
    if (account.payment_method_changed_at or 0) > event_ms:
        return EventOutcome.UNCHANGED  # a later payment method change is already recorded
    ports.payments.set_default_payment_method(
        customer_id=customer_id,
        payment_method_id=payment_method_id,
        idempotency_key=f"default-payment-method:{intent['id']}",
    )
    payment_method = ports.payments.retrieve_payment_method(payment_method_id)
    return _store_payment_method(account, saved_payment_method(payment_method), event_ms, ports)


def _setup_intent_failed(intent: StripeObject, event_ms: int, ports: EventPorts) -> EventOutcome:
    """Record why setting up a payment method failed (codes only: messages may echo customer input)."""
    account = find_account(_id(intent.get("customer")), intent.get("metadata"), ports.accounts)
    if account is None:
        log.info("setup intent of an unknown customer; acknowledged", extra={"setupIntentId": intent.get("id")})
        return EventOutcome.UNKNOWN
    if (account.setup_failed_at or 0) >= event_ms:
        return EventOutcome.UNCHANGED
    error = intent.get("last_setup_error") or {}
    failure = SetupFailure(
        setup_intent_id=str(intent["id"]), code=_str(error.get("code")) or "unknown",
        decline_code=_str(error.get("decline_code")),
    )
    return _write_account(
        account, ports,
        lambda current: None if (current.setup_failed_at or 0) >= event_ms else {
            "last_setup_error": failure, "setup_failed_at": event_ms, "updated_at": ports.now_ms()
        },
        guard="setup_failed_at",
    )


def _payment_method_detached(
    payment_method: StripeObject, previous_customer: Any, event_ms: int, ports: EventPorts
) -> EventOutcome:
    """Forget the account's default payment method if it is the one detached."""
    account = find_account(_id(previous_customer), None, ports.accounts)
    if account is None:
        log.info("payment method of an unknown customer detached; acknowledged",
                 extra={"paymentMethodId": payment_method.get("id")})
        return EventOutcome.UNKNOWN

    def change(current: Account) -> AccountChanges | None:
        if current.payment_method is None or current.payment_method.id != payment_method["id"]:
            return None
        changed_at = max(event_ms, current.payment_method_changed_at or 0)
        return {"payment_method": None, "payment_method_changed_at": changed_at, "updated_at": ports.now_ms()}

    return _write_account(account, ports, change, guard="payment_method")


def _customer_updated(customer: StripeObject, event_ms: int, ports: EventPorts) -> EventOutcome:
    """Sync the customer's email and default payment method onto the account."""
    account = find_account(customer.get("id"), customer.get("metadata"), ports.accounts)
    if account is None:
        log.info("unknown customer updated; acknowledged", extra={"stripeCustomerId": customer.get("id")})
        return EventOutcome.UNKNOWN
    default_id = _id((customer.get("invoice_settings") or {}).get("default_payment_method"))
    payment_method = None
    if (
        default_id
        and default_id != _default_id(account)
        and (account.payment_method_changed_at or 0) <= event_ms
    ):
        payment_method = ports.payments.retrieve_payment_method(default_id)

    def change(current: Account) -> AccountChanges | None:
        changes: AccountChanges = {}
        if (current.customer_synced_at or 0) <= event_ms:
            email = _str(customer.get("email"))
            if email and email != current.email:
                changes["email"] = email
                changes["customer_synced_at"] = event_ms
        newer = (current.payment_method_changed_at or 0) <= event_ms
        if newer and default_id != _default_id(current):
            if default_id is None:
                changes["payment_method"] = None
                changes["payment_method_changed_at"] = event_ms
            elif payment_method is not None and payment_method.get("id") == default_id:
                changes["payment_method"] = saved_payment_method(payment_method)
                changes["payment_method_changed_at"] = event_ms
        if not changes:
            return None
        changes["updated_at"] = ports.now_ms()
        return changes

    return _write_account(account, ports, change, guard="updated_at")


def _store_payment_method(
    account: Account, method: SavedPaymentMethod, event_ms: int, ports: EventPorts
) -> EventOutcome:
    def change(current: Account) -> AccountChanges | None:
        if (current.payment_method_changed_at or 0) > event_ms or current.payment_method == method:
            return None
        return {"payment_method": method, "payment_method_changed_at": event_ms, "updated_at": ports.now_ms()}

    return _write_account(account, ports, change, guard="payment_method_changed_at")


def saved_payment_method(payment_method: StripeObject) -> SavedPaymentMethod:
    """The display fields of a Stripe payment method (brand and last four only, never more)."""
    kind = payment_method.get("type")
    details = (payment_method.get(kind) or {}) if isinstance(kind, str) else {}
    return SavedPaymentMethod(
        id=str(payment_method["id"]),
        type=kind if isinstance(kind, str) and kind else "unknown",
        brand=_str(details.get("brand")),
        last4=_str(details.get("last4")),
    )


def find_account(
    customer_id: str | None, metadata: Mapping[str, Any] | None, accounts: AccountRepository
) -> Account | None:
    """The account of a Stripe customer: through the customer index, else the ``userId`` in the metadata."""
    if not customer_id:
        return None
    account = accounts.find_by_stripe_customer_id(customer_id)
    if account is None and metadata and metadata.get("userId"):
        candidate = accounts.get(str(metadata["userId"]))
        if candidate is not None and candidate.stripe_customer_id == customer_id:
            account = candidate
    return account


def _default_id(account: Account) -> str | None:
    return account.payment_method.id if account.payment_method else None


def _write_account(
    account: Account,
    ports: EventPorts,
    change: Callable[[Account], AccountChanges | None],
    *,
    guard: str,
) -> EventOutcome:
    """Compare-and-set on the account: the write holds only if the field ``guard`` is still what was read."""
    current = account
    for _ in range(_WRITE_ATTEMPTS):
        changes = change(current)
        if not changes:
            return EventOutcome.UNCHANGED
        value = getattr(current, guard)
        condition = FieldIs.one_of(guard, value) if value is not None else FieldIs.absent(guard)
        try:
            ports.accounts.update(current.account_id, changes, conditions=[condition])
        except ConditionFailed as refused:
            if refused.current is None:
                return EventOutcome.UNKNOWN
            current = refused.current
            continue
        except NotFound:
            return EventOutcome.UNKNOWN
        return EventOutcome.APPLIED
    raise UpdateConflict(f"account {account.account_id} kept changing while an event was applied")


# --- helpers ---------------------------------------------------------------------------------------


def _id(value: Any) -> str | None:
    """A Stripe reference as an id, whether it came as an id or as an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _ms(epoch_seconds: Any) -> int | None:
    seconds = _int(epoch_seconds)
    return seconds * 1000 if seconds else None
