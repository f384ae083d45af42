"""The records the system keeps: an ``Account``, its ``Invoice`` of a period, a period's ``BillingRunRecord``.

Repositories return and accept these; only the storage adapter knows how they are stored. Money is
``Decimal``, statuses are enums, times are epoch milliseconds. A partial update is said as an
``InvoiceChanges`` / ``AccountChanges`` mapping of field names to new values, ``None`` meaning "remove".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypedDict

from billing_core.domain.account_profile import PostalAddress
from billing_core.domain.corrections import NO_TRUE_UP, TrueUp
from billing_core.domain.costs import Period
from billing_core.domain.errors import ConfigurationError, InvalidAmount
from billing_core.domain.fx import Conversion, FxRate
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.money import is_whole_cents, parse_amount, to_cents

# The two lines of every invoice, in the order they appear on it.
LINE_KINDS = ("base-fee", "aws")


# --- accounts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupFailure:
    """Why the last attempt to save a payment method failed (Stripe's codes only, never a message)."""

    setup_intent_id: str
    code: str
    decline_code: str | None = None


@dataclass(frozen=True)
class SavedPaymentMethod:
    """The account's default payment method as far as it may be shown (never a full number or IBAN)."""

    id: str
    type: str  # "card", "sepa_debit", ... or "unknown"
    brand: str | None = None  # card brand, e.g. "visa"
    last4: str | None = None


@dataclass(frozen=True)
class Account:
    """One billed customer account: its Stripe customer, what it is billed, how it pays."""

    account_id: str
    # None bills the whole payer account; otherwise the linked account id or cost-allocation tag value
    # whose costs this account caused (the cost report must be grouped accordingly).
    cost_scope: str | None = None
    base_fee_override: Decimal | None = None
    stripe_customer_id: str | None = None
    email: str | None = None
    payment_method: SavedPaymentMethod | None = None
    payment_method_changed_at: int | None = None  # event time of the last change, epoch ms
    last_setup_error: SetupFailure | None = None
    setup_failed_at: int | None = None
    customer_synced_at: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    # Set by the operator (``billing accounts``); an account first saved from the Billing tab has none.
    name: str | None = None
    language: str | None = None  # "de" / "en"; None: the system's INVOICE_LANGUAGE
    country: str | None = None  # ISO 3166-1 alpha-2
    address: PostalAddress | None = None
    disabled_at: int | None = None  # epoch ms; a disabled account is not billed, its history stays
    vat_id: str | None = None  # the customer's EU VAT id (USt-IdNr), checked
    buyer_reference: str | None = None  # Leitweg-ID or order reference the e-invoice names (BT-10)
    invoice_emails: tuple[str, ...] = ()  # who gets the invoices and credit notes by e-mail (else ``email``)
    # Addresses a hard bounce or a complaint ruled out: not mailed again until the recipients are changed.
    undeliverable_emails: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (
            not isinstance(self.account_id, str)
            or not self.account_id.strip()
            or self.account_id != self.account_id.strip()
        ):
            raise ConfigurationError(f"account id must be a non-blank string, got {self.account_id!r}")
        if self.cost_scope is not None and (not isinstance(self.cost_scope, str) or not self.cost_scope):
            # An empty scope would bill the untagged costs; None is how "whole payer" is said.
            raise ConfigurationError(f"account {self.account_id}: cost scope must be None or a non-empty string")
        if self.base_fee_override is not None:
            what = f"base fee override of account {self.account_id}"
            object.__setattr__(self, "base_fee_override", valid_base_fee(self.base_fee_override, what))

    @property
    def has_payment_method(self) -> bool:
        """Whether the account has a default payment method Stripe can charge."""
        return self.payment_method is not None

    @property
    def disabled(self) -> bool:
        """Whether the operator disabled the account (it is not billed)."""
        return self.disabled_at is not None

    @property
    def invoice_recipients(self) -> tuple[str, ...]:
        """Where its invoices and credit notes are e-mailed: the invoice addresses, else the account's e-mail."""
        if self.invoice_emails:
            return self.invoice_emails
        return (self.email,) if self.email else ()

    @property
    def deliverable_recipients(self) -> tuple[str, ...]:
        """The invoice recipients that are not undeliverable: who is mailed."""
        ruled_out = {address.lower() for address in self.undeliverable_emails}
        return tuple(address for address in self.invoice_recipients if address.lower() not in ruled_out)


class AccountChanges(TypedDict, total=False):
    """A partial update of an ``Account``: the fields named get the values given (``None`` removes)."""

    stripe_customer_id: str | None
    email: str | None
    cost_scope: str | None
    base_fee_override: Decimal | None
    payment_method: SavedPaymentMethod | None
    payment_method_changed_at: int | None
    last_setup_error: SetupFailure | None
    setup_failed_at: int | None
    customer_synced_at: int | None
    created_at: int | None
    updated_at: int | None
    name: str | None
    language: str | None
    country: str | None
    address: PostalAddress | None
    disabled_at: int | None
    vat_id: str | None
    buyer_reference: str | None
    invoice_emails: tuple[str, ...]
    undeliverable_emails: tuple[str, ...]


def valid_base_fee(value: Decimal | str | int, what: str) -> Decimal:
    """A base fee: a non-negative amount in whole cents (``ConfigurationError`` otherwise)."""
    try:
        amount = parse_amount(value)
    except InvalidAmount as error:
        raise ConfigurationError(f"{what}: {error}") from error
    if amount < 0:
        raise ConfigurationError(f"{what} must not be negative, got {amount}")
    if not is_whole_cents(amount):
        raise ConfigurationError(f"{what} must be whole cents, got {amount}")
    return to_cents(amount)


# --- invoices ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineDescriptions:
    """The texts of the invoice's two lines, in the invoice's language."""

    base_fee: str
    aws: str

    def of(self, kind: str) -> str:
        """The description of the line ``kind`` (one of ``LINE_KINDS``)."""
        return {"base-fee": self.base_fee, "aws": self.aws}[kind]


@dataclass(frozen=True)
class InvoiceVat:
    """The VAT an invoice was claimed with (fixed at the claim): its EN 16931 category and rate, net, tax, legend."""

    category: str  # EN 16931 VAT category: S, AE, O, E
    net: Decimal  # the lines' sum
    tax: Decimal = Decimal(0)
    rate: Decimal = Decimal(0)  # percent
    note: str | None = None  # the legend of an untaxed supply, as the invoice says it
    manual_line_tax: tuple[int, ...] = ()  # per-line tax (minor units) when the lines carry manual amounts


@dataclass(frozen=True)
class StripeProgress:
    """How far the invoice job got at Stripe: the draft and its lines, Stripe's totals, the finalization."""

    customer_id: str | None = None
    invoice_id: str | None = None
    lines_added: frozenset[str] = field(default_factory=frozenset)
    total: int | None = None  # minor units, as Stripe reported it after the lines were added
    tax: int | None = None  # Stripe's total tax, minor units, as checked before finalizing
    key_generation: int = 0  # bumped when Stripe keeps replaying a failure for a step's key
    number: str | None = None
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None
    payment_method_missing: bool = False
    finalized_at: int | None = None
    finalization_error: str | None = None


@dataclass(frozen=True)
class PaymentProgress:
    """How far Stripe's events took the invoice's payment (``domain.lifecycle``), and what credit notes took back."""

    status_order: str | None = None
    attempt_count: int = 0
    last_event_at: int | None = None
    next_payment_attempt: int | None = None
    paid_at: int | None = None
    credited: Decimal = Decimal(0)  # the gross the issued credit notes took back (``domain.credit_notes``)
    # The customer's balance at finalization (``domain.customer_balance``): what Stripe took of it into the
    # invoice (> 0 an earlier amount collected with it, < 0 a credit deducted), and the amount due below
    # Stripe's minimum charge it moved to the balance instead of charging (the next invoice collects it).
    balance_applied: Decimal = Decimal(0)
    carried_to_balance: Decimal = Decimal(0)


@dataclass(frozen=True)
class EInvoiceFileKeys:
    """Where the invoice's e-invoice files are stored (written once after finalization), or why they are not."""

    xml: str | None = None
    pdf: str | None = None
    error: str | None = None  # why the e-invoice could not be written (retried on the next run)


class CreditStatus(StrEnum):
    """How much of an invoice its credit notes took back."""

    NONE = "none"
    CREDITED = "credited"  # in part
    CANCELLED = "cancelled"  # in full


def credit_status_of(invoice_gross: Decimal, credited: Decimal) -> CreditStatus:
    """How much of an invoice of ``invoice_gross`` the gross ``credited`` by its credit notes took back."""
    if credited <= 0:
        return CreditStatus.NONE
    return CreditStatus.CANCELLED if credited >= invoice_gross else CreditStatus.CREDITED


@dataclass(frozen=True)
class Invoice:
    """One account's invoice of one period: the amounts claimed, then its progress through Stripe.

    Once claimed, the amounts are the invoice: a rerun bills what was claimed first. What the claim fixes
    (the amounts, ``conversion``, ``true_up``, ``vat``) never changes; ``stripe``, ``payment`` and
    ``einvoice`` move forward as the job and the events go on.
    """

    account_id: str
    invoice_id: str
    status: InvoiceStatus
    period: Period
    currency: str
    amount: Decimal  # the gross charged (the net when the invoice has no VAT handling)
    base_fee: Decimal
    aws_costs: Decimal
    aws_breakdown: Mapping[str, Decimal]
    line_descriptions: LineDescriptions
    created_at: int
    updated_at: int
    costs_estimated: bool = False
    markup_percent: Decimal = Decimal(0)
    conversion: Conversion | None = None  # None: the costs were in the invoice currency
    aws_raw: Mapping[str, Decimal] = field(default_factory=dict)  # per service, unrounded, cost currency
    cost_currency: str | None = None
    true_up: TrueUp = NO_TRUE_UP
    corrected_by: frozenset[str] = field(default_factory=frozenset)  # the later invoices correcting this one
    cost_scope: str | None = None
    run_id: str | None = None
    vat: InvoiceVat | None = None  # None: an invoice without VAT handling (claimed before VAT, or no policy)
    stripe: StripeProgress = field(default_factory=StripeProgress)
    payment: PaymentProgress = field(default_factory=PaymentProgress)
    einvoice: EInvoiceFileKeys = field(default_factory=EInvoiceFileKeys)

    @property
    def net(self) -> Decimal:
        """The net total: the lines' sum (the amount itself on an invoice without VAT handling)."""
        return self.amount if self.vat is None else self.vat.net

    @property
    def tax(self) -> Decimal:
        """The VAT charged (0 on an invoice without VAT handling)."""
        return Decimal(0) if self.vat is None else self.vat.tax

    @property
    def fx(self) -> FxRate | None:
        """The rate the invoice's AWS costs were converted at (``None``: no conversion)."""
        return self.conversion.rate if self.conversion else None

    @property
    def amount_due(self) -> Decimal:
        """What Stripe collects for the invoice: its gross with the balance applied, less what was too small."""
        return self.amount + self.payment.balance_applied - self.payment.carried_to_balance

    @property
    def cancelled(self) -> bool:
        """Whether credit notes took the whole invoice back (Stornorechnung): it no longer bills its month."""
        return credit_status_of(self.amount, self.payment.credited) is CreditStatus.CANCELLED

    @property
    def correction(self) -> str | None:
        """``"cancelled"`` (credited in full), ``"credited"`` (in part) or ``None`` (no credit note)."""
        status = credit_status_of(self.amount, self.payment.credited)
        return None if status is CreditStatus.NONE else status.value

    @property
    def all_lines_added(self) -> bool:
        """Whether both lines are on the Stripe draft."""
        return set(LINE_KINDS) <= self.stripe.lines_added


class InvoiceChanges(TypedDict, total=False):
    """A partial update of an ``Invoice``: the fields named get the values given (``None`` removes).

    The parts the job and the events move forward are updated field by field (two writers never
    overwrite each other's part): each name below is a field of the invoice or of one of its parts
    (``INVOICE_PART_FIELDS``).
    """

    status: InvoiceStatus
    updated_at: int
    corrected_by: frozenset[str]
    lines_added: frozenset[str]
    stripe_customer_id: str | None
    stripe_invoice_id: str | None
    stripe_total: int | None
    stripe_tax: int | None
    key_generation: int
    number: str | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    payment_method_missing: bool
    finalized_at: int | None
    finalization_error: str | None
    status_order: str | None
    attempt_count: int
    last_event_at: int | None
    next_payment_attempt: int | None
    paid_at: int | None
    credited: Decimal
    balance_applied: Decimal
    carried_to_balance: Decimal
    einvoice_xml: str | None
    einvoice_pdf: str | None
    einvoice_error: str | None


# Which part of an invoice each field a change (or a guard) may name lives in, and under which name.
INVOICE_PART_FIELDS: Mapping[str, tuple[str, str]] = {
    "stripe_customer_id": ("stripe", "customer_id"),
    "stripe_invoice_id": ("stripe", "invoice_id"),
    "lines_added": ("stripe", "lines_added"),
    "stripe_total": ("stripe", "total"),
    "stripe_tax": ("stripe", "tax"),
    "key_generation": ("stripe", "key_generation"),
    "number": ("stripe", "number"),
    "hosted_invoice_url": ("stripe", "hosted_invoice_url"),
    "invoice_pdf": ("stripe", "invoice_pdf"),
    "payment_method_missing": ("stripe", "payment_method_missing"),
    "finalized_at": ("stripe", "finalized_at"),
    "finalization_error": ("stripe", "finalization_error"),
    "status_order": ("payment", "status_order"),
    "attempt_count": ("payment", "attempt_count"),
    "last_event_at": ("payment", "last_event_at"),
    "next_payment_attempt": ("payment", "next_payment_attempt"),
    "paid_at": ("payment", "paid_at"),
    "credited": ("payment", "credited"),
    "balance_applied": ("payment", "balance_applied"),
    "carried_to_balance": ("payment", "carried_to_balance"),
    "einvoice_xml": ("einvoice", "xml"),
    "einvoice_pdf": ("einvoice", "pdf"),
    "einvoice_error": ("einvoice", "error"),
}
_INVOICE_PARTS = frozenset(part for part, _ in INVOICE_PART_FIELDS.values())


def invoice_fields(invoice: Invoice) -> dict[str, Any]:
    """The invoice as flat fields: its own (but the parts) and each part's under its ``INVOICE_PART_FIELDS`` name.

    What storage writes and reads back with ``invoice_from_fields``; the names changes and guards use."""
    flat = {f.name: getattr(invoice, f.name) for f in fields(Invoice) if f.name not in _INVOICE_PARTS}
    for name, (part, attribute) in INVOICE_PART_FIELDS.items():
        flat[name] = getattr(getattr(invoice, part), attribute)
    return flat


def invoice_from_fields(values: Mapping[str, Any]) -> Invoice:
    """The invoice of flat ``values`` (``invoice_fields``'s names); a missing field takes its default."""
    own = {name: value for name, value in values.items() if name not in INVOICE_PART_FIELDS}
    parts: dict[str, dict[str, Any]] = {part: {} for part in _INVOICE_PARTS}
    for name, value in values.items():
        if name in INVOICE_PART_FIELDS:
            part, attribute = INVOICE_PART_FIELDS[name]
            parts[part][attribute] = value
    return Invoice(
        **own,
        stripe=StripeProgress(**parts["stripe"]),
        payment=PaymentProgress(**parts["payment"]),
        einvoice=EInvoiceFileKeys(**parts["einvoice"]),
    )


def invoice_value(invoice: Invoice, name: str) -> Any:
    """The value of the field ``name`` (one of ``invoice_fields``'s names) of ``invoice``."""
    if name in INVOICE_PART_FIELDS:
        part, attribute = INVOICE_PART_FIELDS[name]
        return getattr(getattr(invoice, part), attribute)
    return getattr(invoice, name)


# --- billing runs ------------------------------------------------------------------------------------


class RunStatus(StrEnum):
    """How far a period's billing run got."""

    WAITING_FOR_FINAL_COSTS = "waiting_for_final_costs"  # Cost Explorer still marks the period Estimated
    ENQUEUING = "enqueuing"  # planned; jobs are being sent
    ENQUEUED = "enqueued"  # every planned job is on the queue


@dataclass(frozen=True)
class BillingRunRecord:
    """What the run of a period did: its id, state, counts and times (epoch ms)."""

    period: Period
    run_id: str
    status: RunStatus
    trigger: str
    accounts: int
    skipped: int
    enqueued: int
    cost_requests: int
    started_at: int
    updated_at: int
    costs_estimated: bool = False  # the costs billed (or waited for) were still Cost Explorer's estimate
    # The accounts the run left out and why (the first ``MAX_SKIPPED_KEPT``; ``skipped`` counts them all).
    skipped_reasons: Mapping[str, str] = field(default_factory=dict)


MAX_SKIPPED_KEPT = 100

# Fields of an invoice record that only move forward, whoever writes them and however late: storage
# keeps the first value written to a write-once field (never removed either), and a growing field is
# the union of everything written to it. A worker resuming from stale memory cannot move them back.
WRITE_ONCE_FIELDS = frozenset({"finalized_at", "paid_at"})
GROWING_FIELDS = frozenset({"lines_added"})


def forward_only(current: Invoice, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` as storage applies them to ``current`` (the rule of ``WRITE_ONCE_FIELDS`` and ``GROWING_FIELDS``)."""
    applied = dict(changes)
    for name in WRITE_ONCE_FIELDS & set(changes):
        kept = invoice_value(current, name)
        if kept is not None or changes[name] is None:
            applied[name] = kept
    for name in GROWING_FIELDS & set(changes):
        applied[name] = frozenset(invoice_value(current, name)) | frozenset(changes[name] or ())
    return applied


def field_names(record_type: type) -> frozenset[str]:
    """The names a changes mapping and a guard may use for a record type (an invoice's parts by field)."""
    if record_type is Invoice:
        return frozenset(f.name for f in fields(Invoice) if f.name not in _INVOICE_PARTS) | set(INVOICE_PART_FIELDS)
    return frozenset(f.name for f in fields(record_type))


def record_value(record: object, name: str) -> Any:
    """The value of the field ``name`` (one of ``field_names``) of an ``Invoice`` or ``Account``."""
    return invoice_value(record, name) if isinstance(record, Invoice) else getattr(record, name)
