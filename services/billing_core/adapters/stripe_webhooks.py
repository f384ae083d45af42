"""Stripe's webhook signature check (the SDK's ``WebhookSignature``), then the event envelope, bounded.

The signature is checked on the raw body first, exactly as Stripe signed it. Only then is the body
read as JSON, and only if its nesting stays shallow: a signed body that is no event envelope (an
array, a string, ``null``, a 10,000-deep nesting) is an ``InvalidStripeEvent`` (400), never a 500.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import stripe

from billing_core.errors import InvalidStripeEvent, InvalidWebhookSignature
from billing_core.ports import SignedEvent, WebhookSignatures

# Stripe's events nest a few levels (event > data > object > lines > data > item > period); 64 is ample.
MAX_NESTING = 64
# A JSON string, or an unterminated one to the end of the text. Possessive and always matching, so the
# scan stays linear: a body of escaped quotes that never closes costs no more than any other.
_STRING = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class StripeWebhookSignatures(WebhookSignatures):
    """Verifies ``Stripe-Signature`` headers as Stripe's SDK does (HMAC-SHA256 over ``t.payload``)."""

    def verify(self, payload: str, header: str, secret: str, *, tolerance_seconds: int) -> SignedEvent:
        """The event ``payload`` carries if ``secret`` signed it; ``InvalidWebhookSignature`` if not."""
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance_seconds)
        except stripe.SignatureVerificationError:
            raise InvalidWebhookSignature("the secret does not verify the signature") from None
        envelope = event_envelope(payload)
        return SignedEvent(envelope["id"], envelope["type"])


def nesting_depth(text: str) -> int:
    """How deep ``[`` and ``{`` nest in a JSON text, counted outside its strings (before parsing it)."""
    structure = _STRING.sub("", text)
    steps = (_DEPTH_STEP.get(ord(c), 0) for c in structure if c in "[]{}")
    return max(accumulate(steps, initial=0))


def event_envelope(payload: str) -> dict[str, Any]:
    """The signed body as Stripe's event envelope (``id``, ``type``, ``data.object``); ``InvalidStripeEvent`` if not."""
    if nesting_depth(payload) > MAX_NESTING:
        raise InvalidStripeEvent(f"the body nests deeper than {MAX_NESTING} levels")
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):
        raise InvalidStripeEvent("the body is not JSON") from None
    if not isinstance(event, dict):
        raise InvalidStripeEvent("the body is not a JSON object")
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        raise InvalidStripeEvent("the event has no id or type")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise InvalidStripeEvent("the event has no data.object")
    return event
