"""The ports: what use cases need from storage, queues, Cost Explorer, Secrets Manager and Stripe.

Use cases depend on these abstract classes only. ``billing_core.adapters`` implements them over
boto3 and the Stripe SDK; ``tests/fakes.py`` implements them in memory for unit tests.

Stored items are plain dicts with DynamoDB's attribute names (``userId``, ``stripeInvoiceId``,
``amount`` ...). Money inside them is ``Decimal``; timestamps are epoch milliseconds. Every number
comes back as ``Decimal`` (as boto3 returns it) and a ``float`` is refused on the way in.
Stripe objects are plain dicts shaped like Stripe's own objects (``id``, ``status``, ``metadata``).
"""
from __future__ import annotations

import abc
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from billing_core.domain.costs import CostReport

Item = dict[str, Any]
StripeObject = dict[str, Any]


# --- conditions on stored items --------------------------------------------------------------------


@dataclass(frozen=True)
class FieldIs:
    """Guard for a conditional write: attribute ``name`` holds one of ``values``.

    ``or_absent`` also accepts an item where the attribute does not exist. ``FieldIs("x")`` with no
    values and ``or_absent=True`` means "x must not exist yet".
    """

    name: str
    values: tuple[Any, ...] = ()
    or_absent: bool = False

    @classmethod
    def one_of(cls, name: str, *values: Any, or_absent: bool = False) -> FieldIs:
        """``name`` holds one of ``values`` (or, with ``or_absent``, does not exist)."""
        return cls(name, tuple(values), or_absent)

    @classmethod
    def absent(cls, name: str) -> FieldIs:
        """``name`` does not exist on the item."""
        return cls(name, (), True)

    def holds_for(self, item: Mapping[str, Any]) -> bool:
        """Whether ``item`` meets this guard (the in-memory twin of the condition expression)."""
        if self.name not in item:
            return self.or_absent
        return item[self.name] in self.values


@dataclass(frozen=True)
class Page:
    """One page of a listing and the opaque cursor of the next page (``None`` on the last one)."""

    items: list[Item]
    next_cursor: str | None = None


class InvoiceRepository(abc.ABC):
    """Invoices in the ``billing`` table: one item per account (``userId``) and ``invoiceId``."""

    @abc.abstractmethod
    def get(self, user_id: str, invoice_id: str) -> Item | None:
        """The invoice item, or ``None``."""

    @abc.abstractmethod
    def create_if_absent(self, item: Mapping[str, Any]) -> bool:
        """Store a new invoice item; ``False`` (and nothing written) if one already exists for its keys."""

    @abc.abstractmethod
    def update(
        self,
        user_id: str,
        invoice_id: str,
        fields: Mapping[str, Any],
        *,
        conditions: Sequence[FieldIs] = (),
        remove: Sequence[str] = (),
    ) -> Item:
        """Set ``fields`` (and remove ``remove``) on an existing invoice if every condition holds.

        Returns the updated item. Raises ``NotFound`` if there is no such invoice and
        ``ConditionFailed`` (with the stored item) if a condition does not hold.
        """

    @abc.abstractmethod
    def find_by_stripe_invoice_id(self, stripe_invoice_id: str) -> Item | None:
        """The invoice whose ``stripeInvoiceId`` is the given Stripe id, or ``None``."""

    @abc.abstractmethod
    def list_for_user(self, user_id: str, *, limit: int = 20, cursor: str | None = None) -> Page:
        """An account's invoices, newest period first, ``limit`` per page."""


class AccountRepository(abc.ABC):
    """Accounts in the ``payment-methods`` table: one item per ``userId``."""

    @abc.abstractmethod
    def get(self, user_id: str) -> Item | None:
        """The account item, or ``None``."""

    @abc.abstractmethod
    def put(self, item: Mapping[str, Any]) -> None:
        """Create or replace an account item (provisioning and seeding)."""

    @abc.abstractmethod
    def list_accounts(self, *, page_size: int = 100) -> Iterator[Item]:
        """Every account, read page by page (the billing run enumerates accounts)."""

    @abc.abstractmethod
    def find_by_stripe_customer_id(self, stripe_customer_id: str) -> Item | None:
        """The account whose ``stripeCustomerId`` is the given Stripe customer id, or ``None``."""

    @abc.abstractmethod
    def set_stripe_customer_id_if_absent(
        self, user_id: str, stripe_customer_id: str, fields: Mapping[str, Any] | None = None
    ) -> bool:
        """Record the account's Stripe customer unless it already has one (creates the item if needed).

        ``False`` means another request recorded a customer first; read the item to get it.
        """

    @abc.abstractmethod
    def update(
        self,
        user_id: str,
        fields: Mapping[str, Any],
        *,
        conditions: Sequence[FieldIs] = (),
        remove: Sequence[str] = (),
    ) -> Item:
        """Set ``fields`` on an existing account if every condition holds; returns the new item.

        Raises ``NotFound`` or ``ConditionFailed`` like ``InvoiceRepository.update``.
        """


class EventClaim(StrEnum):
    """What ``EventLedger.claim_event`` found: the caller's turn, already done, or someone else's turn."""

    CLAIMED = "claimed"  # this caller applies the event, then calls ``complete_event``
    DONE = "done"  # applied before: acknowledge the delivery
    IN_PROGRESS = "in_progress"  # another worker holds a live claim: let the delivery come back later


class EventLedger(abc.ABC):
    """The ``events`` table: processed Stripe event ids, leases and run records, all expiring by TTL."""

    @abc.abstractmethod
    def claim_event(self, event_id: str, *, lease_seconds: int, retention_seconds: int) -> EventClaim:
        """Claim ``event_id`` for processing unless it is done or another claim on it is still live."""

    @abc.abstractmethod
    def complete_event(self, event_id: str, *, retention_seconds: int) -> None:
        """Mark a claimed event done (kept ``retention_seconds``) and count one application of it."""

    @abc.abstractmethod
    def release_event(self, event_id: str) -> None:
        """Drop an unfinished claim (the attempt failed), so a redelivery may claim it at once."""

    @abc.abstractmethod
    def event_applications(self, event_id: str) -> int:
        """How many times ``event_id`` was applied (0 if never; more than 1 would be a bug)."""

    @abc.abstractmethod
    def record_once(self, event_id: str, ttl_seconds: int) -> bool:
        """Record ``event_id`` as processed; ``False`` if it was already recorded."""

    @abc.abstractmethod
    def forget(self, event_id: str) -> None:
        """Remove an event record, so a redelivery is processed again (after a failed attempt)."""

    @abc.abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl_seconds: int) -> bool:
        """Take (or renew, if ``owner`` holds it) the lease ``name`` unless another owner holds it unexpired."""

    @abc.abstractmethod
    def release_lease(self, name: str, owner: str) -> bool:
        """Give up the lease if ``owner`` holds it; ``False`` if it was not theirs (anymore)."""

    @abc.abstractmethod
    def put_record(
        self, key: str, fields: Mapping[str, Any], *, ttl_seconds: int | None = None, only_if_absent: bool = False
    ) -> bool:
        """Store a record (e.g. a billing run) under ``key``; ``False`` if ``only_if_absent`` and it exists."""

    @abc.abstractmethod
    def get_record(self, key: str) -> Item | None:
        """The record stored under ``key`` (without its key and TTL attributes), or ``None``."""


# --- queues --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    """A message taken from a queue; delete it with ``receipt_handle`` once it is handled."""

    message_id: str
    body: str
    receipt_handle: str
    receive_count: int = 1
    attributes: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON (Decimal for non-integer numbers, never float)."""
        return json.loads(self.body, parse_float=Decimal)


class MessageQueue(abc.ABC):
    """An SQS queue with a dead-letter queue behind it."""

    @abc.abstractmethod
    def send(
        self,
        body: Mapping[str, Any] | str,
        attributes: Mapping[str, str] | None = None,
        *,
        group_id: str | None = None,
        dedupe_id: str | None = None,
        delay_seconds: int = 0,
    ) -> str:
        """Enqueue ``body`` (a dict is sent as JSON); returns the message id."""

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
    def approximate_depth(self) -> int:
        """Messages waiting in the queue (approximate, as SQS reports it)."""

    @abc.abstractmethod
    def dead_letter_depth(self) -> int:
        """Messages waiting in this queue's dead-letter queue."""


# --- Cost Explorer -------------------------------------------------------------------------------


class CostSource(abc.ABC):
    """AWS costs for a time range, from one grouped query.

    ``group_by`` is ``SERVICE``, ``LINKED_ACCOUNT`` or ``TAG:<key>``; the last two are always
    combined with SERVICE and give each line a ``scope`` (account id or tag value; ``""`` = untagged).
    """

    requests_made: int = 0

    @abc.abstractmethod
    def costs(self, start: date, end: date, group_by: str = "SERVICE") -> CostReport:
        """Costs from ``start`` (inclusive) to ``end`` (exclusive), grouped as asked."""

    @abc.abstractmethod
    def forecast(self, start: date, end: date) -> Decimal | None:
        """Forecast total for the range, or ``None`` when no forecast is available."""


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
        """Re-read the secrets now (e.g. when no cached webhook secret verifies a signature)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<values hidden>)"


# --- Stripe --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceLine:
    """One line of a Stripe invoice: ``amount`` in minor units (cents), its service period if any.

    ``metadata`` identifies the line (``{"line": "aws"}``), so a resumed job can tell which lines a
    draft already has.
    """

    amount: int
    description: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    period_start: int | None = None  # epoch seconds, inclusive
    period_end: int | None = None  # epoch seconds, inclusive

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("amount must be an int of minor units (cents)")
        if (self.period_start is None) != (self.period_end is None):
            raise ValueError("a line's period needs both start and end")


class PaymentGateway(abc.ABC):
    """The Stripe calls the system makes. Every write takes an ``idempotency_key``.

    Failures are ``billing_core.errors.PaymentGatewayError`` subclasses; amounts are integer minor
    units (cents), as Stripe counts them.
    """

    @abc.abstractmethod
    def create_customer(
        self, *, user_id: str, idempotency_key: str, email: str | None = None, name: str | None = None
    ) -> StripeObject:
        """Create the account's Stripe customer (``metadata.userId`` links it back)."""

    @abc.abstractmethod
    def retrieve_customer(self, customer_id: str) -> StripeObject:
        """The customer (raises ``StripeObjectNotFound`` if Stripe has none with that id)."""

    @abc.abstractmethod
    def create_setup_intent(
        self,
        *,
        customer_id: str,
        idempotency_key: str,
        payment_method_types: Sequence[str] = ("card", "sepa_debit"),
        metadata: Mapping[str, str] | None = None,
    ) -> StripeObject:
        """A SetupIntent for saving a payment method for off-session charges."""

    @abc.abstractmethod
    def set_default_payment_method(
        self, *, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> StripeObject:
        """Make the payment method the customer's default for invoices; returns the customer."""

    @abc.abstractmethod
    def retrieve_payment_method(self, payment_method_id: str) -> StripeObject:
        """The payment method (type, card brand/last4 or SEPA last4)."""

    @abc.abstractmethod
    def create_draft_invoice(
        self,
        *,
        customer_id: str,
        currency: str,
        idempotency_key: str,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        auto_advance: bool = False,
    ) -> StripeObject:
        """A draft invoice collected automatically from the customer's default payment method.

        Keep ``auto_advance`` off while lines are still being added: Stripe finalizes and charges an
        auto-advancing draft about an hour after its creation, whatever lines it has by then.
        """

    @abc.abstractmethod
    def add_invoice_lines(
        self, *, invoice_id: str, lines: Sequence[InvoiceLine], idempotency_key: str
    ) -> StripeObject:
        """Add ``lines`` to a draft invoice in one request; returns the invoice with its new totals."""

    @abc.abstractmethod
    def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str, auto_advance: bool | None = None
    ) -> StripeObject:
        """Finalize a draft (it gets a number and becomes ``open``).

        ``auto_advance=True`` lets Stripe collect it automatically from then on; ``None`` leaves the
        invoice's setting as it is.
        """

    @abc.abstractmethod
    def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeObject:
        """Charge an open invoice now, off-session; declines raise ``PaymentDeclined``."""

    @abc.abstractmethod
    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeObject:
        """Void a finalized invoice."""

    @abc.abstractmethod
    def retrieve_invoice(self, invoice_id: str) -> StripeObject:
        """The invoice."""

    @abc.abstractmethod
    def list_invoices(self, customer_id: str, *, status: str | None = None) -> list[StripeObject]:
        """Every invoice of the customer, newest first (used to find one by metadata before creating)."""

    @abc.abstractmethod
    def list_events(self, *, created_after: int, types: Sequence[str] = ()) -> Iterator[StripeObject]:
        """Events created after the epoch second ``created_after`` (to catch up on missed webhooks)."""
