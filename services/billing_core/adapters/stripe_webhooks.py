"""Stripe's webhook signature check, through the SDK (``stripe.Webhook.construct_event``)."""
from __future__ import annotations

import stripe

from billing_core.errors import InvalidStripeEvent, InvalidWebhookSignature
from billing_core.ports import SignedEvent, WebhookSignatures


class StripeWebhookSignatures(WebhookSignatures):
    """Verifies ``Stripe-Signature`` headers as Stripe's SDK does (HMAC-SHA256 over ``t.payload``)."""

    def verify(self, payload: str, header: str, secret: str, *, tolerance_seconds: int) -> SignedEvent:
        """The event ``payload`` carries if ``secret`` signed it; ``InvalidWebhookSignature`` if not."""
        try:
            event = stripe.Webhook.construct_event(payload, header, secret, tolerance=tolerance_seconds)
        except stripe.SignatureVerificationError:
            raise InvalidWebhookSignature("the secret does not verify the signature") from None
        except ValueError:  # signed, but not JSON
            raise InvalidStripeEvent("the body is not JSON") from None
        event_id, event_type = getattr(event, "id", None), getattr(event, "type", None)
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
            raise InvalidStripeEvent("the event has no id or type")
        return SignedEvent(event_id, event_type)
