"""Stripe's ``credit_note.*`` events: a credit note this system issued moves forward to Stripe's state.

The command that issues a credit note records it issued itself; the events make sure a crash between
Stripe's answer and that write, or a credit note voided at Stripe, still reaches the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from billing_core.ports import StripeEvent
from billing_core.ports.stripe_objects import StripeCreditNote
from billing_core.use_cases.credit_notes import apply_stripe_credit_note
from billing_core.use_cases.event_support import EventHandler, EventOutcome, EventPorts, object_of


def _credit_note_changed(event: StripeEvent, ports: EventPorts) -> EventOutcome:
    """Issued or voided at Stripe: the record follows, forward only."""
    stripe_note = object_of(event, StripeCreditNote)
    if ports.credit_notes is None or not stripe_note.metadata.get("creditNoteId"):
        return EventOutcome.UNKNOWN  # not issued by this system (e.g. in Stripe's dashboard)
    if apply_stripe_credit_note(stripe_note, ports.invoices, ports.credit_notes, ports.now_ms()):
        return EventOutcome.APPLIED
    return EventOutcome.UNCHANGED


CREDIT_NOTE_HANDLERS: Mapping[str, EventHandler] = MappingProxyType(
    {
        "credit_note.created": _credit_note_changed,
        "credit_note.updated": _credit_note_changed,
        "credit_note.voided": _credit_note_changed,
    }
)
