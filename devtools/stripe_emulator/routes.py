"""The Stripe API routes the emulator serves, each an operation the pinned SDK declares, and their handlers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stripe_emulator import contract
from stripe_emulator.store import RequestContext, Store

Handler = Callable[[Store, dict[str, Any], RequestContext, dict[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """One Stripe API operation, by the method and path template the SDK declares for it."""

    method: str
    path: str  # the SDK's template, e.g. /v1/invoices/{invoice}/pay
    handler: Handler
    publishable: bool = False  # reachable with the publishable key (as Stripe.js does)

    @property
    def label(self) -> str:
        """The route as counted by ``/_emulator/requests``, e.g. ``POST /v1/invoices/{id}/pay``."""
        return f"{self.method} {re.sub(r'{[a-z_]+}', '{id}', self.path)}"

    @property
    def rule(self) -> str:
        """The path as a werkzeug rule."""
        return re.sub(r"{([a-z_]+)}", r"<\1>", self.path)

    @property
    def operation(self) -> contract.Operation:
        """The SDK's declaration of this operation (``KeyError`` if Stripe has no such route)."""
        return contract.operation(self.method, self.path)


# Parameters Stripe.js sends with the publishable key; the server-side SDK does not declare them.
STRIPE_JS_PARAMS: dict[str, Any] = {"client_secret": str}


def _confirm(store: Store, p: dict[str, Any], ctx: RequestContext, a: dict[str, str]) -> dict[str, Any]:
    return store.confirm_setup_intent(a["id"], p, ctx, client_secret_required=a.get("_publishable") == "1")


def _retrieve_setup_intent(store: Store, p: dict[str, Any], ctx: RequestContext, a: dict[str, str]) -> dict[str, Any]:
    secret = p.get("client_secret")
    if a.get("_publishable") == "1" and secret is None:
        secret = ""
    return store.retrieve_setup_intent(a["id"], secret)


ROUTES: list[Route] = [
    Route("POST", "/v1/customers", lambda s, p, c, a: s.create_customer(p, c)),
    Route("GET", "/v1/customers", lambda s, p, c, a: s.list_customers(p)),
    Route("GET", "/v1/customers/{customer}", lambda s, p, c, a: s.retrieve_customer(a["id"])),
    Route("POST", "/v1/customers/{customer}", lambda s, p, c, a: s.update_customer(a["id"], p, c)),
    Route("DELETE", "/v1/customers/{customer}", lambda s, p, c, a: s.delete_customer(a["id"], c)),
    Route("GET", "/v1/customers/{customer}/payment_methods", lambda s, p, c, a: s.list_payment_methods(p, a["id"])),
    Route(
        "GET",
        "/v1/customers/{customer}/balance_transactions",
        lambda s, p, c, a: s.list_balance_transactions(a["customer"], p),
    ),
    Route(
        "GET",
        "/v1/customers/{customer}/balance_transactions/{transaction}",
        lambda s, p, c, a: s.retrieve_balance_transaction(a["customer"], a["transaction"]),
    ),
    Route("POST", "/v1/customers/{customer}/tax_ids", lambda s, p, c, a: s.create_tax_id(a["customer"], p, c)),
    Route("GET", "/v1/customers/{customer}/tax_ids", lambda s, p, c, a: s.list_tax_ids(a["customer"], p)),
    Route("GET", "/v1/customers/{customer}/tax_ids/{id}", lambda s, p, c, a: s.retrieve_tax_id(a["customer"], a["id"])),
    Route(
        "DELETE", "/v1/customers/{customer}/tax_ids/{id}", lambda s, p, c, a: s.delete_tax_id(a["customer"], a["id"], c)
    ),
    Route("POST", "/v1/setup_intents", lambda s, p, c, a: s.create_setup_intent(p, c)),
    Route("GET", "/v1/setup_intents", lambda s, p, c, a: s.list_setup_intents(p)),
    Route("GET", "/v1/setup_intents/{intent}", _retrieve_setup_intent, publishable=True),
    Route("POST", "/v1/setup_intents/{intent}", lambda s, p, c, a: s.update_setup_intent(a["id"], p, c)),
    Route("POST", "/v1/setup_intents/{intent}/confirm", _confirm, publishable=True),
    Route("POST", "/v1/setup_intents/{intent}/cancel", lambda s, p, c, a: s.cancel_setup_intent(a["id"], p, c)),
    Route("GET", "/v1/setup_attempts", lambda s, p, c, a: s.list_setup_attempts(p)),
    Route("GET", "/v1/mandates/{mandate}", lambda s, p, c, a: s.retrieve("mandate", a["id"])),
    Route("POST", "/v1/payment_methods", lambda s, p, c, a: s.create_payment_method(p), publishable=True),
    Route("GET", "/v1/payment_methods", lambda s, p, c, a: s.list_payment_methods(p)),
    Route("GET", "/v1/payment_methods/{payment_method}", lambda s, p, c, a: s.retrieve_payment_method(a["id"])),
    Route(
        "POST", "/v1/payment_methods/{payment_method}/attach", lambda s, p, c, a: s.attach_payment_method(a["id"], p, c)
    ),
    Route(
        "POST", "/v1/payment_methods/{payment_method}/detach", lambda s, p, c, a: s.detach_payment_method(a["id"], c)
    ),
    Route("POST", "/v1/invoiceitems", lambda s, p, c, a: s.create_invoiceitem(p, c)),
    Route("GET", "/v1/invoiceitems", lambda s, p, c, a: s.list_invoiceitems(p)),
    Route("GET", "/v1/invoiceitems/{invoiceitem}", lambda s, p, c, a: s.retrieve("invoiceitem", a["id"])),
    Route("POST", "/v1/invoiceitems/{invoiceitem}", lambda s, p, c, a: s.update_invoiceitem(a["id"], p, c)),
    Route("DELETE", "/v1/invoiceitems/{invoiceitem}", lambda s, p, c, a: s.delete_invoiceitem(a["id"], c)),
    Route("POST", "/v1/tax_rates", lambda s, p, c, a: s.create_tax_rate(p, c)),
    Route("GET", "/v1/tax_rates", lambda s, p, c, a: s.list_tax_rates(p)),
    Route("GET", "/v1/tax_rates/{tax_rate}", lambda s, p, c, a: s.retrieve("tax_rate", a["id"])),
    Route("POST", "/v1/tax_rates/{tax_rate}", lambda s, p, c, a: s.update_tax_rate(a["id"], p, c)),
    Route("POST", "/v1/invoices", lambda s, p, c, a: s.create_invoice(p, c)),
    Route("GET", "/v1/invoices", lambda s, p, c, a: s.list_invoices(p)),
    Route("GET", "/v1/invoices/{invoice}", lambda s, p, c, a: s.retrieve("invoice", a["id"])),
    Route("POST", "/v1/invoices/{invoice}", lambda s, p, c, a: s.update_invoice(a["id"], p, c)),
    Route("DELETE", "/v1/invoices/{invoice}", lambda s, p, c, a: s.delete_invoice(a["id"], c)),
    Route("GET", "/v1/invoices/{invoice}/lines", lambda s, p, c, a: s.list_invoice_lines(a["id"], p)),
    Route("POST", "/v1/invoices/{invoice}/add_lines", lambda s, p, c, a: s.add_lines(a["id"], p, c)),
    Route("POST", "/v1/invoices/{invoice}/finalize", lambda s, p, c, a: s.finalize_invoice(a["id"], p, c)),
    Route("POST", "/v1/invoices/{invoice}/pay", lambda s, p, c, a: s.pay_invoice(a["id"], p, c)),
    Route("POST", "/v1/invoices/{invoice}/void", lambda s, p, c, a: s.void_invoice(a["id"], c)),
    Route("POST", "/v1/invoices/{invoice}/mark_uncollectible", lambda s, p, c, a: s.mark_uncollectible(a["id"], c)),
    Route("POST", "/v1/credit_notes", lambda s, p, c, a: s.create_credit_note(p, c)),
    Route("GET", "/v1/credit_notes", lambda s, p, c, a: s.list_credit_notes(p)),
    Route("GET", "/v1/credit_notes/preview", lambda s, p, c, a: s.preview_credit_note(p, c)),
    Route("GET", "/v1/credit_notes/preview/lines", lambda s, p, c, a: s.preview_credit_note_lines(p, c)),
    Route("GET", "/v1/credit_notes/{id}", lambda s, p, c, a: s.retrieve_credit_note(a["id"])),
    Route("POST", "/v1/credit_notes/{id}", lambda s, p, c, a: s.update_credit_note(a["id"], p, c)),
    Route("POST", "/v1/credit_notes/{id}/void", lambda s, p, c, a: s.void_credit_note(a["id"], c)),
    Route("GET", "/v1/credit_notes/{credit_note}/lines", lambda s, p, c, a: s.list_credit_note_lines(a["id"], p)),
    Route("GET", "/v1/refunds", lambda s, p, c, a: s.list_refunds(p)),
    Route("GET", "/v1/refunds/{refund}", lambda s, p, c, a: s.retrieve_refund(a["id"])),
    Route("GET", "/v1/events", lambda s, p, c, a: s.list_events(p)),
    Route("GET", "/v1/events/{id}", lambda s, p, c, a: s.retrieve("event", a["id"])),
    Route("POST", "/v1/webhook_endpoints", lambda s, p, c, a: s.create_webhook_endpoint(p)),
    Route(
        "GET",
        "/v1/webhook_endpoints",
        lambda s, p, c, a: s.list_objects("webhook_endpoint", p, "/v1/webhook_endpoints"),
    ),
    Route(
        "GET", "/v1/webhook_endpoints/{webhook_endpoint}", lambda s, p, c, a: s.retrieve("webhook_endpoint", a["id"])
    ),
    Route("POST", "/v1/webhook_endpoints/{webhook_endpoint}", lambda s, p, c, a: s.update_webhook_endpoint(a["id"], p)),
    Route("DELETE", "/v1/webhook_endpoints/{webhook_endpoint}", lambda s, p, c, a: s.delete_webhook_endpoint(a["id"])),
]
