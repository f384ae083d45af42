"""An in-memory Stripe for unit tests: replays repeated idempotency keys, fails like Stripe on demand.

Re-exported by ``tests.support.fakes``; it raises exactly what the real gateway raises for the same
situation (``tests/unit/test_fakes.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from billing_core.domain.tax import stripe_line_taxes
from billing_core.errors import (
    IdempotencyKeyReused,
    PaymentActionRequired,
    PaymentDeclined,
    StripeFailedAfterExecution,
    StripeObjectNotFound,
    StripeRequestRejected,
)
from billing_core.ports import (
    PaymentGateway,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripePaymentMethod,
    StripeSetupIntent,
)

# The fake keeps Stripe's objects as Stripe's JSON and answers through the port's typed readers,
# exactly as the real adapter reads the SDK's answers.
StripeJson = dict[str, Any]

# Stripe's test payment methods, as the emulator knows them.
TEST_PAYMENT_METHODS: dict[str, dict[str, Any]] = {
    "pm_card_visa": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
    "pm_card_mastercard": {"type": "card", "card": {"brand": "mastercard", "last4": "4444"}},
    "pm_card_chargeCustomerFail": {"type": "card", "card": {"brand": "visa", "last4": "0341"}},
    "pm_card_authenticationRequired": {"type": "card", "card": {"brand": "visa", "last4": "3184"}},
    "pm_sepa_debit": {"type": "sepa_debit", "sepa_debit": {"last4": "3000", "country": "DE"}},
}


@dataclass
class GatewayCall:
    """One call made to the fake gateway."""

    method: str
    kwargs: dict[str, Any]
    idempotency_key: str | None = None
    replayed: bool = False


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

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._replies: dict[str, tuple[str, dict[str, Any], Any]] = {}
        self._failures: dict[str, list[Exception]] = {}
        self._fail_after: set[str] = set()
        self._finalization_failures: list[str] = []
        self._invoice_numbers = itertools.count(1)

    # --- test controls ---

    def fail_next(self, method: str, error: Exception) -> None:
        """Make the next call of ``method`` raise ``error`` (before any effect, like a network failure)."""
        self._failures.setdefault(method, []).append(error)

    def calls_to(self, method: str, *, replayed: bool | None = None) -> list[GatewayCall]:
        """Calls of ``method`` (optionally only replays or only first executions)."""
        return [c for c in self.calls if c.method == method and (replayed is None or c.replayed == replayed)]

    # --- plumbing ---

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def _read(self, method: str, kwargs: dict[str, Any], action: Callable[[], StripeJson]) -> StripeJson:
        self.calls.append(GatewayCall(method, kwargs))
        self._maybe_fail(method)
        return copy.deepcopy(action())

    def _write(
        self, method: str, idempotency_key: str, kwargs: dict[str, Any], action: Callable[[], StripeJson]
    ) -> StripeJson:
        if not idempotency_key:
            raise ValueError("every Stripe write needs an idempotency key")
        self._maybe_fail(method)
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

    def fail_after_execution_next(self, method: str) -> None:
        """The next call of ``method`` takes effect, then answers a 500 that its key keeps replaying."""
        self._fail_after.add(method)

    def fail_finalization_next(self, reason: str = "The invoice could not be finalized.") -> None:
        """The next finalization fails as Stripe's does (``invoice.finalization_failed``; still a draft)."""
        self._finalization_failures.append(reason)

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
        self.events.append(
            {
                "id": self._new_id("evt"),
                "object": "event",
                "type": event_type,
                "created": self.clock(),
                "data": {"object": copy.deepcopy(obj)},
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
                "metadata": {"userId": account_id},
                "invoice_settings": {"default_payment_method": None},
                "created": self.clock(),
            }
            if details is not None:
                customer.update(_customer_details(details))
                if details.vat_id:
                    customer["tax_ids"] = [{"type": "eu_vat", "value": details.vat_id}]
            self.customers[customer["id"]] = customer
            return customer

        kwargs = {"account_id": account_id, "email": email, "name": name, "details": details}
        return StripeCustomer.from_json(self._write("create_customer", idempotency_key, kwargs, action))

    def update_customer(self, customer_id, *, details, idempotency_key) -> StripeCustomer:
        """The customer with ``details`` set."""

        def action() -> StripeJson:
            customer = self.customers[customer_id]
            customer.update(_customer_details(details))
            return customer

        kwargs = {"customer_id": customer_id, "details": details}
        return StripeCustomer.from_json(self._write("update_customer", idempotency_key, kwargs, action))

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
        return StripeSetupIntent.from_json(self._write("create_setup_intent", idempotency_key, kwargs, action))

    def set_default_payment_method(self, *, customer_id, payment_method_id, idempotency_key) -> StripeCustomer:
        """Set ``invoice_settings.default_payment_method``."""

        def action() -> StripeJson:
            customer = self._customer(customer_id)
            if payment_method_id not in TEST_PAYMENT_METHODS:
                raise StripeObjectNotFound(f"No such PaymentMethod: '{payment_method_id}'")
            customer["invoice_settings"]["default_payment_method"] = payment_method_id
            return customer

        kwargs = {"customer_id": customer_id, "payment_method_id": payment_method_id}
        answer = self._write("set_default_payment_method", idempotency_key, kwargs, action)
        return StripeCustomer.from_json(answer)

    def retrieve_payment_method(self, payment_method_id: str) -> StripePaymentMethod:
        """One of Stripe's test payment methods."""

        def action() -> StripeJson:
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
                "currency": currency,
                "status": "draft",
                "collection_method": "charge_automatically",
                "auto_advance": auto_advance,
                "description": description,
                "metadata": {k: str(v) for k, v in (metadata or {}).items()},
                "lines": {"object": "list", "data": []},
                "amount_due": 0,
                "total": 0,
                "number": None,
                "hosted_invoice_url": None,
                "invoice_pdf": None,
                "created": self.clock(),
                "custom_fields": [{"name": k, "value": v} for k, v in (custom_fields or {}).items()] or None,
                "footer": footer,
                "automatic_tax": {"enabled": automatic_tax},
                "total_excluding_tax": 0,
                "total_taxes": [],
            }
            self.invoices[invoice["id"]] = invoice
            return invoice

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
        return StripeInvoice.from_json(self._write("create_draft_invoice", idempotency_key, kwargs, action))

    def find_tax_rate(self, key: str) -> str | None:
        """The active tax rate created with ``key``."""
        self.calls.append(GatewayCall("find_tax_rate", {"key": key}))
        self._maybe_fail("find_tax_rate")
        return next((rate_id for rate_id, rate in self.tax_rates.items() if rate["key"] == key), None)

    def create_tax_rate(self, spec, *, idempotency_key: str) -> str:
        """A tax rate (per-line rounding, exclusive, like Stripe's)."""

        def action() -> StripeJson:
            rate_id = self._new_id("txr")
            self.tax_rates[rate_id] = {"id": rate_id, "key": spec.key, "percentage": spec.percentage}
            return {"id": rate_id}

        kwargs = {"spec": dataclasses.asdict(spec)}
        return str(self._write("create_tax_rate", idempotency_key, kwargs, action)["id"])

    def add_invoice_lines(self, *, invoice_id, lines, idempotency_key) -> StripeInvoice:
        """Invoice items on a draft, in one request; answers the invoice with its new total."""
        if not lines:
            raise ValueError("add_invoice_lines needs at least one line")

        def action() -> StripeJson:
            invoice = self._invoice(invoice_id)
            if invoice["status"] != "draft":
                raise StripeRequestRejected("You can only add lines to a draft invoice.", code="invoice_not_editable")
            for line in lines:
                period = {"start": line.period_start, "end": line.period_end} if line.period_start is not None else None
                taxes = []
                for rate_id in line.tax_rate_ids:
                    if rate_id not in self.tax_rates:
                        raise StripeObjectNotFound(f"No such tax rate: '{rate_id}'")
                    percentage = self.tax_rates[rate_id]["percentage"]
                    taxes.append(
                        {"amount": stripe_line_taxes([line.amount], percentage)[0], "taxable_amount": line.amount}
                    )
                if line.tax_amount is not None:
                    taxes.append({"amount": line.tax_amount, "taxable_amount": line.amount})
                invoice["lines"]["data"].append(
                    {
                        "id": self._new_id("il"),
                        "object": "line_item",
                        "amount": line.amount,
                        "currency": invoice["currency"],
                        "description": line.description,
                        "metadata": {k: str(v) for k, v in line.metadata.items()},
                        "period": period,
                        "taxes": taxes,
                    }
                )
            net = sum(item["amount"] for item in invoice["lines"]["data"])
            tax = sum(t["amount"] for item in invoice["lines"]["data"] for t in item["taxes"])
            invoice["total_excluding_tax"] = net
            invoice["total_taxes"] = [{"amount": tax}] if tax else []
            invoice["total"] = invoice["amount_due"] = net + tax
            return invoice

        kwargs = {"invoice_id": invoice_id, "lines": [dataclasses.asdict(line) for line in lines]}
        return StripeInvoice.from_json(self._write("add_invoice_lines", idempotency_key, kwargs, action))

    def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str, auto_advance: bool | None = None
    ) -> StripeInvoice:
        """Draft -> open, with a number and hosted URLs (and ``auto_advance`` set when given)."""

        def action() -> StripeJson:
            invoice = self._invoice(invoice_id)
            if invoice["status"] != "draft":
                raise StripeRequestRejected(
                    "This invoice is already finalized, you can't re-finalize a non-draft invoice."
                )
            if self._finalization_failures:
                reason = self._finalization_failures.pop(0)
                invoice["last_finalization_error"] = {"type": "invalid_request_error", "message": reason}
                self._emit("invoice.finalization_failed", invoice)
                raise StripeRequestRejected(reason)
            number = next(self._invoice_numbers)
            invoice.update(
                status="open",
                number=f"FAKE-{number:04d}",
                hosted_invoice_url=f"https://invoice.stripe.test/{invoice_id}",
                invoice_pdf=f"https://invoice.stripe.test/{invoice_id}/pdf",
            )
            if auto_advance is not None:
                invoice["auto_advance"] = auto_advance
            self._emit("invoice.finalized", invoice)
            return invoice

        kwargs = {"invoice_id": invoice_id, "auto_advance": auto_advance}
        return StripeInvoice.from_json(self._write("finalize_invoice", idempotency_key, kwargs, action))

    def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        """Charge the default payment method; Stripe's failing test cards fail here, too."""

        def action() -> StripeJson:
            invoice = self._invoice(invoice_id)
            if invoice["status"] == "paid":
                raise StripeRequestRejected("Invoice is already paid.")
            if invoice["status"] != "open":
                raise StripeRequestRejected("You can only pay an open invoice.")
            method = self._customer(invoice["customer"])["invoice_settings"]["default_payment_method"]
            if method is None:
                raise StripeRequestRejected("This customer has no attached payment source or default payment method.")
            invoice["attempt_count"] = invoice.get("attempt_count", 0) + 1  # Stripe counts every attempt
            if method == "pm_card_chargeCustomerFail":
                self._emit("invoice.payment_failed", invoice)
                raise PaymentDeclined("Your card was declined.", code="card_declined", decline_code="generic_decline")
            if method == "pm_card_authenticationRequired":
                self._emit("invoice.payment_action_required", invoice)
                # What Stripe answers when paying an invoice needs 3-D Secure.
                raise PaymentActionRequired(
                    "This payment requires additional user action.", code="invoice_payment_intent_requires_action"
                )
            invoice.update(status="paid", amount_paid=invoice["amount_due"])
            self._emit("invoice.paid", invoice)
            return invoice

        answer = self._write("pay_invoice", idempotency_key, {"invoice_id": invoice_id}, action)
        return StripeInvoice.from_json(answer)

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        """Open -> void."""

        def action() -> StripeJson:
            invoice = self._invoice(invoice_id)
            if invoice["status"] != "open":
                raise StripeRequestRejected("You can only void an open invoice.")
            invoice["status"] = "void"
            return invoice

        answer = self._write("void_invoice", idempotency_key, {"invoice_id": invoice_id}, action)
        return StripeInvoice.from_json(answer)

    def retrieve_invoice(self, invoice_id: str) -> StripeInvoice:
        """The invoice."""
        answer = self._read("retrieve_invoice", {"invoice_id": invoice_id}, lambda: self._invoice(invoice_id))
        return StripeInvoice.from_json(answer)

    def list_invoices(self, customer_id: str, *, status: str | None = None) -> list[StripeInvoice]:
        """The customer's invoices, newest first."""
        found = [
            i
            for i in self.invoices.values()
            if i["customer"] == customer_id and (status is None or i["status"] == status)
        ]
        self._read("list_invoices", {"customer_id": customer_id, "status": status}, lambda: {})
        return [StripeInvoice.from_json(copy.deepcopy(invoice)) for invoice in reversed(found)]

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
