"""Tiny in-memory implementations of the ports, for fast unit tests of use cases.

The storage fakes live in ``storage_fakes`` and are re-exported here, so a test imports every fake
from one place.

They keep the behaviour that use cases depend on: conditional writes refuse like DynamoDB does,
stored numbers come back as ``Decimal``, floats are refused, queue messages reappear until deleted,
and the payment gateway replays a repeated idempotency key instead of doing the work twice.
``tests/unit/test_fakes.py`` holds them to that.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from billing_core.domain.costs import PAYER, ChargeCategory, ChargeType, CostAttribution, CostLine, CostReport, Period
from billing_core.ports import (
    CostSource,
    DeadLetter,
    DocumentStore,
    MessageQueue,
    ReceivedMessage,
    SecretsProvider,
    StripeSecrets,
)
from billing_core.ports.infrastructure import DEAD_LETTER_REASON, DEAD_LETTERED_AT, MAX_REASON_CHARS, RETRY_ATTEMPTS
from tests.support.payment_fakes import (  # noqa: F401 - one import place for every fake
    TEST_PAYMENT_METHODS,
    FakePaymentGateway,
    GatewayCall,
)
from tests.support.storage_fakes import (  # noqa: F401 - one import place for every fake
    FakeAccountRepository,
    FakeAuditLog,
    FakeCreditNotes,
    FakeDeliveries,
    FakeInvoiceRepository,
    FakeLeases,
    FakeMemberships,
    FakePeriodRates,
    FakePreviewCache,
    FakeProcessedEvents,
    FakeRequestLimits,
    FakeRunRecords,
    FakeUserDirectory,
)


@dataclass
class _QueuedMessage:
    message_id: str
    body: str
    attributes: dict[str, str]
    receive_count: int = 0
    invisible_until: float = float("-inf")
    receipt_handle: str | None = None


class FakeQueue(MessageQueue):
    """A queue with visibility timeouts, receive counts and a dead-letter queue after ``max_receive_count``.

    Time is ``clock()`` seconds; tests move it forward instead of sleeping.
    """

    def __init__(
        self, *, max_receive_count: int = 5, visibility_timeout: int = 30, clock: Callable[[], float] = lambda: 0.0
    ) -> None:
        self.max_receive_count = max_receive_count
        self.visibility_timeout = visibility_timeout
        self.clock = clock
        self.messages: list[_QueuedMessage] = []
        self.dead_lettered: list[_QueuedMessage] = []
        self._ids = itertools.count(1)
        self.batch_requests = 0

    @property
    def sent_bodies(self) -> list[Any]:
        """Bodies of every message still in the queue (JSON-decoded where possible)."""
        result = []
        for message in self.messages:
            try:
                result.append(json.loads(message.body, parse_float=Decimal))
            except ValueError:
                result.append(message.body)
        return result

    def send(self, body, attributes=None, *, group_id=None, dedupe_id=None, delay_seconds=0) -> str:
        """Append a message (visible after ``delay_seconds``)."""
        if not isinstance(body, str):
            raise TypeError("a message body is text")
        message_id = f"msg-{next(self._ids)}"
        self.messages.append(
            _QueuedMessage(
                message_id,
                body,
                dict(attributes or {}),
                invisible_until=self.clock() + delay_seconds if delay_seconds else float("-inf"),
            )
        )
        return message_id

    def send_batch(self, messages) -> list[str]:
        """Append every message, counting one request per ten, as SQS's batches go."""
        self.batch_requests += (len(messages) + 9) // 10
        return [self.send(message.body, message.attributes) for message in messages]

    def receive(self, *, max_messages=10, wait_seconds=0, visibility_timeout=None) -> list[ReceivedMessage]:
        """Visible messages; one received ``max_receive_count`` times already moves to the DLQ instead."""
        now = self.clock()
        received: list[ReceivedMessage] = []
        for message in list(self.messages):
            if len(received) >= max(1, min(max_messages, 10)) or message.invisible_until > now:
                continue
            if message.receive_count >= self.max_receive_count:
                self.messages.remove(message)
                self.dead_lettered.append(message)
                continue
            message.receive_count += 1
            message.invisible_until = now + (
                self.visibility_timeout if visibility_timeout is None else visibility_timeout
            )
            message.receipt_handle = f"{message.message_id}#{message.receive_count}"
            received.append(
                ReceivedMessage(
                    message.message_id,
                    message.body,
                    message.receipt_handle,
                    message.receive_count,
                    dict(message.attributes),
                )
            )
        return received

    def _by_receipt(self, receipt_handle: str) -> _QueuedMessage | None:
        return next((m for m in self.messages if m.receipt_handle == receipt_handle), None)

    def delete(self, receipt_handle: str) -> None:
        """Remove the message (a stale receipt handle is ignored, as SQS does)."""
        message = self._by_receipt(receipt_handle)
        if message:
            self.messages.remove(message)

    def change_visibility(self, receipt_handle: str, timeout_seconds: int) -> None:
        """Hide the message for ``timeout_seconds`` from now."""
        message = self._by_receipt(receipt_handle)
        if message:
            message.invisible_until = self.clock() + timeout_seconds

    def approximate_depth(self) -> int:
        """Messages not yet deleted."""
        return len(self.messages)

    def dead_letter_depth(self) -> int:
        """Messages moved to the dead-letter queue."""
        return len(self.dead_lettered)

    def dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        """Move the message to the dead-letter queue with its reason."""
        queued = self._by_receipt(message.receipt_handle)
        if queued is None:
            return
        self.messages.remove(queued)
        queued.attributes = {
            **queued.attributes,
            DEAD_LETTER_REASON: reason[:MAX_REASON_CHARS] or "no reason given",
            DEAD_LETTERED_AT: "1970-01-01T00:00:00+00:00",
            RETRY_ATTEMPTS: str(message.attempt),
        }
        self.dead_lettered.append(queued)

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The dead letters, oldest first, left in place."""
        return [
            DeadLetter(
                message.message_id,
                message.body,
                message.attributes.get(DEAD_LETTER_REASON),
                message.attributes.get(DEAD_LETTERED_AT),
                int(message.attributes.get(RETRY_ATTEMPTS, message.receive_count)),
            )
            for message in self.dead_lettered[:limit]
        ]

    def redrive(self, *, limit: int | None = None) -> int:
        """Send dead letters back as new messages without their failure attributes."""
        moving = self.dead_lettered[:limit] if limit is not None else list(self.dead_lettered)
        for message in moving:
            self.dead_lettered.remove(message)
            self.send(
                message.body,
                {
                    k: v
                    for k, v in message.attributes.items()
                    if k not in (DEAD_LETTER_REASON, DEAD_LETTERED_AT, RETRY_ATTEMPTS)
                },
            )
        return len(moving)


USAGE = ChargeType(ChargeCategory.USAGE, "Usage")


def _ordered(lines: Sequence[CostLine]) -> tuple[CostLine, ...]:
    """By scope, then service, as a cost source orders them."""
    return tuple(sorted(lines, key=lambda line: (line.scope or "", line.service)))


class FakeCostSource(CostSource):
    """Answers every query with the given lines; records each query in ``queries``, and counts ``calls``."""

    def __init__(
        self,
        lines: Sequence[CostLine] = (),
        *,
        estimated: bool = False,
        currency: str = "USD",
        forecast_total: Decimal | None = None,
    ) -> None:
        self.lines = tuple(lines)
        self.estimated = estimated
        self.currency = currency
        self.forecast_total = forecast_total
        self.queries: list[tuple[date, date, CostAttribution]] = []
        self.calls = 0  # queries of every kind (a forecast is not counted)
        # Earlier months, for corrections: period -> its (final) lines; and which of them are estimated.
        self.monthly: dict[Period, tuple[CostLine, ...]] = {}
        self.estimated_months: dict[Period, bool] = {}
        self.charge_types: dict[ChargeType, Decimal] | None = None

    def costs(self, start: date, end: date, attribution: CostAttribution = PAYER) -> CostReport:
        """The configured lines (only scoped ones when the attribution splits costs)."""
        self.calls += 1
        self.queries.append((start, end, attribution))
        lines = _ordered([line for line in self.lines if (line.scope is not None) == attribution.splits])
        return CostReport(start, end, self.currency, self.estimated, lines, attribution=attribution)

    def costs_by_month(self, start: date, end: date, attribution: CostAttribution = PAYER) -> list[CostReport]:
        """``monthly[period]`` lines for each month of the range that has some, else the lines for the last month."""
        self.calls += 1
        self.queries.append((start, end, attribution))
        scoped = attribution.splits
        reports = []
        for period, lines in sorted(self.monthly.items()):
            if start <= period.start and period.end <= end:
                kept = _ordered([line for line in lines if (line.scope is not None) == scoped])
                reports.append(
                    CostReport(
                        period.start,
                        period.end,
                        self.currency,
                        self.estimated_months.get(period, False),
                        kept,
                        attribution=attribution,
                    )
                )
        last = Period.containing(end - timedelta(days=1))
        if last not in self.monthly:
            kept = _ordered([line for line in self.lines if (line.scope is not None) == scoped])
            reports.append(
                CostReport(last.start, last.end, self.currency, self.estimated, kept, attribution=attribution)
            )
        return reports

    def costs_by_charge_type(self, start: date, end: date) -> dict[ChargeType, Decimal]:
        """The configured ``charge_types`` (default: every line as usage)."""
        self.calls += 1
        return (
            dict(self.charge_types)
            if self.charge_types is not None
            else {USAGE: sum((line.amount for line in self.lines), Decimal(0))}
        )

    def forecast(self, start: date, end: date) -> Decimal | None:
        """The configured forecast (``None`` by default, like moto)."""
        return self.forecast_total


class FakeSecretsProvider(SecretsProvider):
    """Fixed secrets; ``rotate()`` stages new ones that ``refresh()`` (not ``get()``) picks up."""

    def __init__(
        self,
        secret_key: str = "sk_test_fake",
        publishable_key: str = "pk_test_fake",
        webhook_secrets: Sequence[str] = ("whsec_fake",),
    ) -> None:
        self.current = StripeSecrets(secret_key, publishable_key, tuple(webhook_secrets))
        self._staged: StripeSecrets | None = None
        self.refreshes = 0

    def rotate(self, **changes: Any) -> None:
        """Stage rotated values, as if Secrets Manager changed while the cache is still fresh."""
        values = {
            "secret_key": self.current.secret_key,
            "publishable_key": self.current.publishable_key,
            "webhook_secrets": self.current.webhook_secrets,
            **changes,
        }
        values["webhook_secrets"] = tuple(values["webhook_secrets"])
        self._staged = StripeSecrets(**values)

    def get(self) -> StripeSecrets:
        """The cached secrets."""
        return self.current

    def refresh(self) -> StripeSecrets:
        """Pick up staged secrets."""
        self.refreshes += 1
        if self._staged is not None:
            self.current, self._staged = self._staged, None
        return self.current


class FakeDocumentStore(DocumentStore):
    """Files in a dict; writes once per key, like ``S3DocumentStore``."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}

    def put_once(self, key: str, body: bytes, content_type: str) -> bool:
        if key in self.files:
            return False
        self.files[key] = (bytes(body), content_type)
        return True

    def get(self, key: str) -> bytes | None:
        found = self.files.get(key)
        return None if found is None else found[0]
