"""What every Stripe event handler shares: the ports, the outcome, the object of the event."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from billing_core.errors import InvalidStripeEvent
from billing_core.ports import (
    AccountRepository,
    CreditNoteRepository,
    EventObject,
    InvoiceRepository,
    PaymentGateway,
    ProcessedEvents,
    StripeEvent,
)

ObjectT = TypeVar("ObjectT", bound=EventObject)

# Conditional writes retried this often when another writer keeps winning, then UpdateConflict.
WRITE_ATTEMPTS = 5


class EventOutcome(StrEnum):
    """What handling one event did."""

    APPLIED = "applied"  # a record changed
    UNCHANGED = "unchanged"  # the record already reflects this or a later state (late or repeated event)
    UNKNOWN = "unknown"  # no record of this system for the invoice or customer: logged and acknowledged
    # The object names an account of this system (``metadata.userId``) that does not exist: not applied
    # and not marked done, so a later delivery can apply it once the account exists (the worker looks
    # again for a while, then dead-letters it for the operator).
    UNKNOWN_ACCOUNT = "unknown_account"
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
    # Pay the account's failed invoices again once its customer saved a new payment method.
    retry_failed_on_new_payment_method: bool = True
    credit_notes: CreditNoteRepository | None = None  # None: a process that issues no credit notes

    def now_ms(self) -> int:
        """The current time in epoch milliseconds, as records store it."""
        return int(self.clock() * 1000)


EventHandler = Callable[[StripeEvent, EventPorts], EventOutcome]
"""Applies one event type's rule to the records; tolerates repeats and any order."""


def object_of(event: StripeEvent, kind: type[ObjectT]) -> ObjectT:
    """The event's object, which its type says is a ``kind``; ``InvalidStripeEvent`` if it is not."""
    if not isinstance(event.object, kind):
        raise InvalidStripeEvent(f"event {event.id} of type {event.type} does not carry a {kind.__name__}")
    return event.object


def epoch_ms(epoch_seconds: int | None) -> int | None:
    """Stripe's epoch seconds as the epoch milliseconds records store (``None`` and 0 stay unset)."""
    return epoch_seconds * 1000 if epoch_seconds else None


def names_unknown_account(metadata: Mapping[str, str], accounts: AccountRepository) -> bool:
    """Whether ``metadata`` links an object to an account of this system (``userId``) that does not exist."""
    account_id = metadata.get("userId")
    return account_id is not None and account_id != "" and accounts.get(account_id) is None
