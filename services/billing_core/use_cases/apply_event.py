"""Apply Stripe events to the billing records through one registry of handlers, each event id once.

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
import uuid
from collections.abc import Mapping
from types import MappingProxyType

from billing_core.errors import BillingError
from billing_core.ports import EventClaim, StripeEvent
from billing_core.renewal import RenewedWhile
from billing_core.use_cases.account_events import ACCOUNT_HANDLERS
from billing_core.use_cases.credit_note_events import CREDIT_NOTE_HANDLERS
from billing_core.use_cases.event_support import EventHandler, EventOutcome, EventPorts
from billing_core.use_cases.invoice_events import INVOICE_HANDLERS, record_invoice_snapshot

__all__ = [
    "EventOutcome",
    "EventPorts",
    "HANDLED_EVENT_TYPES",
    "HANDLERS",
    "apply_event",
    "process_event",
    "record_invoice_snapshot",
]

log = logging.getLogger(__name__)

# The one list of the Stripe events this system uses: one handler per event type. The webhook
# endpoint's subscription, the receiver's filter, reconciliation and the docs all derive from it.
HANDLERS: Mapping[str, EventHandler] = MappingProxyType(
    {**INVOICE_HANDLERS, **ACCOUNT_HANDLERS, **CREDIT_NOTE_HANDLERS}
)
# Everything else Stripe sends is acknowledged by the webhook receiver and never enqueued.
HANDLED_EVENT_TYPES = frozenset(HANDLERS)

# A claim outlives a normal application by far, and the stripe-events visibility (30 s, extended while
# the event is applied): a crashed worker's event is free again soon after SQS shows its message again.
# A slow application (a stalled Stripe) keeps its claim: it is renewed every third of this while it runs.
CLAIM_LEASE_SECONDS = 60
CLAIM_RENEW_EVERY_SECONDS = CLAIM_LEASE_SECONDS / 3
# Stripe retries for three days; done markers are kept for a week so any late copy is recognised.
DONE_RETENTION_SECONDS = 7 * 24 * 3600


# --- entry: exactly once ---------------------------------------------------------------------------


def process_event(event: StripeEvent, ports: EventPorts) -> EventOutcome:
    """Apply a delivered event once per event id: claim it, apply it (keeping the claim), mark it done."""
    event_id = event.id
    if event.type not in HANDLED_EVENT_TYPES:
        return EventOutcome.IGNORED
    owner = uuid.uuid4().hex  # this attempt: only it may complete or release its claim
    claim = ports.events.claim_event(
        event_id, owner=owner, lease_seconds=CLAIM_LEASE_SECONDS, retention_seconds=DONE_RETENTION_SECONDS
    )
    if claim is EventClaim.DONE:
        return EventOutcome.DUPLICATE
    if claim is EventClaim.IN_PROGRESS:
        return EventOutcome.IN_PROGRESS
    try:
        with _claim_kept(ports, event_id, owner):
            outcome = apply_event(event, ports)
    except BaseException:
        # Free the claim so the redelivery can try at once instead of waiting for the lease.
        ports.events.release_event(event_id, owner=owner)
        raise
    if outcome is EventOutcome.UNKNOWN_ACCOUNT:
        # Not applied: a later delivery (or a redrive, or reconciliation) applies it once the account exists.
        ports.events.release_event(event_id, owner=owner)
        return outcome
    if not ports.events.complete_event(event_id, owner=owner, retention_seconds=DONE_RETENTION_SECONDS):
        # This attempt stalled past its lease and another worker claimed the event: that one counts it.
        # What this attempt wrote was conditional on the records' state, so it moved nothing backward.
        log.warning(
            "stripe event was taken over by another worker while this one applied it",
            extra={"eventId": event_id, "eventType": event.type},
        )
        return EventOutcome.DUPLICATE
    return outcome


def _claim_kept(ports: EventPorts, event_id: str, owner: str) -> RenewedWhile:
    """Renews the claim every third of its lease while the event is applied, until it is not ours."""

    def renew() -> bool:
        try:
            return ports.events.renew_event_claim(event_id, owner=owner, lease_seconds=CLAIM_LEASE_SECONDS)
        except BillingError:
            log.warning("could not renew an event claim", extra={"eventId": event_id})
            return True

    return RenewedWhile(renew, CLAIM_RENEW_EVERY_SECONDS, "keep-claim")


# --- the rules -------------------------------------------------------------------------------------


def apply_event(event: StripeEvent, ports: EventPorts) -> EventOutcome:
    """Apply one event's rule to the records (no deduplication: every rule here tolerates repeats)."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        return EventOutcome.IGNORED
    outcome = handler(event, ports)
    log.info("stripe event applied", extra={"eventId": event.id, "eventType": event.type, "outcome": outcome.value})
    return outcome
