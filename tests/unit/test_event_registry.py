"""One registry of Stripe event handlers, and everything that lists event types agrees with it."""

from __future__ import annotations

import re
from pathlib import Path

from billing_core.domain.lifecycle import EVENT_STATUS
from billing_core.use_cases.apply_event import HANDLED_EVENT_TYPES, HANDLERS
from billing_core.use_cases.receive_webhook import HANDLED_EVENT_TYPES as RECEIVED

ROOT = Path(__file__).resolve().parents[2]


def test_every_invoice_lifecycle_event_and_the_account_events_have_one_handler():
    assert set(EVENT_STATUS) <= set(HANDLERS)
    assert set(HANDLERS) - set(EVENT_STATUS) == {
        "setup_intent.succeeded",
        "setup_intent.setup_failed",
        "payment_method.detached",
        "customer.updated",
        "credit_note.created",
        "credit_note.updated",
        "credit_note.voided",
    }
    assert HANDLED_EVENT_TYPES == frozenset(HANDLERS) == RECEIVED


def test_the_webhook_subscription_the_deployment_guide_gives_is_exactly_the_handled_events():
    guide = (ROOT / "terraform" / "README.md").read_text()
    subscribed = set(re.findall(r"enabled_events\[\]=([a-z_.]+)", guide))
    assert subscribed == set(HANDLED_EVENT_TYPES)
