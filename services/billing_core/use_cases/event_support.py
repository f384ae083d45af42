"""What every Stripe event handler shares: the event as delivered, the ports, the outcome, reading helpers."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from billing_core.ports import AccountRepository, InvoiceRepository, PaymentGateway, ProcessedEvents, StripeObject

# Conditional writes retried this often when another writer keeps winning, then UpdateConflict.
WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class DeliveredEvent:
    """A Stripe event as a handler sees it: its identity, time, object and previous attributes."""

    id: str
    type: str
    created: int  # epoch seconds
    object: StripeObject
    previous_attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def created_ms(self) -> int:
        """``created`` in epoch milliseconds, as records store times."""
        return self.created * 1000


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


EventHandler = Callable[[DeliveredEvent, EventPorts], EventOutcome]
"""Applies one event type's rule to the records; tolerates repeats and any order."""


def stripe_id(value: Any) -> str | None:
    """A Stripe reference as an id, whether it came as an id or as an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def integer(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def epoch_ms(epoch_seconds: Any) -> int | None:
    seconds = integer(epoch_seconds)
    return seconds * 1000 if seconds else None
