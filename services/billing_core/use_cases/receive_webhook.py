"""Take a webhook from Stripe: verify its signature on the raw body, then hand it to the queue.

No record is read or written here and Stripe is not called: the request path only verifies and
enqueues, so Stripe gets its 2xx fast, and a 2xx always means the event is safely in SQS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from billing_core.errors import InvalidStripeEvent, InvalidWebhookSignature
from billing_core.ports import MessageQueue, SecretsProvider, SignedEvent, StripeEvent, WebhookSignatures
from billing_core.use_cases.apply_event import HANDLED_EVENT_TYPES

SIGNATURE_TOLERANCE_SECONDS = 300
# The queues take messages up to 256 KiB (resources.Queue.max_message_bytes, pinned in Terraform), body
# and attributes together; a larger event is queued as a claim check (its id) and read from Stripe.
MAX_QUEUED_EVENT_BYTES = 250 * 1024
CLAIM_CHECK_KEY = "billingClaimCheck"


@dataclass(frozen=True)
class WebhookReceipt:
    """An accepted webhook: which event it carried and whether it was queued (unused types are not)."""

    event_id: str
    event_type: str
    enqueued: bool


class WebhookIntake:
    """Verifies Stripe webhooks against the current (and, during a rotation, the previous) secrets and enqueues them."""

    def __init__(
        self,
        secrets: SecretsProvider,
        queue: MessageQueue,
        signatures: WebhookSignatures,
        *,
        tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = secrets
        self._queue = queue
        self._signatures = signatures
        self._tolerance = tolerance_seconds
        self._clock = clock

    def accept(self, payload: bytes, signature_header: str | None) -> WebhookReceipt:
        """Verify and enqueue; raises ``InvalidWebhookSignature``, ``InvalidStripeEvent`` or ``StorageUnavailable``."""
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidStripeEvent("the body is not UTF-8") from None
        event = self._verified_event(text, signature_header)
        event_id, event_type = event.event_id, event.event_type
        if event_type not in HANDLED_EVENT_TYPES:
            return WebhookReceipt(event_id, event_type, enqueued=False)
        # Read it as the worker will: a signed body the worker could only dead-letter (an object without
        # its id, say) is refused now, where Stripe shows the failure and retries, not acknowledged.
        parse_event_body(text)
        attributes = {"eventId": event_id, "eventType": event_type}
        if len(payload) <= MAX_QUEUED_EVENT_BYTES:
            # The raw body goes on the queue: it is exactly what Stripe signed.
            self._queue.send(text, attributes)
        else:
            # Too large for an SQS message: queue a claim check; the worker reads the event from Stripe.
            self._queue.send(claim_check(event_id, event_type), {**attributes, "claimCheck": "stripe"})
        return WebhookReceipt(event_id, event_type, enqueued=True)

    def _verified_event(self, payload: str, header: str | None) -> SignedEvent:
        if not header:
            raise InvalidWebhookSignature("no Stripe-Signature header")
        self._check_timestamp(header)
        tried: set[str] = set()
        event = self._verify_with(payload, header, self._secrets.get().webhook_secrets, tried)
        if event is None:
            # Perhaps a secret was just added. The provider bounds its reads, so a flood of forged
            # signatures cannot become a flood of Secrets Manager reads.
            event = self._verify_with(payload, header, self._secrets.refresh().webhook_secrets, tried)
        if event is None:
            raise InvalidWebhookSignature("no webhook secret verifies the signature")
        return event

    def _verify_with(self, payload: str, header: str, secrets: tuple[str, ...], tried: set[str]) -> SignedEvent | None:
        for secret in secrets:
            if secret in tried:
                continue
            tried.add(secret)
            try:
                return self._signatures.verify(payload, header, secret, tolerance_seconds=self._tolerance)
            except InvalidWebhookSignature:
                continue
        return None

    def _check_timestamp(self, header: str) -> None:
        # The SDK rejects old timestamps only; a timestamp far in the future is just as much a replay risk.
        stamps = [part.split("=", 1)[1] for part in header.split(",") if part.startswith("t=")]
        try:
            timestamp = int(stamps[0])
        except (IndexError, ValueError):
            raise InvalidWebhookSignature("the Stripe-Signature header has no timestamp") from None
        if abs(self._clock() - timestamp) > self._tolerance:
            raise InvalidWebhookSignature("the signature timestamp is outside the tolerance")


def claim_check(event_id: str, event_type: str) -> str:
    """The message queued for an event too large for SQS: its id, to be read from Stripe."""
    return json.dumps({CLAIM_CHECK_KEY: {"source": "stripe", "eventId": event_id, "eventType": event_type}})


def claimed_event_id(body: str) -> str | None:
    """The event id of a claim-check message, or ``None`` for a message that carries its event."""
    if CLAIM_CHECK_KEY not in body[:200]:
        return None
    try:
        claim = json.loads(body).get(CLAIM_CHECK_KEY)
    except (ValueError, AttributeError):
        return None
    event_id = claim.get("eventId") if isinstance(claim, dict) else None
    return event_id if isinstance(event_id, str) and event_id.startswith("evt_") else None


def parse_event_body(body: str) -> StripeEvent:
    """A queued event body as the event it carries; ``InvalidStripeEvent`` if it is not a Stripe event."""
    try:
        event = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise InvalidStripeEvent("the message body is not JSON") from None
    return StripeEvent.from_json(event)
