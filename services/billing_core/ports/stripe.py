"""The Stripe port: the calls the use cases make to collect money (objects typed in ``stripe_objects``)."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from billing_core.domain.account_profile import PostalAddress
from billing_core.domain.credit_notes import Settlement
from billing_core.ports.stripe_objects import (
    StripeCreditNote,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripeInvoiceLine,
    StripePaymentMethod,
    StripeSetupIntent,
)

# --- Stripe --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaxRateSpec:
    """A Stripe Tax Rate as the invoices use it: "USt. 19 %", exclusive, German VAT."""

    display_name: str
    percentage: Decimal
    country: str = "DE"
    jurisdiction: str = "DE"
    description: str = "Umsatzsteuer"
    inclusive: bool = False
    tax_type: str = "vat"

    @property
    def key(self) -> str:
        """The ``metadata.billingTaxRate`` that finds this rate again: ``vat-DE-19-exclusive``."""
        kind = "inclusive" if self.inclusive else "exclusive"
        return f"{self.tax_type}-{self.country}-{format(self.percentage.normalize(), 'f')}-{kind}"


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
    # VAT: the ids of Stripe Tax Rates on the line, or a manual tax amount of the rate ``tax_rate``.
    tax_rate_ids: tuple[str, ...] = ()
    tax_amount: int | None = None
    tax_rate: TaxRateSpec | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("amount must be an int of minor units (cents)")
        if self.tax_amount is not None and (self.tax_rate is None or self.tax_rate_ids):
            raise ValueError("a manual tax amount needs its rate and no Tax Rate ids (Stripe takes one or the other)")
        if (self.period_start is None) != (self.period_end is None):
            raise ValueError("a line's period needs both start and end")


def _is_minor_units(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class CreditNoteLineRequest:
    """One invoice line to credit: ``amount`` in minor units, excluding tax, and the tax taken back.

    With ``tax_amount`` Stripe credits exactly that tax at ``tax_rate_id`` (the rate Stripe made for
    the invoice line's own tax amount; see ``StripeInvoiceLine.taxes``) on ``taxable_amount`` (default:
    ``amount``). Without it Stripe takes the line's tax in proportion to the amount credited.
    """

    invoice_line_id: str
    amount: int
    tax_amount: int | None = None
    tax_rate_id: str | None = None
    taxable_amount: int | None = None

    def __post_init__(self) -> None:
        if not self.invoice_line_id:
            raise ValueError("a credit note line names the invoice line it credits")
        for name in ("amount", "tax_amount", "taxable_amount"):
            value = getattr(self, name)
            if value is not None and not _is_minor_units(value):
                raise TypeError(f"{name} must be an int of minor units (cents), got {value!r}")
        if self.amount <= 0:
            raise ValueError(f"a credit note line credits a positive amount, got {self.amount}")
        if self.tax_amount is None:
            if self.tax_rate_id is not None or self.taxable_amount is not None:
                raise ValueError("a tax rate or taxable amount on a credit note line needs its tax_amount")
            return
        if not self.tax_rate_id:
            raise ValueError("a tax amount needs the id of its tax rate")
        if self.tax_amount < 0 or (self.taxable_amount is not None and self.taxable_amount < 0):
            raise ValueError("a tax amount and its taxable amount are 0 or more")

    @property
    def gross(self) -> int:
        """What the line gives back: its amount and the tax given with it."""
        return self.amount + (self.tax_amount or 0)


SETTLEMENTS = frozenset(settlement.value for settlement in Settlement)


@dataclass(frozen=True)
class CreditNoteRequest:
    """A credit note of ``invoice_id``'s lines, and where its money goes (``settlement``).

    ``settlement`` is a ``Settlement`` value. ``pre_payment`` takes the credit off what an open invoice
    still asks (Stripe's ``amount_remaining``); on a paid invoice ``refund`` gives it back to the original
    payment, ``balance`` credits the customer's balance (taken off the next invoice) and ``out_of_band``
    records it as settled outside Stripe. The amount settled is ``settled`` (``gross`` unless given):
    Stripe refuses the credit note when it differs from the credit note's total, so a taxed line
    credited after payment needs its ``tax_amount`` or the request its ``amount_settled``.
    """

    invoice_id: str
    lines: tuple[CreditNoteLineRequest, ...]
    settlement: str
    memo: str | None
    metadata: Mapping[str, str]
    reason: str | None = None  # Stripe's: duplicate, fraudulent, order_change, product_unsatisfactory
    # What a paid invoice's settlement carries when the lines give no tax amount of their own (lines on
    # Tax Rates: Stripe computes their tax); ``None``: the lines' ``gross``.
    amount_settled: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        if not self.invoice_id:
            raise ValueError("a credit note names its invoice")
        if not self.lines or not all(isinstance(line, CreditNoteLineRequest) for line in self.lines):
            raise ValueError("a credit note credits at least one invoice line (CreditNoteLineRequest)")
        credited = [line.invoice_line_id for line in self.lines]
        if len(credited) != len(set(credited)):
            raise ValueError("a credit note credits each invoice line once")
        if self.settlement not in SETTLEMENTS:
            raise ValueError(f"settlement must be one of {', '.join(sorted(SETTLEMENTS))}, got {self.settlement!r}")
        if self.amount_settled is not None and (not _is_minor_units(self.amount_settled) or self.amount_settled <= 0):
            raise ValueError(f"amount_settled must be a positive int of minor units, got {self.amount_settled!r}")

    @property
    def gross(self) -> int:
        """What the credit note gives back, tax included, as far as the lines give their tax."""
        return sum(line.gross for line in self.lines)

    @property
    def settled(self) -> int:
        """The amount a refund, balance credit or out-of-band credit carries."""
        return self.gross if self.amount_settled is None else self.amount_settled


@dataclass(frozen=True)
class SignedEvent:
    """The identity of an event whose webhook signature verified."""

    event_id: str
    event_type: str


class WebhookSignatures(abc.ABC):
    """Stripe's webhook signature scheme: does ``secret`` sign this payload under this header?"""

    @abc.abstractmethod
    def verify(self, payload: str, header: str, secret: str, *, tolerance_seconds: int) -> SignedEvent:
        """The signed event's id and type; ``InvalidWebhookSignature`` if ``secret`` did not sign it,
        ``InvalidStripeEvent`` if it did but the payload is no event."""


@dataclass(frozen=True)
class CustomerDetails:
    """What the operator keeps on a Stripe customer: who to bill and where, in which language."""

    name: str | None = None
    email: str | None = None
    address: PostalAddress | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    language: str | None = None  # "de" / "en": the customer's preferred locale for Stripe's e-mails
    vat_id: str | None = None  # an EU VAT id: the customer's tax id (eu_vat), set when it is created
    tax_exempt: str | None = None  # none, exempt or reverse: Stripe prints "Reverse charge" for reverse


class PaymentGateway(abc.ABC):
    """The Stripe calls the system makes. Every write takes an ``idempotency_key``.

    Failures are ``billing_core.errors.PaymentGatewayError`` subclasses; amounts are integer minor
    units (cents), as Stripe counts them.
    """

    @abc.abstractmethod
    def create_customer(
        self,
        *,
        account_id: str,
        idempotency_key: str,
        email: str | None = None,
        name: str | None = None,
        details: CustomerDetails | None = None,
    ) -> StripeCustomer:
        """Create the account's Stripe customer (``metadata.userId`` links it back); ``details`` win over email/name."""

    @abc.abstractmethod
    def update_customer(self, customer_id: str, *, details: CustomerDetails, idempotency_key: str) -> StripeCustomer:
        """Set the customer's name, e-mail, address and preferred locale to ``details`` (``None`` leaves one)."""

    @abc.abstractmethod
    def create_setup_intent(
        self,
        *,
        customer_id: str,
        idempotency_key: str,
        payment_method_types: Sequence[str] = ("card", "sepa_debit"),
        metadata: Mapping[str, str] | None = None,
    ) -> StripeSetupIntent:
        """A SetupIntent for saving a payment method for off-session charges."""

    @abc.abstractmethod
    def set_default_payment_method(
        self, *, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> StripeCustomer:
        """Make the payment method the customer's default for invoices; returns the customer."""

    @abc.abstractmethod
    def retrieve_payment_method(self, payment_method_id: str) -> StripePaymentMethod:
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
        custom_fields: Mapping[str, str] | None = None,
        footer: str | None = None,
        automatic_tax: bool = False,
    ) -> StripeInvoice:
        """A draft invoice collected automatically from the customer's default payment method.

        ``custom_fields`` (name -> value, up to 4) are shown on the invoice, e.g. the seller's USt-IdNr;
        ``footer`` is the tax legend (reverse charge, § 19 UStG); ``automatic_tax`` lets Stripe Tax
        compute the VAT.

        Keep ``auto_advance`` off while lines are still being added: Stripe finalizes and charges an
        auto-advancing draft about an hour after its creation, whatever lines it has by then.
        """

    @abc.abstractmethod
    def find_tax_rate(self, key: str) -> str | None:
        """The id of the active Tax Rate whose ``metadata.billingTaxRate`` is ``key``, if there is one."""

    @abc.abstractmethod
    def create_tax_rate(self, spec: TaxRateSpec, *, idempotency_key: str) -> str:
        """Create the Tax Rate ``spec`` describes (``metadata.billingTaxRate`` = its key); its id."""

    @abc.abstractmethod
    def add_invoice_lines(
        self, *, invoice_id: str, lines: Sequence[InvoiceLine], idempotency_key: str
    ) -> StripeInvoice:
        """Add ``lines`` to a draft invoice in one request; returns the invoice with its new totals."""

    @abc.abstractmethod
    def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str, auto_advance: bool | None = None
    ) -> StripeInvoice:
        """Finalize a draft (it gets a number and becomes ``open``).

        ``auto_advance=True`` lets Stripe collect it automatically from then on; ``None`` leaves the
        invoice's setting as it is.
        """

    @abc.abstractmethod
    def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        """Charge an open invoice now, off-session; declines raise ``PaymentDeclined``."""

    @abc.abstractmethod
    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        """Void a finalized invoice."""

    @abc.abstractmethod
    def retrieve_invoice(self, invoice_id: str) -> StripeInvoice:
        """The invoice."""

    @abc.abstractmethod
    def list_invoices(self, customer_id: str, *, status: str | None = None) -> list[StripeInvoice]:
        """Every invoice of the customer, newest first (used to find one by metadata before creating)."""

    @abc.abstractmethod
    def list_invoice_lines(self, invoice_id: str) -> list[StripeInvoiceLine]:
        """Every line of the invoice, in the invoice's order (an invoice object lists only its first ten)."""

    @abc.abstractmethod
    def preview_credit_note(self, request: CreditNoteRequest) -> StripeCreditNote:
        """The credit note ``create_credit_note`` would issue for ``request`` now; nothing is issued."""

    @abc.abstractmethod
    def create_credit_note(self, request: CreditNoteRequest, *, idempotency_key: str) -> StripeCreditNote:
        """Issue the credit note: the invoice's amounts follow, the money goes where ``settlement`` says.

        Refused (``StripeRequestRejected``) when a line or the invoice has less left to credit than asked,
        or the settlement does not fit the invoice: pre-payment fits an open invoice, the others a paid one.
        """

    @abc.abstractmethod
    def list_credit_notes(self, invoice_id: str) -> list[StripeCreditNote]:
        """Every credit note of the invoice, newest first (to find one by metadata before issuing it)."""

    @abc.abstractmethod
    def retrieve_event(self, event_id: str) -> StripeEvent:
        """The event as Stripe keeps it (for events too large for the queue, which carries only the id)."""

    @abc.abstractmethod
    def list_events(self, *, created_after: int, types: Sequence[str] = ()) -> Iterator[StripeEvent]:
        """Events created after the epoch second ``created_after`` (to catch up on missed webhooks)."""
