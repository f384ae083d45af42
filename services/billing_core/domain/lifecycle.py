"""The invoice lifecycle and its forward-only rule.

    pending -> draft -> open -> payment_failed <-> action_required -> uncollectible -> paid | void
                                 (open and retrying)                  (or paid / void straight away)

A status only ever moves forward. Webhook events arrive late, twice and out of order, so "apply
the event" means "keep whichever of the stored and the implied state is further along":

- ``paid`` and ``void`` are terminal; nothing replaces them.
- ``uncollectible`` may still become ``paid`` (Stripe lets an uncollectible invoice be paid) or
  ``void``, but never ``open``/retrying again.
- ``payment_failed`` and ``action_required`` are both "open and retrying" and may replace each other:
  the outcome of a later payment attempt wins. "Later" is decided by the invoice's ``attempt_count``
  in the event (Stripe's ``created`` has one-second resolution and says nothing about attempts). For
  the same attempt ``action_required`` wins over ``payment_failed`` in either order, because Stripe
  sends both for an attempt that needs authentication and the customer still has to act; only then
  does the later ``created`` time decide, so the newest event of a status is the one recorded.

``InvoiceProgress.order_key`` encodes exactly this order as one string, so the rule is a comparison
("apply if the new key is greater") that is also usable as a DynamoDB condition; applying events
by that rule gives the same result in any order and with any duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class InvoiceStatus(StrEnum):
    """Where an invoice stands; the value is what the ``billing`` table stores."""

    PENDING = "pending"  # record claimed, amounts computed
    DRAFT = "draft"  # Stripe draft exists, lines added
    OPEN = "open"  # finalized; Stripe charges the default payment method
    PAYMENT_FAILED = "payment_failed"  # an attempt failed; Stripe retries
    ACTION_REQUIRED = "action_required"  # the customer must authenticate (SCA)
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"


TERMINAL = frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID})
RETRYING = frozenset({InvoiceStatus.PAYMENT_FAILED, InvoiceStatus.ACTION_REQUIRED})

# How far along each status is; a status is replaced only by one with a higher stage, except that the
# retrying statuses (same stage) replace each other by attempt order.
_STAGE: Mapping[InvoiceStatus, int] = MappingProxyType(
    {
        InvoiceStatus.PENDING: 0,
        InvoiceStatus.DRAFT: 1,
        InvoiceStatus.OPEN: 2,
        InvoiceStatus.PAYMENT_FAILED: 3,
        InvoiceStatus.ACTION_REQUIRED: 3,
        InvoiceStatus.UNCOLLECTIBLE: 4,
        InvoiceStatus.PAID: 5,
        InvoiceStatus.VOID: 5,
    }
)
_SAME_ATTEMPT_PREFERENCE = {InvoiceStatus.PAYMENT_FAILED: 0, InvoiceStatus.ACTION_REQUIRED: 1}

EVENT_STATUS: Mapping[str, InvoiceStatus] = MappingProxyType(
    {
        "invoice.finalized": InvoiceStatus.OPEN,
        "invoice.paid": InvoiceStatus.PAID,
        "invoice.payment_failed": InvoiceStatus.PAYMENT_FAILED,
        "invoice.payment_action_required": InvoiceStatus.ACTION_REQUIRED,
        "invoice.voided": InvoiceStatus.VOID,
        "invoice.marked_uncollectible": InvoiceStatus.UNCOLLECTIBLE,
        # Finalization failed: Stripe keeps the invoice a draft; the run's finalize step retries it.
        "invoice.finalization_failed": InvoiceStatus.DRAFT,
    }
)

_ATTEMPT_DIGITS = 10
_CREATED_DIGITS = 12  # epoch seconds; enough until the year 33658


def status_for_event(event_type: str) -> InvoiceStatus | None:
    """The status a Stripe invoice event implies, or None for events that do not move the lifecycle."""
    return EVENT_STATUS.get(event_type)


def may_move(current: InvoiceStatus | str, new: InvoiceStatus | str) -> bool:
    """Whether the status rule lets an invoice in ``current`` move to ``new``.

    True for any move further along, and between the retrying statuses (including a newer attempt with
    the same status; which attempt is newer is ``InvoiceProgress.supersedes``'s question).
    """
    current, new = InvoiceStatus(current), InvoiceStatus(new)
    if current in TERMINAL:
        return False
    if current in RETRYING and new in RETRYING:
        return True
    return _STAGE[new] > _STAGE[current]


_PREDECESSORS: Mapping[InvoiceStatus, frozenset[InvoiceStatus]] = MappingProxyType(
    {new: frozenset(s for s in InvoiceStatus if may_move(s, new)) for new in InvoiceStatus}
)


def allowed_predecessors(new: InvoiceStatus | str) -> frozenset[InvoiceStatus]:
    """Every status an update to ``new`` may start from (for a conditional write: ``status IN (...)``)."""
    return _PREDECESSORS[InvoiceStatus(new)]


@dataclass(frozen=True)
class InvoiceProgress:
    """A status together with which payment attempt reported it (only meaningful while retrying)."""

    status: InvoiceStatus
    attempt_count: int = 0  # the invoice's attempt_count in the event
    event_created: int = 0  # the event's created time, epoch seconds

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", InvoiceStatus(self.status))
        for name, digits in (("attempt_count", _ATTEMPT_DIGITS), ("event_created", _CREATED_DIGITS)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**digits:
                raise ValueError(f"{name} must be an int in [0, 10**{digits}), got {value!r}")

    @property
    def order_key(self) -> str:
        """A fixed-width string that sorts in lifecycle order; a greater key replaces a smaller one.

        Outside the retrying statuses the attempt and time are left out, so a duplicate or late event
        with the same status compares equal and changes nothing (``paid`` and ``void`` compare equal:
        both are terminal and neither replaces the other).
        """
        stage = _STAGE[self.status]
        if self.status in RETRYING:
            attempt, created = self.attempt_count, self.event_created
            preference = _SAME_ATTEMPT_PREFERENCE[self.status]
        else:
            attempt = created = preference = 0
        return f"{stage}-{attempt:0{_ATTEMPT_DIGITS}d}-{preference}-{created:0{_CREATED_DIGITS}d}"

    def supersedes(self, other: InvoiceProgress) -> bool:
        """Whether this state is further along than ``other`` (and so should replace it)."""
        return self.order_key > other.order_key


def progress_for_event(event_type: str, created: int, attempt_count: int = 0) -> InvoiceProgress | None:
    """The state a Stripe invoice event implies, or None for events that do not move the lifecycle."""
    status = status_for_event(event_type)
    if status is None:
        return None
    return InvoiceProgress(status, attempt_count=attempt_count, event_created=created)
