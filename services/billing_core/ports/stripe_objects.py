"""The Stripe objects as the use cases see them: typed, holding only the fields the system reads.

Stripe speaks one JSON for its API answers and its webhook payloads, so one reader per object kind
serves the Stripe adapter (the SDK's ``to_dict()``), the fakes and the event consumer (a queued
webhook body) alike. A reader keeps what it can use and drops the rest: a field Stripe leaves out,
sends as ``null`` or sends expanded (an object instead of an id) reads the same. Only an object
without its id (or an event without its id, type or object) is refused, as ``InvalidStripeObject``
or ``InvalidStripeEvent``: it is not a Stripe object at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from billing_core.errors import InvalidStripeEvent, InvalidStripeObject

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class StripeCustomer:
    """A customer: whom invoices are addressed to and which payment method they are charged to."""

    id: str
    email: str | None = None
    default_payment_method_id: str | None = None  # invoice_settings.default_payment_method
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StripeCustomer:
        """Read Stripe's customer object."""
        settings = _mapping(obj.get("invoice_settings"))
        return cls(
            id=_required_id(obj, "customer"),
            email=_text(obj.get("email")),
            default_payment_method_id=_reference(settings.get("default_payment_method")),
            metadata=_metadata(obj.get("metadata")),
        )


@dataclass(frozen=True)
class SetupError:
    """Why a SetupIntent failed: Stripe's codes only (its message may echo what the customer typed)."""

    code: str | None = None
    decline_code: str | None = None


@dataclass(frozen=True)
class StripeSetupIntent:
    """A SetupIntent: saving a payment method of a customer for later off-session charges."""

    id: str
    client_secret: str | None = field(default=None, repr=False)
    status: str | None = None
    customer_id: str | None = None
    payment_method_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    last_setup_error: SetupError | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StripeSetupIntent:
        """Read Stripe's setup_intent object."""
        error = obj.get("last_setup_error")
        return cls(
            id=_required_id(obj, "setup_intent"),
            client_secret=_text(obj.get("client_secret")),
            status=_text(obj.get("status")),
            customer_id=_reference(obj.get("customer")),
            payment_method_id=_reference(obj.get("payment_method")),
            metadata=_metadata(obj.get("metadata")),
            last_setup_error=SetupError(_text(error.get("code")), _text(error.get("decline_code")))
            if isinstance(error, Mapping)
            else None,
        )


@dataclass(frozen=True)
class StripePaymentMethod:
    """A payment method with the display fields of its kind (a card's brand, any kind's last four)."""

    id: str
    type: str = "unknown"
    brand: str | None = None
    last4: str | None = None
    customer_id: str | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StripePaymentMethod:
        """Read Stripe's payment_method object (the details sit under the key named by its type)."""
        kind = _text(obj.get("type"))
        details = _mapping(obj.get(kind)) if kind else {}
        return cls(
            id=_required_id(obj, "payment_method"),
            type=kind or "unknown",
            brand=_text(details.get("brand")),
            last4=_text(details.get("last4")),
            customer_id=_reference(obj.get("customer")),
        )


@dataclass(frozen=True)
class StatusTransitions:
    """When the invoice entered each status, in epoch seconds (``None``: not yet)."""

    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    marked_uncollectible_at: int | None = None


@dataclass(frozen=True)
class StripeInvoice:
    """An invoice: its status, totals in minor units, collection progress and where to see it."""

    id: str
    status: str | None = None  # draft, open, paid, uncollectible, void
    customer_id: str | None = None
    currency: str | None = None
    total: int | None = None  # minor units; None if Stripe's answer carried none
    total_excluding_tax: int | None = None
    total_tax: int = 0  # the sum of total_taxes[].amount (exclusive and inclusive)
    amount_due: int | None = None
    amount_paid: int | None = None
    attempt_count: int = 0
    next_payment_attempt: int | None = None  # epoch seconds
    created: int = 0  # epoch seconds
    number: str | None = None
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    # The ``metadata.line`` of each line on the invoice (e.g. "base", "aws").
    line_kinds: frozenset[str] = frozenset()
    status_transitions: StatusTransitions = StatusTransitions()
    finalization_error: str | None = None  # last_finalization_error.message
    amount_remaining: int | None = None  # amount_due less amount_paid
    # The customer's balance before and after finalizing (negative: a credit); ending_balance is
    # None until the invoice is finalized.
    starting_balance: int = 0
    ending_balance: int | None = None
    pre_payment_credit_notes_amount: int = 0  # what credit notes took off the amount due
    post_payment_credit_notes_amount: int = 0  # what credit notes gave back after payment

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StripeInvoice:
        """Read Stripe's invoice object (lines as far as the answer lists them)."""
        transitions = _mapping(obj.get("status_transitions"))
        lines = _mapping(obj.get("lines")).get("data")
        return cls(
            id=_required_id(obj, "invoice"),
            status=_text(obj.get("status")),
            customer_id=_reference(obj.get("customer")),
            currency=_text(obj.get("currency")),
            total=_integer(obj.get("total")),
            total_excluding_tax=_integer(obj.get("total_excluding_tax")),
            total_tax=sum(_integer(_mapping(tax).get("amount")) or 0 for tax in _list(obj.get("total_taxes"))),
            amount_due=_integer(obj.get("amount_due")),
            amount_paid=_integer(obj.get("amount_paid")),
            attempt_count=_integer(obj.get("attempt_count")) or 0,
            next_payment_attempt=_integer(obj.get("next_payment_attempt")),
            created=_integer(obj.get("created")) or 0,
            number=_text(obj.get("number")),
            hosted_invoice_url=_text(obj.get("hosted_invoice_url")),
            invoice_pdf=_text(obj.get("invoice_pdf")),
            metadata=_metadata(obj.get("metadata")),
            line_kinds=frozenset(
                kind
                for line in (lines if isinstance(lines, list) else [])
                if (kind := _text(_mapping(_mapping(line).get("metadata")).get("line")))
            ),
            status_transitions=StatusTransitions(
                finalized_at=_integer(transitions.get("finalized_at")),
                paid_at=_integer(transitions.get("paid_at")),
                voided_at=_integer(transitions.get("voided_at")),
                marked_uncollectible_at=_integer(transitions.get("marked_uncollectible_at")),
            ),
            finalization_error=_text(_mapping(obj.get("last_finalization_error")).get("message")),
            amount_remaining=_integer(obj.get("amount_remaining")),
            starting_balance=_integer(obj.get("starting_balance")) or 0,
            ending_balance=_integer(obj.get("ending_balance")),
            pre_payment_credit_notes_amount=_integer(obj.get("pre_payment_credit_notes_amount")) or 0,
            post_payment_credit_notes_amount=_integer(obj.get("post_payment_credit_notes_amount")) or 0,
        )


@dataclass(frozen=True)
class LineTax:
    """One tax of an invoice or credit note line: its amount, its Tax Rate, what it was computed on."""

    amount: int
    tax_rate_id: str | None = None  # tax_rate_details.tax_rate
    taxable_amount: int | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> LineTax:
        """Read one entry of a line's ``taxes``."""
        return cls(
            amount=_integer(obj.get("amount")) or 0,
            tax_rate_id=_text(_mapping(obj.get("tax_rate_details")).get("tax_rate")),
            taxable_amount=_integer(obj.get("taxable_amount")),
        )


def _line_taxes(value: Any) -> tuple[LineTax, ...]:
    return tuple(LineTax.from_json(tax) for tax in _list(value) if isinstance(tax, Mapping))


@dataclass(frozen=True)
class StripeInvoiceLine:
    """A line of an invoice: what a credit note names when it takes back some of it."""

    id: str
    amount: int = 0  # minor units, excluding exclusive tax
    kind: str | None = None  # metadata.line ("base-fee", "aws", ...)
    taxes: tuple[LineTax, ...] = ()

    @property
    def tax(self) -> int:
        """The line's tax, all rates together."""
        return sum(tax.amount for tax in self.taxes)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StripeInvoiceLine:
        """Read Stripe's line_item object (an invoice's line)."""
        return cls(
            id=_required_id(obj, "invoice line item"),
            amount=_integer(obj.get("amount")) or 0,
            kind=_text(_mapping(obj.get("metadata")).get("line")),
            taxes=_line_taxes(obj.get("taxes")),
        )


@dataclass(frozen=True)
class StripeCreditNoteLine:
    """A line of a credit note: the invoice line it credits, the amount and the tax taken back."""

    id: str
    invoice_line_id: str | None = None  # None for a custom line
    amount: int = 0  # minor units, excluding exclusive tax
    taxes: tuple[LineTax, ...] = ()

    @property
    def tax(self) -> int:
        """The tax taken back on this line, all rates together."""
        return sum(tax.amount for tax in self.taxes)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StripeCreditNoteLine:
        """Read Stripe's credit_note_line_item object."""
        return cls(
            id=_required_id(obj, "credit note line item"),
            invoice_line_id=_reference(obj.get("invoice_line_item")),
            amount=_integer(obj.get("amount")) or 0,
            taxes=_line_taxes(obj.get("taxes")),
        )


@dataclass(frozen=True)
class CreditNoteRefund:
    """A refund a credit note made (or was linked to), and how much of it belongs to the credit note."""

    refund_id: str | None
    amount: int


@dataclass(frozen=True)
class StripeCreditNote:
    """A credit note of an invoice: its totals, how they were settled, and its lines.

    ``pre_payment_amount`` is what it took off the invoice's amount due; ``post_payment_amount`` went
    back as refunds, customer balance credit and out-of-band credit, which add up to it.
    """

    id: str
    status: str | None = None  # issued, void
    number: str | None = None
    invoice_id: str | None = None
    customer_id: str | None = None
    currency: str | None = None
    total: int | None = None  # minor units, tax included; None if Stripe's answer carried none
    subtotal: int | None = None
    total_excluding_tax: int | None = None
    total_tax: int = 0  # the sum of total_taxes[].amount
    pre_payment_amount: int = 0
    post_payment_amount: int = 0
    out_of_band_amount: int = 0
    refunds: tuple[CreditNoteRefund, ...] = ()
    customer_balance_transaction_id: str | None = None  # set when the customer's balance was credited
    type: str | None = None  # pre_payment, post_payment, mixed
    reason: str | None = None
    memo: str | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    created: int = 0  # epoch seconds
    voided_at: int | None = None
    # The lines as far as the answer lists them.
    lines: tuple[StripeCreditNoteLine, ...] = ()

    @property
    def refund_amount(self) -> int:
        """What the credit note's refunds gave back to the original payment method."""
        return sum(refund.amount for refund in self.refunds)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StripeCreditNote:
        """Read Stripe's credit_note object."""
        lines = _mapping(obj.get("lines")).get("data")
        return cls(
            id=_required_id(obj, "credit note"),
            status=_text(obj.get("status")),
            number=_text(obj.get("number")),
            invoice_id=_reference(obj.get("invoice")),
            customer_id=_reference(obj.get("customer")),
            currency=_text(obj.get("currency")),
            total=_integer(obj.get("total")),
            subtotal=_integer(obj.get("subtotal")),
            total_excluding_tax=_integer(obj.get("total_excluding_tax")),
            total_tax=sum(_integer(_mapping(tax).get("amount")) or 0 for tax in _list(obj.get("total_taxes"))),
            pre_payment_amount=_integer(obj.get("pre_payment_amount")) or 0,
            post_payment_amount=_integer(obj.get("post_payment_amount")) or 0,
            out_of_band_amount=_integer(obj.get("out_of_band_amount")) or 0,
            refunds=tuple(
                CreditNoteRefund(_reference(refund.get("refund")), _integer(refund.get("amount_refunded")) or 0)
                for refund in _list(obj.get("refunds"))
                if isinstance(refund, Mapping)
            ),
            customer_balance_transaction_id=_reference(obj.get("customer_balance_transaction")),
            type=_text(obj.get("type")),
            reason=_text(obj.get("reason")),
            memo=_text(obj.get("memo")),
            metadata=_metadata(obj.get("metadata")),
            created=_integer(obj.get("created")) or 0,
            voided_at=_integer(obj.get("voided_at")),
            lines=tuple(
                StripeCreditNoteLine.from_json(line)
                for line in (lines if isinstance(lines, list) else [])
                if isinstance(line, Mapping)
            ),
        )


@dataclass(frozen=True)
class OtherStripeObject:
    """An object of a kind the system does not read (the object of an event it does not handle)."""

    kind: str
    id: str | None = None


EventObject = (
    StripeInvoice | StripeCreditNote | StripeSetupIntent | StripePaymentMethod | StripeCustomer | OtherStripeObject
)

_READERS: Mapping[str, Callable[[Mapping[str, Any]], EventObject]] = {
    "invoice": StripeInvoice.from_json,
    "credit_note": StripeCreditNote.from_json,
    "setup_intent": StripeSetupIntent.from_json,
    "payment_method": StripePaymentMethod.from_json,
    "customer": StripeCustomer.from_json,
}


@dataclass(frozen=True)
class StripeEvent:
    """An event: what happened (``type``), when, and the object as it was then."""

    id: str
    type: str
    created: int  # epoch seconds
    object: EventObject
    # data.previous_attributes.customer: the customer a payment method was detached from.
    previous_customer_id: str | None = None

    @property
    def created_ms(self) -> int:
        """``created`` in epoch milliseconds, as records store times."""
        return self.created * 1000

    @classmethod
    def from_json(cls, event: Any) -> StripeEvent:
        """Read Stripe's event object; ``InvalidStripeEvent`` if it is not shaped like one."""
        if not isinstance(event, Mapping):
            raise InvalidStripeEvent("the payload is not a JSON object")
        event_id, event_type = event.get("id"), event.get("type")
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
            raise InvalidStripeEvent("the payload has no event id or type")
        data = event.get("data")
        if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
            raise InvalidStripeEvent("the payload has no data.object")
        obj: Mapping[str, Any] = data["object"]
        # The object names its kind; an event type names it too ("invoice.paid"), for payloads without.
        kind = _text(obj.get("object")) or event_type.rsplit(".", 1)[0]
        reader = _READERS.get(kind)
        try:
            read: EventObject = reader(obj) if reader else OtherStripeObject(kind, _text(obj.get("id")))
        except InvalidStripeObject as invalid:
            raise InvalidStripeEvent(f"event {event_id}: {invalid}") from None
        previous = _mapping(data.get("previous_attributes"))
        return cls(
            id=event_id,
            type=event_type,
            created=_integer(event.get("created")) or 0,
            object=read,
            previous_customer_id=_reference(previous.get("customer")),
        )


# --- reading Stripe's JSON --------------------------------------------------------------------------


def _required_id(obj: Mapping[str, Any], kind: str) -> str:
    value = _text(obj.get("id"))
    if value is None:
        raise InvalidStripeObject(f"a Stripe {kind} without an id")
    return value


def _reference(value: Any) -> str | None:
    """A reference to another object, whether Stripe sent its id or the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return _text(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number == value else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _metadata(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not value:
        return _EMPTY
    return MappingProxyType({str(key): str(item) for key, item in value.items() if item is not None})


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
