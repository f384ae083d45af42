"""The ``stripe-events`` consumer: each verified webhook event from the queue, applied once.

The rules live in ``billing_core.use_cases.apply_event``; this is only the entry point that turns a
queue message into an event and an outcome into "delete the message" or "show it again later".
"""

from __future__ import annotations

import logging
import threading

from billing_core.errors import StripeObjectNotFound
from billing_core.logging import correlation
from billing_core.ports import MessageQueue, ReceivedMessage, StripeEvent
from billing_core.use_cases.apply_event import EventOutcome, EventPorts, process_event
from billing_core.use_cases.receive_webhook import claimed_event_id, parse_event_body
from scheduler_worker.consumer import (
    FAILED_MESSAGE_RETRY_DELAY,
    MAX_RECEIVE_WAIT_SECONDS,
    PoisonMessage,
    QueueConsumer,
    RedeliverLater,
    RetryDelay,
)

log = logging.getLogger(__name__)

# Consumer threads per worker process: applying an event mostly waits on DynamoDB and Stripe.
STRIPE_EVENT_CONSUMERS = 4
# Another worker holds a live claim on the event: look again after this long (never dead-lettered for it).
IN_PROGRESS_RETRY_SECONDS = 15
# An event naming an account billing does not have is looked at again on the retry schedule (the
# account's record may still be on its way: 15 + 30 + 60 + 120 + 240 s by default), then dead-lettered
# with that reason; `billing events redrive` applies it once the account exists.
UNKNOWN_ACCOUNT_ATTEMPTS = 6


class StripeEventHandler:
    """Handles one ``stripe-events`` message; what it raises decides the message's retry (see ``consumer``)."""

    def __init__(self, ports: EventPorts, *, retry_delay: RetryDelay = FAILED_MESSAGE_RETRY_DELAY) -> None:
        self._ports = ports
        self._retry_delay = retry_delay

    def __call__(self, message: ReceivedMessage) -> None:
        """Apply the event in ``message``; returns normally when the message may be deleted."""
        # A body that is not a Stripe event raises InvalidStripeEvent: a poison message, dead-lettered at once.
        claimed = claimed_event_id(message.body)
        if claimed:
            # An event too large for the queue came as its id: Stripe's own copy is the event (API-key authenticated).
            try:
                event = self._ports.payments.retrieve_event(claimed)
            except StripeObjectNotFound:
                raise PoisonMessage(f"Stripe has no event {claimed}") from None
        else:
            event = parse_event_body(message.body)
        with correlation(event.id):
            outcome = process_event(event, self._ports)
            log.info(
                "stripe event handled",
                extra={
                    "eventId": event.id,
                    "eventType": event.type,
                    "outcome": outcome.value,
                    "receiveCount": message.receive_count,
                },
            )
        if outcome is EventOutcome.IN_PROGRESS:
            raise RedeliverLater(IN_PROGRESS_RETRY_SECONDS, "another worker is applying this event")
        if outcome is EventOutcome.UNKNOWN_ACCOUNT:
            if message.attempt < UNKNOWN_ACCOUNT_ATTEMPTS:
                raise RedeliverLater(self._retry_delay(message.attempt), "the event names an account not yet known")
            raise PoisonMessage(_unknown_account_reason(event, message.attempt))


def _unknown_account_reason(event: StripeEvent, attempts: int) -> str:
    metadata = getattr(event.object, "metadata", {})
    return (
        f"unknown account {metadata.get('userId')!r}: {event.type} {event.id} names it through "
        f"{event.object.id}'s metadata.userId, and no such account appeared in {attempts} attempts"
    )


def stripe_event_consumers(
    queue: MessageQueue,
    ports: EventPorts,
    stopping: threading.Event,
    *,
    count: int = STRIPE_EVENT_CONSUMERS,
    wait_seconds: int = MAX_RECEIVE_WAIT_SECONDS,
    retry_delay: RetryDelay = FAILED_MESSAGE_RETRY_DELAY,
) -> list[QueueConsumer]:
    """``count`` consumers of the ``stripe-events`` queue, each long-polling ``wait_seconds`` (``QUEUE_WAIT_SECONDS``).

    A message that failed for a transient reason comes back after ``retry_delay`` (15, 30, 60 s ... up
    to hours) and is never dead-lettered for it: an outage of Stripe or AWS only delays events Stripe
    was already told we received.
    """
    handler = StripeEventHandler(ports, retry_delay=retry_delay)
    return [
        QueueConsumer(
            f"stripe-events-{number}", queue, handler, stopping, retry_delay=retry_delay, wait_seconds=wait_seconds
        )
        for number in range(1, count + 1)
    ]
