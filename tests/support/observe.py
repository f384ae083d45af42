"""What tests read beside the ports: counters and depths no product code needs."""

from __future__ import annotations

from typing import Any

from billing_core.adapters.dynamodb_events import EVENT_PREFIX, DynamoProcessedEvents
from billing_core.adapters.sqs import SqsMessageQueue


def event_applications(ledger: Any, event_id: str) -> int:
    """How many times ``event_id`` was applied (0 if never; more than 1 would be a bug)."""
    if isinstance(ledger, DynamoProcessedEvents):
        item = ledger._get(ledger._key(EVENT_PREFIX + event_id))
        return int(item.get("applications", 0)) if item else 0
    return int(ledger.event_applications(event_id))


def waiting_messages(queue: Any) -> int:
    """Messages waiting in the queue (SQS's ``ApproximateNumberOfMessages``; the fake's own count)."""
    if isinstance(queue, SqsMessageQueue):
        return queue._depth(queue.queue_url)
    return int(queue.approximate_depth())
