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
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from billing_core.errors import InvalidStripeEvent
from billing_core.ports import EventClaim
from billing_core.use_cases.account_events import ACCOUNT_HANDLERS
from billing_core.use_cases.event_support import DeliveredEvent, EventHandler, EventOutcome, EventPorts, integer
from billing_core.use_cases.invoice_events import INVOICE_HANDLERS, record_invoice_snapshot

__all__ = ["EventOutcome", "EventPorts", "HANDLED_EVENT_TYPES", "HANDLERS", "apply_event", "event_identity",
           "process_event", "record_invoice_snapshot"]

log = logging.getLogger(__name__)

# The one list of the Stripe events this system uses: one handler per event type. The webhook
# endpoint's subscription, the receiver's filter, reconciliation and the docs all derive from it.
HANDLERS: Mapping[str, EventHandler] = MappingProxyType({**INVOICE_HANDLERS, **ACCOUNT_HANDLERS})
# Everything else Stripe sends is acknowledged by the webhook receiver and never enqueued.
HANDLED_EVENT_TYPES = frozenset(HANDLERS)

# A claim outlives a normal application by far; it equals the stripe-events visibility timeout, so a
# crashed worker's event is free again about when SQS shows its message again.
CLAIM_LEASE_SECONDS = 60
# Stripe retries for three days; done markers are kept for a week so any late copy is recognised.
DONE_RETENTION_SECONDS = 7 * 24 * 3600


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
    handler = HANDLERS.get(event_type)
    if handler is None:
        return EventOutcome.IGNORED
    data = event["data"]
    previous = data.get("previous_attributes")
    delivered = DeliveredEvent(event_id, event_type, integer(event.get("created")), dict(data["object"]),
                               previous if isinstance(previous, Mapping) else {})
    outcome = handler(delivered, ports)
    log.info("stripe event applied", extra={"eventId": event_id, "eventType": event_type, "outcome": outcome.value})
    return outcome
