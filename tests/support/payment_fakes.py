"""An in-memory Stripe for unit tests: replays repeated idempotency keys, fails like Stripe on demand.

Re-exported by ``tests.support.fakes``. It raises exactly what the real gateway raises for the same
situation, and ``tests/contracts/test_payment_gateway.py`` holds it to the same contract as the real
adapter on the Stripe emulator: invoice states and totals to the cent (Tax Rates rounded per line,
inclusive rates, manual tax amounts, a model of Stripe Tax), Stripe's limits, SEPA debits that settle
later, and what an idempotency key saves.

Beyond the port, a test drives what happens outside it: ``confirm_setup_intent`` is the browser's
part (Stripe.js), ``collect_automatically`` and ``settle_debits`` let Stripe's time pass, and the
``fail_*`` methods inject failures.

Where it is simpler than Stripe, on purpose:

- a test payment method id (``pm_card_visa``) can be made a customer's default, retrieved and
  charged directly, without a SetupIntent (Stripe would create a new PaymentMethod from it);
- it emits only the invoice events the system handles, ``credit_note.created``, and
  ``setup_intent.succeeded`` from ``confirm_setup_intent`` (no ``customer.*``, ``invoice.created`` /
  ``updated``, ...), and lists them oldest first (Stripe lists newest first; the port promises no order);
- an error that is not a payment's or a refusal (a missing object) is not saved under its key (the
  emulator saves it);
- the customer's balance moves only by credit notes credited to it, the invoices that apply it, and
  an invoice whose amount due is below the minimum charge (EUR 0.50), marked paid with the amount
  debited to the balance: Stripe (and the emulator) also credit a negative invoice to the balance;
- credit notes credit invoice lines by amount only (no quantities, custom lines or ``amount``
  without lines), as the port asks; their rules are the emulator's (``store/credit_notes.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from billing_core.domain.credit_notes import Settlement
from billing_core.domain.tax import EU_COUNTRIES
from billing_core.errors import (
    IdempotencyKeyReused,
    PaymentActionRequired,
    PaymentDeclined,
    StripeFailedAfterExecution,
    StripeObjectNotFound,
    StripeRequestRejected,
)
from billing_core.ports import (
    CreditNoteLineRequest,
    CreditNoteRequest,
    InvoiceLine,
    PaymentGateway,
    StripeCreditNote,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripeInvoiceLine,
    StripePaymentMethod,
    StripeSetupIntent,
)

# The fake keeps Stripe's objects as Stripe's JSON and answers through the port's typed readers,
# exactly as the real adapter reads the SDK's answers.
StripeJson = dict[str, Any]

# Stripe's test payment methods, as the emulator knows them (``pm_sepa_debit``: the fake's own older
# name for ``pm_sepaDebit``).
TEST_PAYMENT_METHODS: dict[str, dict[str, Any]] = {
    "pm_card_visa": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
    "pm_card_mastercard": {"type": "card", "card": {"brand": "mastercard", "last4": "4444"}},
    "pm_card_chargeCustomerFail": {"type": "card", "card": {"brand": "visa", "last4": "0341"}},
    "pm_card_authenticationRequired": {"type": "card", "card": {"brand": "visa", "last4": "3184"}},
    "pm_sepaDebit": {"type": "sepa_debit", "sepa_debit": {"last4": "3000", "country": "DE"}},
    "pm_sepa_debit": {"type": "sepa_debit", "sepa_debit": {"last4": "3000", "country": "DE"}},
}
# What charging each does off-session (the others succeed; a SEPA debit settles later).
_CHARGE_OUTCOMES = {"pm_card_chargeCustomerFail": "declines", "pm_card_authenticationRequired": "requires_action"}

# Stripe's limits (its docs, and the pinned SDK's params where they state them).
MAX_IDEMPOTENCY_KEY = 255
METADATA_MAX_KEYS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 50, 40, 500
MAX_CUSTOM_FIELDS, MAX_CUSTOM_FIELD_NAME, MAX_CUSTOM_FIELD_VALUE = 4, 40, 140  # InvoiceCreateParams
MAX_PERCENTAGE_PLACES = 4
TAX_EXEMPTIONS = ("none", "exempt", "reverse")
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
INLINE_LINES = 10  # an invoice object lists its first ten lines; the rest is paged
# Automatic collection: Stripe charges an auto-advancing invoice about an hour after finalizing it
# and retries a failed charge (Smart Retries; here every three days, four attempts in all).
AUTO_CHARGE_DELAY = 3600
# Stripe's minimum charge, minor units ("The minimum amount is $0.50 US or equivalent"; 0.50 EUR).
MINIMUM_CHARGE = {"eur": 50, "usd": 50}
RETRY_INTERVAL, MAX_ATTEMPTS = 3 * 24 * 3600, 4
# The model of Stripe Tax the emulator uses too: the seller is registered in Germany only, below the
# EU's OSS threshold, so every EU customer pays German VAT; outside the EU nothing is due.
SELLER_VAT = Decimal(19)
NO_PAYMENT_METHOD = "This customer has no attached payment source or default payment method."
TAX_LOCATION_MISSING = (
    "Automatic tax calculation requires a valid address on the Customer: the customer's "
    "location is missing or not precise enough to calculate tax."
)
_HUNDRED = Decimal(100)


@dataclass
class GatewayCall:
    """One call made to the fake gateway."""

    method: str
    kwargs: dict[str, Any]
    idempotency_key: str | None = None
    replayed: bool = False


@dataclass(frozen=True)
class _LineTax:
    """Where a line's tax comes from: Tax Rates (id, percentage, inclusive) or one manual amount.

    A manual amount is of the archived rate Stripe makes for its rate data (``manual_rate``).
    """

    rates: tuple[tuple[str, Decimal, bool], ...] = ()
    manual: int | None = None
    manual_inclusive: bool = False
    manual_rate: str | None = None


@dataclass
class FakePaymentGateway(PaymentGateway):
    """A small stateful Stripe: customers, setup intents, invoices with lines; honours idempotency keys.

    Queue a failure for the next call of a method with ``fail_next("pay_invoice", error)``.
    """

    customers: dict[str, StripeJson] = field(default_factory=dict)
    invoices: dict[str, StripeJson] = field(default_factory=dict)
    setup_intents: dict[str, StripeJson] = field(default_factory=dict)
    calls: list[GatewayCall] = field(default_factory=list)
    clock: Callable[[], int] = lambda: 1_700_000_000
    events: list[StripeJson] = field(default_factory=list)
    tax_rates: dict[str, StripeJson] = field(default_factory=dict)
    # Payment methods saved through ``confirm_setup_intent`` (Stripe's test ids need no saving here).
    payment_methods: dict[str, StripeJson] = field(default_factory=dict)
    credit_notes: dict[str, StripeJson] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._replies: dict[str, tuple[str, dict[str, Any], Any]] = {}
        self._failures: dict[str, list[Exception]] = {}
        self._fail_after: set[str] = set()
        self._finalization_failures: list[str] = []
        self._invoice_numbers = itertools.count(1)
        self._made_from: dict[str, str] = {}  # saved payment method -> the test id it was made from
        self._line_taxes: dict[str, _LineTax] = {}  # line id -> its tax
        self._processing: set[str] = set()  # invoices with a SEPA debit in flight
        # The archived Tax Rates Stripe makes itself: for manual tax amounts (by rate key) and Stripe Tax.
        self._stripe_made_rates: dict[str, str] = {}

    # --- test controls ---

    def fail_next(self, method: str, error: Exception) -> None:
        """Make the next call of ``method`` raise ``error`` (before any effect, like a network failure)."""
        self._failures.setdefault(method, []).append(error)

    def calls_to(self, method: str, *, replayed: bool | None = None) -> list[GatewayCall]:
        """Calls of ``method`` (optionally only replays or only first executions)."""
        return [c for c in self.calls if c.method == method and (replayed is None or c.replayed == replayed)]

    def fail_after_execution_next(self, method: str) -> None:
        """The next call of ``method`` takes effect, then answers a 500 that its key keeps replaying."""
        self._fail_after.add(method)

    def fail_finalization_next(self, reason: str = "The invoice could not be finalized.") -> None:
        """The next finalization fails as Stripe's does (``invoice.finalization_failed``; still a draft)."""
        self._finalization_failures.append(reason)

    def confirm_setup_intent(self, intent_id: str, payment_method: str) -> StripeSetupIntent:
        """The browser's part (Stripe.js ``confirmSetup``) with one of Stripe's test payment methods.

        As Stripe does, it makes a new PaymentMethod from the test id, attaches it to the intent's
        customer and emits ``setup_intent.succeeded``.
        """
        intent = self.setup_intents.get(intent_id)
        if intent is None:
            raise StripeObjectNotFound(f"No such setupintent: '{intent_id}'")
        if intent["status"] != "requires_payment_method":
            raise StripeRequestRejected(
                f"You cannot confirm this SetupIntent because it has a status of {intent['status']}.",
                code="setup_intent_unexpected_state",
            )
        template = TEST_PAYMENT_METHODS.get(payment_method)
        if template is None:
            raise StripeObjectNotFound(f"No such PaymentMethod: '{payment_method}'")
        if template["type"] not in intent["payment_method_types"]:
            raise StripeRequestRejected(
                f"The PaymentMethod provided ({template['type']}) is not allowed for this SetupIntent."
            )
        pm_id = self._new_id("pm")
        self.payment_methods[pm_id] = {
            "id": pm_id,
            "object": "payment_method",
            "customer": intent["customer"],
            "created": self.clock(),
            **copy.deepcopy(template),
        }
        self._made_from[pm_id] = payment_method
        intent.update(status="succeeded", payment_method=pm_id)
        self._emit("setup_intent.succeeded", intent)
        return StripeSetupIntent.from_json(copy.deepcopy(intent))

    def collect_automatically(self) -> None:
        """Stripe's automatic collection comes due: each auto-advancing open invoice is charged once."""
        for invoice in list(self.invoices.values()):
            if (
                invoice["status"] == "open"
                and invoice["auto_advance"]
                and invoice["next_payment_attempt"] is not None
                and invoice["id"] not in self._processing
            ):
                self._attempt_payment(invoice, synchronous=False)

    def settle_debits(self, *, succeed: bool = True) -> None:
        """Every SEPA debit in flight settles: the invoice is paid (or its payment failed)."""
        for invoice_id in sorted(self._processing):
            self._processing.discard(invoice_id)
            invoice = self.invoices[invoice_id]
            if invoice["status"] in ("open", "uncollectible"):
                if succeed:
                    self._mark_paid(invoice)
                else:
                    self._payment_failed(invoice)

    # --- plumbing ---

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def _read(self, method: str, kwargs: dict[str, Any], action: Callable[[], StripeJson]) -> StripeJson:
        self.calls.append(GatewayCall(method, kwargs))
        self._maybe_fail(method)
        return copy.deepcopy(action())

    def _write(
        self,
        method: str,
        idempotency_key: str,
        kwargs: dict[str, Any],
        action: Callable[[], StripeJson],
        check: Callable[[], None] | None = None,
    ) -> StripeJson:
        """Run ``action`` once per key; ``check`` refuses invalid parameters, which saves nothing under the key."""
        if not idempotency_key:
            raise ValueError("every Stripe write needs an idempotency key")
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise StripeRequestRejected(
                f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters long.", param="Idempotency-Key"
            )
        self._maybe_fail(method)
        if check is not None:
            check()
        replay = self._replies.get(idempotency_key)
        if replay is not None:
            replay_method, replay_kwargs, reply = replay
            if (replay_method, replay_kwargs) != (method, kwargs):
                raise IdempotencyKeyReused(
                    "Keys for idempotent requests can only be used with the same parameters",
                    code="idempotency_key_in_use",
                )
            self.calls.append(GatewayCall(method, kwargs, idempotency_key, replayed=True))
            if isinstance(reply, Exception):
                raise reply
            return copy.deepcopy(reply)
        self.calls.append(GatewayCall(method, kwargs, idempotency_key))
        try:
            reply = action()
        except (PaymentDeclined, StripeRequestRejected) as refused:
            # Stripe stores the result of a request that began executing, errors included: the same
            # key replays the same decline or refusal.
            self._replies[idempotency_key] = (method, copy.deepcopy(kwargs), refused)
            raise
        if method in self._fail_after:
            self._fail_after.discard(method)
            failed = StripeFailedAfterExecution("An error occurred while processing your request.")
            self._replies[idempotency_key] = (method, copy.deepcopy(kwargs), failed)
            raise failed
        self._replies[idempotency_key] = (method, copy.deepcopy(kwargs), copy.deepcopy(reply))
        return copy.deepcopy(reply)

    def _maybe_fail(self, method: str) -> None:
        queued = self._failures.get(method)
        if queued:
            raise queued.pop(0)

    def _customer(self, customer_id: str) -> StripeJson:
        if customer_id not in self.customers:
            raise StripeObjectNotFound(f"No such customer: '{customer_id}'")
        return self.customers[customer_id]

    def _invoice(self, invoice_id: str) -> StripeJson:
        if invoice_id not in self.invoices:
            raise StripeObjectNotFound(f"No such invoice: '{invoice_id}'")
        return self.invoices[invoice_id]

    def _emit(self, event_type: str, obj: StripeJson) -> None:
        snapshot = _rendered(obj) if obj.get("object") == "invoice" else copy.deepcopy(obj)
        self.events.append(
            {
                "id": self._new_id("evt"),
                "object": "event",
                "type": event_type,
                "created": self.clock(),
                "data": {"object": snapshot},
            }
        )

    # --- the port ---

    def create_customer(self, *, account_id, idempotency_key, email=None, name=None, details=None) -> StripeCustomer:
        """A customer with ``metadata.userId``."""

        def action() -> StripeJson:
            customer = {
                "id": self._new_id("cus"),
                "object": "customer",
                "email": email,
                "name": name,
                "address": None,
                "tax_exempt": "none",
                "metadata": {"userId": account_id},
                "invoice_settings": {"default_payment_method": None},
                "balance": 0,
                "created": self.clock(),
            }
            if details is not None:
                customer.update(_customer_details(details))
                if details.vat_id:
                    customer["tax_ids"] = [{"type": "eu_vat", "value": details.vat_id}]
            self.customers[customer["id"]] = customer
            return customer

        def check() -> None:
            _check_metadata({"userId": account_id}, "metadata")
            _check_details(details)

        kwargs = {"account_id": account_id, "email": email, "name": name, "details": details}
        return StripeCustomer.from_json(self._write("create_customer", idempotency_key, kwargs, action, check))

    def update_customer(self, customer_id, *, details, idempotency_key) -> StripeCustomer:
        """The customer with ``details`` set; its drafts follow its new address and tax exemption."""

        def action() -> StripeJson:
            customer = self._customer(customer_id)
            customer.update(_customer_details(details))
            for invoice in self.invoices.values():
                if invoice["customer"] == customer_id and invoice["status"] == "draft":
                    self._recompute(invoice)
            return customer

        kwargs = {"customer_id": customer_id, "details": details}
        answer = self._write("update_customer", idempotency_key, kwargs, action, lambda: _check_details(details))
        return StripeCustomer.from_json(answer)

    def create_setup_intent(
        self, *, customer_id, idempotency_key, payment_method_types=("card", "sepa_debit"), metadata=None
    ) -> StripeSetupIntent:
        """A SetupIntent awaiting a payment method."""

        def action() -> StripeJson:
            self._customer(customer_id)
            intent_id = self._new_id("seti")
            intent = {
                "id": intent_id,
                "object": "setup_intent",
                "customer": customer_id,
                "client_secret": f"{intent_id}_secret_fake",
                "status": "requires_payment_method",
                "usage": "off_session",
                "payment_method": None,
                "allowed_payment_method_types": list(payment_method_types),
                "payment_method_types": list(payment_method_types),
                "metadata": dict(metadata or {}),
            }
            self.setup_intents[intent_id] = intent
            return intent

        kwargs = {
            "customer_id": customer_id,
            "payment_method_types": list(payment_method_types),
            "metadata": dict(metadata or {}),
        }
        answer = self._write(
            "create_setup_intent", idempotency_key, kwargs, action, lambda: _check_metadata(metadata, "metadata")
        )
        return StripeSetupIntent.from_json(answer)

    def set_default_payment_method(self, *, customer_id, payment_method_id, idempotency_key) -> StripeCustomer:
        """Set ``invoice_settings.default_payment_method`` to one of the customer's payment methods."""

        def action() -> StripeJson:
            customer = self._customer(customer_id)
            saved = self.payment_methods.get(payment_method_id)
            if saved is not None and saved["customer"] != customer_id:
                # Stripe: resource_missing, the payment method must be attached to this customer first.
                raise StripeObjectNotFound(
                    f"No such PaymentMethod: '{payment_method_id}'; the payment method must be attached to "
                    f"customer {customer_id} before it can be its default."
                )
            if saved is None and payment_method_id not in TEST_PAYMENT_METHODS:
                raise StripeObjectNotFound(f"No such PaymentMethod: '{payment_method_id}'")
            customer["invoice_settings"]["default_payment_method"] = payment_method_id
            return customer

        kwargs = {"customer_id": customer_id, "payment_method_id": payment_method_id}
        answer = self._write("set_default_payment_method", idempotency_key, kwargs, action)
        return StripeCustomer.from_json(answer)

    def retrieve_payment_method(self, payment_method_id: str) -> StripePaymentMethod:
        """A saved payment method, or one of Stripe's test payment methods."""

        def action() -> StripeJson:
            if payment_method_id in self.payment_methods:
                return self.payment_methods[payment_method_id]
            if payment_method_id not in TEST_PAYMENT_METHODS:
                raise StripeObjectNotFound(f"No such PaymentMethod: '{payment_method_id}'")
            return {"id": payment_method_id, "object": "payment_method", **TEST_PAYMENT_METHODS[payment_method_id]}

        arguments = {"payment_method_id": payment_method_id}
        return StripePaymentMethod.from_json(self._read("retrieve_payment_method", arguments, action))

    def create_draft_invoice(
        self,
        *,
        customer_id,
        currency,
        idempotency_key,
        description=None,
        metadata=None,
        auto_advance=False,
        custom_fields=None,
        footer=None,
        automatic_tax=False,
    ) -> StripeInvoice:
        """A draft invoice with no lines."""

        def action() -> StripeJson:
            self._customer(customer_id)
            invoice = {
                "id": self._new_id("in"),
                "object": "invoice",
                "customer": customer_id,
                "currency": currency.lower(),
                "status": "draft",
                "collection_method": "charge_automatically",
                "auto_advance": auto_advance,
                "description": description,
                "metadata": {k: str(v) for k, v in (metadata or {}).items()},
                "lines": {"object": "list", "data": [], "has_more": False},
                "subtotal": 0,
                "amount_due": 0,
                "amount_paid": 0,
                "amount_remaining": 0,
                "attempt_count": 0,
                "next_payment_attempt": None,
                "total": 0,
                "number": None,
                "hosted_invoice_url": None,
                "invoice_pdf": None,
                "created": self.clock(),
                "custom_fields": [{"name": k, "value": v} for k, v in (custom_fields or {}).items()] or None,
                "footer": footer,
                "automatic_tax": {"enabled": automatic_tax, "status": None},
                "total_excluding_tax": 0,
                "total_taxes": [],
                "last_finalization_error": None,
                "starting_balance": 0,
                "ending_balance": None,
                "pre_payment_credit_notes_amount": 0,
                "post_payment_credit_notes_amount": 0,
                "status_transitions": {
                    "finalized_at": None,
                    "marked_uncollectible_at": None,
                    "paid_at": None,
                    "voided_at": None,
                },
            }
            self.invoices[invoice["id"]] = invoice
            self._recompute(invoice)
            return _rendered(invoice)

        def check() -> None:
            _check_metadata(metadata, "metadata")
            _check_custom_fields(custom_fields)

        kwargs = {
            "customer_id": customer_id,
            "currency": currency,
            "description": description,
            "metadata": dict(metadata or {}),
            "auto_advance": auto_advance,
            "custom_fields": dict(custom_fields or {}),
            "footer": footer,
            "automatic_tax": automatic_tax,
        }
        return StripeInvoice.from_json(self._write("create_draft_invoice", idempotency_key, kwargs, action, check))

    def find_tax_rate(self, key: str) -> str | None:
        """The active tax rate created with ``key``."""
        self.calls.append(GatewayCall("find_tax_rate", {"key": key}))
        self._maybe_fail("find_tax_rate")
        return next((rate_id for rate_id, rate in self.tax_rates.items() if rate["key"] == key), None)

    def create_tax_rate(self, spec, *, idempotency_key: str) -> str:
        """A tax rate (per-line rounding, like Stripe's Tax Rates)."""

        def action() -> StripeJson:
            rate_id = self._new_id("txr")
            self.tax_rates[rate_id] = {
                "id": rate_id,
                "key": spec.key,
                "percentage": spec.percentage,
                "inclusive": spec.inclusive,
            }
            return {"id": rate_id}

        kwargs = {"spec": dataclasses.asdict(spec)}
        answer = self._write(
            "create_tax_rate", idempotency_key, kwargs, action, lambda: _check_percentage(spec.percentage)
        )
        return str(answer["id"])

    def add_invoice_lines(self, *, invoice_id, lines, idempotency_key) -> StripeInvoice:
        """Invoice items on a draft, all or none, in one request; answers the invoice with its new totals."""
        if not lines:
            raise ValueError("add_invoice_lines needs at least one line")

        def action() -> StripeJson:
            invoice = self._invoice(invoice_id)
            if invoice["status"] != "draft":
                raise StripeRequestRejected("You can only add lines to a draft invoice.", code="invoice_not_editable")
            planned = self._planned_taxes(invoice, lines)  # every line is checked before any is added
            for line, tax in zip(lines, planned, strict=True):
                period = {"start": line.period_start, "end": line.period_end} if line.period_start is not None else None
                line_id = self._new_id("il")
                self._line_taxes[line_id] = tax
                invoice["lines"]["data"].append(
                    {
                        "id": line_id,
                        "object": "line_item",
                        "amount": line.amount,
                        "currency": invoice["currency"],
                        "description": line.description,
                        "metadata": {k: str(v) for k, v in line.metadata.items()},
                        "period": period,
                        "taxes": [],
                    }
                )
            self._recompute(invoice)
            return _rendered(invoice)

        def check() -> None:
            for index, line in enumerate(lines):
                _check_metadata(line.metadata, f"lines[{index}][metadata]")
                if line.tax_rate is not None:
                    _check_percentage(line.tax_rate.percentage)

        kwargs = {"invoice_id": invoice_id, "lines": [dataclasses.asdict(line) for line in lines]}
        return StripeInvoice.from_json(self._write("add_invoice_lines", idempotency_key, kwargs, action, check))

    def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str, auto_advance: bool | None = None
    ) -> StripeInvoice:
        """Draft -> open, with a number and hosted URLs (paid at once when nothing is due)."""

        def action() -> StripeJson:
            invoice = self._invoice(invoice_id)
            if invoice["status"] != "draft":
                raise StripeRequestRejected(
                    "This invoice is already finalized, you can't re-finalize a non-draft invoice."
                )
            if self._finalization_failures:
                self._fail_finalization(invoice, self._finalization_failures.pop(0))
            self._recompute(invoice)  # Stripe computes the tax at finalization, for the customer as it is now
            if invoice["automatic_tax"]["status"] == "requires_location_inputs":
                self._fail_finalization(invoice, TAX_LOCATION_MISSING, "customer_tax_location_invalid")
            now = self.clock()
            number = next(self._invoice_numbers)
            invoice.update(
                status="open",
                number=f"FAKE-{number:04d}",
                hosted_invoice_url=f"https://invoice.stripe.test/{invoice_id}",
                invoice_pdf=f"https://invoice.stripe.test/{invoice_id}/pdf",
                last_finalization_error=None,
            )
            invoice["status_transitions"]["finalized_at"] = now
            invoice["ending_balance"] = self._apply_balance(invoice)
            self._defer_too_small(invoice)
            if auto_advance is not None:
                invoice["auto_advance"] = auto_advance
            if invoice["amount_due"] > 0 and invoice["auto_advance"]:
                invoice["next_payment_attempt"] = now + AUTO_CHARGE_DELAY  # never charged in this answer
            self._emit("invoice.finalized", invoice)
            if invoice["amount_due"] == 0:
                self._mark_paid(invoice)  # Stripe marks an invoice with nothing due paid when finalizing it
            return _rendered(invoice)

        kwargs = {"invoice_id": invoice_id, "auto_advance": auto_advance}
        return StripeInvoice.from_json(self._write("finalize_invoice", idempotency_key, kwargs, action))

    def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        """Charge the default payment method; Stripe's failing test cards fail here, a SEPA debit settles later."""

        def action() -> StripeJson:
            invoice = self._invoice(invoice_id)
            if invoice["status"] == "paid":
                raise StripeRequestRejected("Invoice is already paid.")
            if invoice["status"] not in ("open", "uncollectible"):
                raise StripeRequestRejected("You can only pay an open invoice.")
            if invoice_id in self._processing:
                raise StripeRequestRejected("This invoice's payment is already processing.")
            if self._customer(invoice["customer"])["invoice_settings"]["default_payment_method"] is None:
                raise StripeRequestRejected(NO_PAYMENT_METHOD)
            self._attempt_payment(invoice, synchronous=True)
            return _rendered(invoice)

        answer = self._write("pay_invoice", idempotency_key, {"invoice_id": invoice_id}, action)
        return StripeInvoice.from_json(answer)

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        """Open -> void."""

        def action() -> StripeJson:
            invoice = self._invoice(invoice_id)
            if invoice["status"] not in ("open", "uncollectible"):
                raise StripeRequestRejected("You can only void an open invoice.")
            if invoice_id in self._processing:
                raise StripeRequestRejected("This invoice can't be voided while its payment is processing.")
            invoice.update(status="void", next_payment_attempt=None)
            invoice["status_transitions"]["voided_at"] = self.clock()
            self._emit("invoice.voided", invoice)
            return _rendered(invoice)

        answer = self._write("void_invoice", idempotency_key, {"invoice_id": invoice_id}, action)
        return StripeInvoice.from_json(answer)

    def retrieve_invoice(self, invoice_id: str) -> StripeInvoice:
        """The invoice."""
        answer = self._read(
            "retrieve_invoice", {"invoice_id": invoice_id}, lambda: _rendered(self._invoice(invoice_id))
        )
        return StripeInvoice.from_json(answer)

    def list_invoices(self, customer_id: str, *, status: str | None = None) -> list[StripeInvoice]:
        """The customer's invoices, newest first."""
        if status is not None and status not in INVOICE_STATUSES:
            raise StripeRequestRejected(f"Invalid status: must be one of {', '.join(INVOICE_STATUSES)}", param="status")
        found = [
            i
            for i in self.invoices.values()
            if i["customer"] == customer_id and (status is None or i["status"] == status)
        ]
        self._read("list_invoices", {"customer_id": customer_id, "status": status}, lambda: {})
        return [StripeInvoice.from_json(_rendered(invoice)) for invoice in reversed(found)]

    def list_invoice_lines(self, invoice_id: str) -> list[StripeInvoiceLine]:
        """Every line of the invoice (not only the ten an invoice answer lists)."""
        answer = self._read("list_invoice_lines", {"invoice_id": invoice_id}, lambda: self._invoice(invoice_id))
        return [StripeInvoiceLine.from_json(line) for line in answer["lines"]["data"]]

    # --- credit notes ---

    def preview_credit_note(self, request: CreditNoteRequest) -> StripeCreditNote:
        """The credit note ``create_credit_note`` would issue; nothing changes."""
        answer = self._read(
            "preview_credit_note", _credit_note_kwargs(request), lambda: self._plan_credit_note(request)
        )
        answer.pop("_settle")
        return StripeCreditNote.from_json(answer)

    def create_credit_note(self, request: CreditNoteRequest, *, idempotency_key: str) -> StripeCreditNote:
        """Issue the credit note: the invoice's amounts follow, a refund or balance credit is made."""

        def action() -> StripeJson:
            note = self._plan_credit_note(request)
            self._apply_credit_note(self._invoice(request.invoice_id), note)
            return note

        kwargs = _credit_note_kwargs(request)
        answer = self._write(
            "create_credit_note", idempotency_key, kwargs, action, lambda: _check_metadata(request.metadata, "metadata")
        )
        return StripeCreditNote.from_json(answer)

    def list_credit_notes(self, invoice_id: str) -> list[StripeCreditNote]:
        """The invoice's credit notes, newest first."""
        self._read("list_credit_notes", {"invoice_id": invoice_id}, lambda: {})
        found = [note for note in self.credit_notes.values() if note["invoice"] == invoice_id]
        return [StripeCreditNote.from_json(copy.deepcopy(note)) for note in reversed(found)]

    def _plan_credit_note(self, request: CreditNoteRequest) -> StripeJson:
        """The credit note ``request`` asks for, its amounts split before and after payment; refused as Stripe does."""
        invoice = self._invoice(request.invoice_id)
        if invoice["status"] not in ("open", "paid"):
            raise StripeRequestRejected(
                f"You can only create a credit note for an open or paid invoice; invoice {invoice['id']} has "
                f"status {invoice['status']}.",
                param="invoice",
            )
        lines = [self._credit_note_line(invoice, line, f"lines[{i}]") for i, line in enumerate(request.lines)]
        subtotal = sum(line["amount"] for line in lines)
        excluding_tax = sum(_line_net(line) for line in lines)
        tax = sum(entry["amount"] for line in lines for entry in line["taxes"])
        total = excluding_tax + tax
        # Before payment a credit note takes what is left to pay; after it, what was paid and not yet credited.
        pre = min(total, invoice["amount_remaining"]) if invoice["status"] == "open" else 0
        post = total - pre
        paid_left = invoice["amount_paid"] - invoice.get("post_payment_credit_notes_amount", 0)
        if post > paid_left:
            creditable = (invoice["amount_remaining"] if invoice["status"] == "open" else 0) + paid_left
            raise StripeRequestRejected(
                f"The credit note's total ({total}) exceeds the amount that can still be credited on invoice "
                f"{invoice['id']} ({creditable}).",
                param="lines",
            )
        settled = {name: request.settled if request.settlement == name else 0 for name in Settlement}
        if settled[Settlement.REFUND] + settled[Settlement.BALANCE] + settled[Settlement.OUT_OF_BAND] != post:
            raise StripeRequestRejected(
                f"The sum of refund_amount, credit_amount and out_of_band_amount must equal the credit note's "
                f"post-payment amount ({post}): its total ({total}) less what it takes off the invoice's amount "
                f"remaining ({pre}).",
                param="refund_amount",
            )
        issued = [n for n in self.credit_notes.values() if n["invoice"] == invoice["id"]]
        return {
            "id": self._new_id("cn"),
            "object": "credit_note",
            "amount": total,
            "created": self.clock(),
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "customer_balance_transaction": None,
            "invoice": invoice["id"],
            "lines": {"object": "list", "data": lines, "has_more": False},
            "memo": request.memo,
            "metadata": dict(request.metadata),
            "number": f"{invoice['number']}-CN-{len(issued) + 1:02d}",
            "out_of_band_amount": settled[Settlement.OUT_OF_BAND] or None,
            "post_payment_amount": post,
            "pre_payment_amount": pre,
            "reason": request.reason,
            "refunds": [],
            "status": "issued",
            "subtotal": subtotal,
            "subtotal_excluding_tax": excluding_tax,
            "total": total,
            "total_excluding_tax": excluding_tax,
            "total_taxes": [{"amount": tax}] if tax else [],
            "type": "mixed" if pre and post else "post_payment" if post else "pre_payment",
            "voided_at": None,
            "_settle": {"refund": settled[Settlement.REFUND], "credit": settled[Settlement.BALANCE]},
        }

    def _credited_of(self, invoice_id: str, line_id: str) -> list[StripeJson]:
        """The issued credit note lines that credit one invoice line."""
        return [
            line
            for note in self.credit_notes.values()
            if note["invoice"] == invoice_id and note["status"] == "issued"
            for line in note["lines"]["data"]
            if line["invoice_line_item"] == line_id
        ]

    def _credit_note_line(self, invoice: StripeJson, asked: CreditNoteLineRequest, prefix: str) -> StripeJson:
        """One credit note line: never more than the invoice line has left, its tax given or in proportion."""
        source = next((line for line in invoice["lines"]["data"] if line["id"] == asked.invoice_line_id), None)
        if source is None:
            raise StripeObjectNotFound(f"No such invoice line item: '{asked.invoice_line_id}'")
        earlier = self._credited_of(invoice["id"], source["id"])
        credited_before = sum(line["amount"] for line in earlier)
        if not 0 < asked.amount <= source["amount"] - credited_before:
            raise StripeRequestRejected(
                f"The amount credited for invoice line item {source['id']} ({asked.amount}) must be greater than 0 "
                f"and at most what is left of it to credit ({source['amount'] - credited_before}).",
                param=f"{prefix}[amount]",
            )
        tax_before: dict[str | None, tuple[int, int]] = {}
        for line in earlier:
            for tax in line["taxes"]:
                amount, taxable = tax_before.get(_rate_of(tax), (0, 0))
                tax_before[_rate_of(tax)] = (amount + tax["amount"], taxable + (tax["taxable_amount"] or 0))
        if asked.tax_amount is not None:
            taxes = [self._given_tax(invoice, source, asked, tax_before, f"{prefix}[tax_amounts][0]")]
        else:
            taxes = []
            for tax in source["taxes"]:
                # In proportion to all that is credited of the line by now, less the tax credited before.
                amount_before, taxable_before = tax_before.get(_rate_of(tax), (0, 0))
                whole, part = source["amount"], credited_before + asked.amount
                taxable = tax["taxable_amount"]
                taxes.append(
                    dict(
                        tax,
                        amount=min(
                            max(_share(tax["amount"], part, whole) - amount_before, 0), tax["amount"] - amount_before
                        ),
                        taxable_amount=None if taxable is None else _share(taxable, part, whole) - taxable_before,
                    )
                )
        return {
            "id": self._new_id("cnli"),
            "object": "credit_note_line_item",
            "amount": asked.amount,
            "description": source["description"],
            "invoice_line_item": source["id"],
            "metadata": {},
            "quantity": 1,
            "taxes": taxes,
            "type": "invoice_line_item",
        }

    def _given_tax(
        self,
        invoice: StripeJson,
        source: StripeJson,
        asked: CreditNoteLineRequest,
        tax_before: Mapping[str | None, tuple[int, int]],
        param: str,
    ) -> StripeJson:
        """A tax amount given with a credit note line, at a rate Stripe made that the invoice line has."""
        if invoice["automatic_tax"]["enabled"]:
            raise StripeRequestRejected(
                "tax_amounts are not valid when the invoice is set up with automatic_tax[enabled]=true.", param=param
            )
        made = self._stripe_made_rates.values()
        if asked.tax_rate_id not in made and asked.tax_rate_id not in self.tax_rates:
            raise StripeObjectNotFound(f"No such tax rate: '{asked.tax_rate_id}'")
        if asked.tax_rate_id not in made:
            raise StripeRequestRejected(
                f"The tax rate {asked.tax_rate_id} was not created automatically by Stripe.", param=f"{param}[tax_rate]"
            )
        charged = next((tax for tax in source["taxes"] if _rate_of(tax) == asked.tax_rate_id), None)
        if charged is None:
            raise StripeRequestRejected(
                f"Invoice line item {source['id']} has no tax of the tax rate {asked.tax_rate_id}.",
                param=f"{param}[tax_rate]",
            )
        left = charged["amount"] - tax_before.get(asked.tax_rate_id, (0, 0))[0]
        if asked.tax_amount is None or asked.tax_amount > left:
            raise StripeRequestRejected(
                f"The tax amount credited for invoice line item {source['id']} ({asked.tax_amount}) must be at most "
                f"what is left of its tax to credit ({left}).",
                param=f"{param}[amount]",
            )
        taxable = asked.amount if asked.taxable_amount is None else asked.taxable_amount
        return _tax(
            asked.tax_amount, taxable, inclusive=charged["tax_behavior"] == "inclusive", rate_id=asked.tax_rate_id
        )

    def _apply_credit_note(self, invoice: StripeJson, note: StripeJson) -> None:
        """The issued credit note's effect: less due, or a refund, a balance credit or an out-of-band record."""
        settle = note.pop("_settle")
        pre, post = note["pre_payment_amount"], note["post_payment_amount"]
        invoice["pre_payment_credit_notes_amount"] = invoice.get("pre_payment_credit_notes_amount", 0) + pre
        invoice["post_payment_credit_notes_amount"] = invoice.get("post_payment_credit_notes_amount", 0) + post
        invoice["amount_due"] -= pre
        invoice["amount_remaining"] -= pre
        if settle["refund"]:
            refund = {"refund": self._new_id("re"), "amount_refunded": settle["refund"], "type": "refund"}
            note["refunds"] = [dict(refund, payment_record_refund=None)]
        if settle["credit"]:
            note["customer_balance_transaction"] = self._new_id("cbtxn")
            self._move_balance(invoice["customer"], -settle["credit"])
        self.credit_notes[note["id"]] = note
        self._emit("credit_note.created", note)
        if invoice["status"] == "open" and invoice["amount_remaining"] == 0:
            # Nothing left to pay: the credit notes settle the invoice, without a payment.
            self._processing.discard(invoice["id"])
            self._mark_paid(invoice)

    def retrieve_event(self, event_id: str) -> StripeEvent:
        """One emitted event by id."""
        self._read("retrieve_event", {"event_id": event_id}, lambda: {})
        for event in self.events:
            if event["id"] == event_id:
                return StripeEvent.from_json(copy.deepcopy(event))
        raise StripeObjectNotFound(f"No such event: '{event_id}'")

    def list_events(self, *, created_after: int, types: Sequence[str] = ()) -> Iterator[StripeEvent]:
        """Events emitted by invoice transitions, created after ``created_after``."""
        self._read("list_events", {"created_after": created_after, "types": list(types)}, lambda: {})
        return iter(
            [
                StripeEvent.from_json(copy.deepcopy(e))
                for e in self.events
                if e["created"] > created_after and (not types or e["type"] in types)
            ]
        )

    # --- collecting ---

    def _attempt_payment(self, invoice: StripeJson, *, synchronous: bool) -> None:
        """One charge of the customer's default payment method; a synchronous one raises a decline."""
        invoice["attempt_count"] += 1  # Stripe counts every attempt
        pm_id = self.customers[invoice["customer"]]["invoice_settings"]["default_payment_method"]
        if pm_id is None:  # an automatic attempt without a payment method fails
            self._payment_failed(invoice)
            return
        made_from = self._made_from.get(pm_id, pm_id)
        if TEST_PAYMENT_METHODS.get(made_from, {}).get("type") == "sepa_debit":
            invoice["next_payment_attempt"] = None
            self._processing.add(invoice["id"])  # the debit settles later (``settle_debits``)
            return
        outcome = _CHARGE_OUTCOMES.get(made_from, "succeeds")
        if outcome == "succeeds":
            self._mark_paid(invoice)
        elif outcome == "declines":
            self._payment_failed(invoice)
            if synchronous:
                raise PaymentDeclined("Your card was declined.", code="card_declined", decline_code="generic_decline")
        else:
            invoice["next_payment_attempt"] = None
            self._emit("invoice.payment_action_required", invoice)
            if synchronous:
                # What Stripe answers when paying an invoice needs 3-D Secure.
                raise PaymentActionRequired(
                    "This payment requires additional user action.", code="invoice_payment_intent_requires_action"
                )

    def _payment_failed(self, invoice: StripeJson) -> None:
        retry = invoice["auto_advance"] and invoice["attempt_count"] < MAX_ATTEMPTS
        invoice["next_payment_attempt"] = self.clock() + RETRY_INTERVAL if retry else None
        self._emit("invoice.payment_failed", invoice)

    def _mark_paid(self, invoice: StripeJson) -> None:
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0, next_payment_attempt=None)
        invoice["status_transitions"]["paid_at"] = self.clock()
        self._emit("invoice.paid", invoice)

    def _fail_finalization(self, invoice: StripeJson, reason: str, code: str | None = None) -> None:
        """Stripe could not finalize: the invoice stays a draft, says why, and the request fails."""
        invoice["last_finalization_error"] = {"type": "invalid_request_error", "message": reason, "code": code}
        self._emit("invoice.finalization_failed", invoice)
        raise StripeRequestRejected(reason, code=code)

    # --- taxes and totals ---

    def _planned_taxes(self, invoice: StripeJson, lines: Sequence[InvoiceLine]) -> list[_LineTax]:
        """Each new line's tax, refusing what Stripe refuses (nothing is added yet)."""
        automatic = invoice["automatic_tax"]["enabled"]
        existing = [self._line_taxes.get(line["id"], _LineTax()) for line in invoice["lines"]["data"]]
        rated = any(tax.rates for tax in existing)
        manual = any(tax.manual is not None for tax in existing)
        planned = []
        for index, line in enumerate(lines):
            if automatic and (line.tax_rate_ids or line.tax_amount is not None):
                raise StripeRequestRejected(
                    "Lines with tax rates or tax amounts cannot be added to an invoice that uses automatic tax.",
                    param=f"lines[{index}]",
                )
            if automatic and line.amount < 0:
                raise StripeRequestRejected(
                    "Invoice items with negative amounts cannot be added to an invoice that uses automatic tax.",
                    param=f"lines[{index}][amount]",
                )
            if line.tax_amount is not None:
                if rated:
                    raise StripeRequestRejected(
                        "You cannot set tax amounts if any line item of the invoice has tax_rates.",
                        param=f"lines[{index}][tax_amounts]",
                    )
                manual = True
                inclusive = line.tax_rate.inclusive if line.tax_rate is not None else False
                rate_key = line.tax_rate.key if line.tax_rate is not None else "manual"
                planned.append(
                    _LineTax(manual=line.tax_amount, manual_inclusive=inclusive, manual_rate=self._made_rate(rate_key))
                )
                continue
            rates = []
            for rate_id in line.tax_rate_ids:
                rate = self.tax_rates.get(rate_id)
                if rate is None:
                    raise StripeObjectNotFound(f"No such tax rate: '{rate_id}'")
                rates.append((rate_id, Decimal(rate["percentage"]), bool(rate.get("inclusive", False))))
            if rates and manual:
                raise StripeRequestRejected(
                    "You cannot set tax_rates on a line item of an invoice whose line items have tax amounts.",
                    param=f"lines[{index}][tax_rates]",
                )
            rated = rated or bool(rates)
            planned.append(_LineTax(rates=tuple(rates)))
        return planned

    def _recompute(self, invoice: StripeJson) -> None:
        """Every line's taxes and the invoice's totals, from its lines and its customer as they are now."""
        customer = self.customers.get(invoice["customer"], {})
        exempt = (customer.get("tax_exempt") or "none") != "none"
        lines = invoice["lines"]["data"]
        nets = []
        if invoice["automatic_tax"]["enabled"]:
            country = (customer.get("address") or {}).get("country")
            invoice["automatic_tax"]["status"] = "complete" if country else "requires_location_inputs"
            rate = SELLER_VAT if country in EU_COUNTRIES and not exempt else Decimal(0)
            taxes = _spread_rounded([line["amount"] for line in lines], rate) if country else [None] * len(lines)
            rate_id = self._made_rate(f"automatic-{rate}")
            for line, tax in zip(lines, taxes, strict=True):
                line["taxes"] = [] if tax is None else [_tax(tax, line["amount"], inclusive=False, rate_id=rate_id)]
                nets.append(line["amount"])
        else:
            for line in lines:
                source = self._line_taxes.get(line["id"], _LineTax())
                line["taxes"], net = _line_taxes(line["amount"], source, exempt)
                nets.append(net)
        subtotal = sum(line["amount"] for line in lines)
        net = sum(nets)
        tax = sum(entry["amount"] for line in lines for entry in line["taxes"])
        total = net + tax
        if invoice["status"] == "draft":  # a draft shows the balance its customer has now
            invoice["starting_balance"] = customer.get("balance", 0)
        invoice.update(
            subtotal=subtotal,
            total_excluding_tax=net,
            total_taxes=[{"amount": tax}] if tax else [],
            total=total,
            amount_due=max(total + _balance_applied(total, invoice.get("starting_balance", 0)), 0),
        )
        invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]

    def _made_rate(self, key: str) -> str:
        """The id of the archived rate Stripe makes for ``key`` (one per key, as Stripe reuses it)."""
        if key not in self._stripe_made_rates:
            self._stripe_made_rates[key] = self._new_id("txr")
        return self._stripe_made_rates[key]

    # --- the customer's balance ---

    def _apply_balance(self, invoice: StripeJson) -> int:
        """Finalizing takes the customer's balance into the invoice; the balance left after it."""
        applied = _balance_applied(invoice["total"], invoice["starting_balance"])
        if applied:
            self._move_balance(invoice["customer"], -applied)
        return int(invoice["starting_balance"] - applied)

    def _defer_too_small(self, invoice: StripeJson) -> None:
        """An amount due below Stripe's minimum charge is not charged: it moves to the customer's balance."""
        due = invoice["amount_due"]
        if not 0 < due < MINIMUM_CHARGE.get(invoice["currency"], 0):
            return
        self._move_balance(invoice["customer"], due)
        invoice.update(amount_due=0, amount_remaining=0, ending_balance=invoice["ending_balance"] + due)

    def _move_balance(self, customer_id: str, amount: int) -> None:
        """Add ``amount`` (negative: a credit) to the customer's balance; its drafts follow."""
        customer = self.customers[customer_id]
        customer["balance"] = customer.get("balance", 0) + amount
        for invoice in self.invoices.values():
            if invoice["customer"] == customer_id and invoice["status"] == "draft":
                self._recompute(invoice)


def _rendered(invoice: StripeJson) -> StripeJson:
    """The invoice as Stripe answers with it: a copy listing its first ten lines."""
    rendered = copy.deepcopy(invoice)
    lines = rendered["lines"]
    lines["has_more"] = len(lines["data"]) > INLINE_LINES
    lines["data"] = lines["data"][:INLINE_LINES]
    return rendered


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _tax(amount: int, taxable: int | None, *, inclusive: bool, rate_id: str | None = None) -> StripeJson:
    return {
        "amount": amount,
        "taxable_amount": taxable,
        "tax_behavior": "inclusive" if inclusive else "exclusive",
        "tax_rate_details": {"tax_rate": rate_id} if rate_id else None,
        "type": "tax_rate_details",
    }


def _balance_applied(total: int, starting_balance: int) -> int:
    """How much of the customer's balance an invoice of ``total`` takes: a debit all of it, a credit up to the total."""
    if starting_balance >= 0:
        return starting_balance
    return max(starting_balance, -max(total, 0))


def _line_net(line: StripeJson) -> int:
    """A line's amount without tax: less its inclusive tax (or what an exemption backed out)."""
    for tax in line["taxes"] or []:
        if tax["tax_behavior"] == "inclusive" and tax["taxable_amount"] is not None:
            return int(tax["taxable_amount"])
    return int(line["amount"])


def _rate_of(tax: StripeJson) -> str | None:
    return (tax.get("tax_rate_details") or {}).get("tax_rate")


def _share(amount: int, part: int, whole: int) -> int:
    """``amount * part / whole``, rounded half away from zero."""
    return 0 if whole == 0 else _round(Decimal(amount) * part / whole)


def _line_taxes(amount: int, source: _LineTax, exempt: bool) -> tuple[list[StripeJson], int]:
    """A line's taxes and its net amount: Tax Rates rounded per line, or its manual amount.

    An inclusive rate's tax is part of the amount (``amount * p / (100 + inclusive rates)``); an
    exclusive one comes on top of the net. An exempt or reverse-charge customer pays none of them,
    and an inclusive tax is backed out of the price.
    """
    if source.manual is not None:
        net = amount - source.manual if source.manual_inclusive else amount
        return [_tax(source.manual, net, inclusive=source.manual_inclusive, rate_id=source.manual_rate)], net
    inclusive_sum = sum((p for _, p, inclusive in source.rates if inclusive), Decimal(0))
    included = [
        _round(Decimal(amount) * p / (_HUNDRED + inclusive_sum)) for _, p, inclusive in source.rates if inclusive
    ]
    net = amount - sum(included)
    taxes, included_taxes = [], iter(included)
    for rate_id, percentage, inclusive in source.rates:
        tax = next(included_taxes) if inclusive else _round(Decimal(net) * percentage / _HUNDRED)
        taxes.append(_tax(0 if exempt else tax, net, inclusive=inclusive, rate_id=rate_id))
    return taxes, net


def _spread_rounded(amounts: Sequence[int], rate: Decimal) -> list[int]:
    """Stripe Tax's exclusive tax: summed over the invoice, rounded once, spread over the lines."""
    exact = [Decimal(amount) * rate / _HUNDRED for amount in amounts]
    floors = [int(value.to_integral_value(rounding=ROUND_FLOOR)) for value in exact]
    remainder = _round(sum(exact, Decimal(0))) - sum(floors)
    for index in sorted(range(len(exact)), key=lambda i: floors[i] - exact[i])[:remainder]:
        floors[index] += 1
    return floors


def _credit_note_kwargs(request: CreditNoteRequest) -> dict[str, Any]:
    """The request as plain data, to compare what an idempotency key was first used with."""
    return {
        "invoice_id": request.invoice_id,
        "lines": [dataclasses.asdict(line) for line in request.lines],
        "settlement": str(request.settlement),
        "memo": request.memo,
        "metadata": dict(request.metadata),
        "reason": request.reason,
    }


def _check_metadata(metadata: Mapping[str, Any] | None, param: str) -> None:
    if len(metadata or {}) > METADATA_MAX_KEYS:
        raise StripeRequestRejected(f"Invalid {param}: metadata can have at most {METADATA_MAX_KEYS} keys", param=param)
    for key, value in (metadata or {}).items():
        if len(str(key)) > METADATA_KEY_MAX or len(str(value)) > METADATA_VALUE_MAX:
            raise StripeRequestRejected(
                f"Metadata keys can be at most {METADATA_KEY_MAX} characters and values at most "
                f"{METADATA_VALUE_MAX}: {key}",
                param=f"{param}[{key}]",
            )


def _check_custom_fields(fields: Mapping[str, str] | None) -> None:
    if len(fields or {}) > MAX_CUSTOM_FIELDS:
        raise StripeRequestRejected(f"custom_fields: at most {MAX_CUSTOM_FIELDS} custom fields", param="custom_fields")
    for index, (name, value) in enumerate((fields or {}).items()):
        if len(name) > MAX_CUSTOM_FIELD_NAME or len(str(value)) > MAX_CUSTOM_FIELD_VALUE:
            raise StripeRequestRejected(
                f"custom_fields[{index}]: a name of up to {MAX_CUSTOM_FIELD_NAME} characters, a value of up to "
                f"{MAX_CUSTOM_FIELD_VALUE}",
                param=f"custom_fields[{index}]",
            )


def _check_percentage(percentage: Decimal) -> None:
    exponent = Decimal(percentage).normalize().as_tuple().exponent
    if not Decimal(0) <= percentage <= _HUNDRED or (isinstance(exponent, int) and exponent < -MAX_PERCENTAGE_PLACES):
        raise StripeRequestRejected(
            f"Invalid percentage: from 0 to 100, with at most {MAX_PERCENTAGE_PLACES} decimal places",
            param="percentage",
        )


def _check_details(details) -> None:
    if details is not None and details.tax_exempt and details.tax_exempt not in TAX_EXEMPTIONS:
        raise StripeRequestRejected(
            f"Invalid tax_exempt: must be one of {', '.join(TAX_EXEMPTIONS)}", param="tax_exempt"
        )


def _customer_details(details) -> StripeJson:
    """The customer fields ``details`` sets, in Stripe's names."""
    fields: StripeJson = {}
    if details.name:
        fields["name"] = details.name
    if details.email:
        fields["email"] = details.email
    if details.address is not None:
        fields["address"] = {
            "line1": details.address.line1,
            "postal_code": details.address.postal_code,
            "city": details.address.city,
            "country": details.country,
        }
    if details.language:
        fields["preferred_locales"] = [details.language]
    if details.tax_exempt:
        fields["tax_exempt"] = details.tax_exempt
    return fields
