"""Ports to AWS infrastructure: message queues, the AWS costs and the Stripe secrets in Secrets Manager."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from billing_core.domain.costs import PAYER, ChargeType, CostAttribution, CostReport, InvoicedCost, Period
from billing_core.domain.einvoice import EInvoice

# --- queues --------------------------------------------------------------------------------------

# Message attributes of the system's own: why and when a message was dead-lettered, and how many
# attempts an earlier copy of a renewed message had used (see the worker's consumer).
DEAD_LETTER_REASON = "deadLetterReason"
DEAD_LETTERED_AT = "deadLetteredAt"
RETRY_ATTEMPTS = "retryAttempts"
# What a dead letter's reason keeps of an error message (SQS counts attributes toward the message size).
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class ReceivedMessage:
    """A message taken from a queue; delete it with ``receipt_handle`` once it is handled."""

    message_id: str
    body: str
    receipt_handle: str
    receive_count: int = 1
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def attempt(self) -> int:
        """This delivery's attempt number, counting the receives of the copies it renewed."""
        earlier = self.attributes.get(RETRY_ATTEMPTS, "0")
        return (int(earlier) if earlier.isdigit() else 0) + self.receive_count


@dataclass(frozen=True)
class DeadLetter:
    """A message in a dead-letter queue, with the reason it was put there (``None``: SQS moved it after
    too many receives, so the worker handling it died or lost it each time)."""

    message_id: str
    body: str
    reason: str | None
    dead_lettered_at: str | None  # ISO 8601, UTC
    attempts: int  # deliveries before it was dead-lettered (as SQS counts them, for one it moved itself)


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to enqueue: its text and its string attributes."""

    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)


class MessageQueue(abc.ABC):
    """An SQS queue with a dead-letter queue behind it."""

    @abc.abstractmethod
    def send(
        self,
        body: str,
        attributes: Mapping[str, str] | None = None,
        *,
        group_id: str | None = None,
        dedupe_id: str | None = None,
        delay_seconds: int = 0,
    ) -> str:
        """Enqueue ``body`` (the message text, JSON for every queue of this system); returns the message id."""

    @abc.abstractmethod
    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Enqueue every message, ten to a request; returns their ids in order. Nothing is dropped: a
        message the queue refused is sent again, and if it still fails the call raises."""

    @abc.abstractmethod
    def receive(
        self, *, max_messages: int = 10, wait_seconds: int = 0, visibility_timeout: int | None = None
    ) -> list[ReceivedMessage]:
        """Take up to ``max_messages``, waiting at most ``wait_seconds`` for the first one."""

    @abc.abstractmethod
    def delete(self, receipt_handle: str) -> None:
        """Acknowledge a handled message."""

    @abc.abstractmethod
    def change_visibility(self, receipt_handle: str, timeout_seconds: int) -> None:
        """Hide a message for ``timeout_seconds`` more (0 makes it visible again now)."""

    @abc.abstractmethod
    def dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        """Move a received message to the dead-letter queue now, keeping ``reason`` with it."""

    @abc.abstractmethod
    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` messages of the dead-letter queue, left in it."""

    @abc.abstractmethod
    def redrive(self, *, limit: int | None = None) -> int:
        """Move dead letters (all, or ``limit``) back to this queue as new messages; how many moved."""

    @abc.abstractmethod
    def dead_letter_depth(self) -> int:
        """Messages waiting in this queue's dead-letter queue."""


# --- AWS costs ----------------------------------------------------------------------------------


class CostSource(abc.ABC):
    """AWS costs for a time range, from one query per call, without the charges it is set to leave out.

    Lines are per service, and under an attribution that ``splits`` also per scope (an account id, or
    a tag value with ``""`` for the untagged costs), ordered by scope, then service.
    """

    @abc.abstractmethod
    def costs(self, start: date, end: date, attribution: CostAttribution = PAYER) -> CostReport:
        """Costs from ``start`` (inclusive) to ``end`` (exclusive), attributed as asked."""

    @abc.abstractmethod
    def costs_by_month(self, start: date, end: date, attribution: CostAttribution = PAYER) -> list[CostReport]:
        """One query over ``start``..``end``: a report per calendar month the source answered for, oldest first.

        A month missing from the answer is missing here too (not a month of zero costs)."""

    @abc.abstractmethod
    def costs_by_charge_type(self, start: date, end: date) -> dict[ChargeType, Decimal]:
        """The payer account's costs by kind of charge (usage, tax, credits, ...), nothing left out."""

    @abc.abstractmethod
    def forecast(self, start: date, end: date) -> Decimal | None:
        """Forecast total for the range, or ``None`` when no forecast is available."""

    @property
    def excluded(self) -> tuple[ChargeType, ...]:
        """The charge types this source leaves out of ``costs`` and ``costs_by_month``."""
        return ()

    def invoiced(self, period: Period, attribution: CostAttribution = PAYER) -> list[InvoicedCost] | None:
        """The AWS invoices of billing period ``period``, in parts per scope, service and charge type,
        nothing left out; ``None`` when the source knows no invoices (Cost Explorer)."""
        return None


class FocusEngine(abc.ABC):
    """Runs the FOCUS cost source's SQL over the export's table, for the billing periods it names.

    The SQL is written once for both engines (DuckDB and Athena/Trino); the one expression the two
    spell differently, a tag's value, comes from ``tag_value``. ``{table}`` in the SQL is the table.
    Every value comes back as text (or ``None``), as Athena returns it.
    """

    @abc.abstractmethod
    def tag_value(self, key_literal: str) -> str:
        """The SQL expression of the value of tag ``key_literal`` (a quoted SQL string) in ``Tags``,
        NULL where the line has no such tag."""

    @abc.abstractmethod
    def query(self, sql: str, billing_periods: Sequence[str]) -> Iterable[tuple[str | None, ...]]:
        """The rows of ``sql`` over the export's partitions ``billing_periods`` (``YYYY-MM``), as they come
        (iterate once, to the end: an engine may stream them in batches)."""


# --- secrets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StripeSecrets:
    """The Stripe API keys and the webhook signing secrets (current first, then previous ones)."""

    secret_key: str = field(repr=False)
    publishable_key: str = field(repr=False)
    webhook_secrets: tuple[str, ...] = field(repr=False, default=())

    def __repr__(self) -> str:
        return f"StripeSecrets(<{len(self.webhook_secrets)} webhook secrets, values hidden>)"

    __str__ = __repr__


class SecretsProvider(abc.ABC):
    """Stripe secrets, cached and refreshed so a rotation is picked up without a restart."""

    @abc.abstractmethod
    def get(self) -> StripeSecrets:
        """The current secrets (from cache while it is fresh)."""

    @abc.abstractmethod
    def refresh(self) -> StripeSecrets:
        """Re-read the secrets now (e.g. when no cached webhook secret verifies a signature).

        An implementation may serve its cache instead if it read the secrets moments ago: callers may
        ask on every failed request, and the read rate must stay bounded.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<values hidden>)"


class DocumentStore(abc.ABC):
    """Where the e-invoice files are kept (S3: private, encrypted, versioned, retained)."""

    @abc.abstractmethod
    def put_once(self, key: str, body: bytes, content_type: str) -> bool:
        """Store ``body`` under ``key`` unless something is there already; whether it wrote."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The file under ``key`` (None if there is none)."""


class EInvoiceWriter(abc.ABC):
    """Writes an ``EInvoice`` as XRechnung XML and as a ZUGFeRD PDF holding that XML."""

    @abc.abstractmethod
    def xrechnung(self, invoice: EInvoice) -> bytes:
        """The XRechnung 3.0 document (UN/CEFACT CII)."""

    @abc.abstractmethod
    def zugferd(self, invoice: EInvoice, xml: bytes) -> bytes:
        """The PDF/A-3 invoice with ``xml`` embedded (ZUGFeRD, EN 16931 profile)."""
