"""The emulator's in-memory state: Stripe objects, their state machines, payments and events.

One re-entrant lock guards all state, so every API call is atomic with respect to the others and to
the background tasks (automatic charges, SEPA settlement, webhook bookkeeping).
"""
from __future__ import annotations

import copy
import itertools
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stripe_emulator import contract
from stripe_emulator import objects as build
from stripe_emulator.config import EmulatorConfig
from stripe_emulator.errors import (
    CardError,
    ContractViolation,
    InvalidRequestError,
    ParameterError,
    ResourceMissingError,
)
from stripe_emulator.params import require
from stripe_emulator.webhooks import Endpoint, TaskScheduler, event_matches

TYPES = ("customer", "payment_method", "setup_intent", "setup_attempt", "mandate", "invoice", "invoiceitem",
         "event", "webhook_endpoint")
# Fields each object type can expand, as dotted paths.
EXPANDABLE = {
    "customer": {"invoice_settings.default_payment_method", "default_source", "test_clock"},
    "payment_method": {"customer"},
    "setup_intent": {"customer", "payment_method", "latest_attempt", "mandate", "single_use_mandate",
                     "application", "on_behalf_of"},
    "setup_attempt": {"customer", "payment_method", "setup_intent", "application", "on_behalf_of"},
    "invoice": {"customer", "default_payment_method", "default_source", "latest_revision", "application",
                "on_behalf_of", "subscription", "test_clock", "from_invoice.invoice"},
    "invoiceitem": {"customer", "invoice", "test_clock"},
    "line_item": {"invoice", "subscription"},
    "mandate": {"payment_method"},
}
MAX_INLINE_LINES = 10
DECLINED = "Your card was declined."
REQUIRES_ACTION = (
    "This payment requires additional user action before it can be completed successfully. Payment can be "
    "completed using the PaymentIntent associated with the invoice. For more details see: "
    "https://stripe.com/docs/billing/subscriptions/overview#requires-action"
)
NO_PAYMENT_METHOD = (
    "This customer has no attached payment source or default payment method. Please consider adding a "
    "default payment method. For more information, visit "
    "https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority."
)


@dataclass(frozen=True)
class RequestContext:
    """What an event records about the API request that caused it."""

    request_id: str | None = None
    idempotency_key: str | None = None
    base_url: str = ""


BACKGROUND = RequestContext()


class Store:
    """All Stripe objects of one emulator, with Stripe's rules for changing them."""

    def __init__(self, config: EmulatorConfig, scheduler: TaskScheduler,
                 publish: Callable[[dict[str, Any], list[Endpoint]], None]):
        self._config = config
        self._scheduler = scheduler
        self._publish = publish
        self._lock = threading.RLock()
        self._generation = 0
        self._init_state()

    def _init_state(self) -> None:
        self._objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
        self._order: dict[str, int] = {}
        self._seq = itertools.count()
        self._deleted: dict[str, dict[str, Any]] = {}
        self._instrument_secrets: dict[str, str] = {}  # payment method id -> full number / IBAN
        self._endpoint_secrets: dict[str, str] = {}
        self._processing: set[str] = set()  # invoices with a SEPA debit in flight
        self._charge_tokens: dict[str, int] = {}  # latest scheduled automatic charge per invoice

    # --- control ----------------------------------------------------------------------------------

    def atomic(self) -> threading.RLock:
        """The store's lock, for a caller that must see one consistent state across several calls."""
        return self._lock

    def reset(self) -> None:
        """Forget every object and event; scheduled charges and settlements are dropped."""
        with self._lock:
            self._generation += 1
            self._init_state()

    def counts(self) -> dict[str, int]:
        """Live objects per type."""
        with self._lock:
            return {t: len(items) for t, items in self._objects.items()}

    def webhook_settled(self, event_id: str) -> None:
        """One endpoint got (or finally failed to get) the event: one fewer pending webhook."""
        with self._lock:
            event = self._objects["event"].get(event_id)
            if event and event["pending_webhooks"] > 0:
                event["pending_webhooks"] -= 1

    # --- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _now() -> int:
        return int(time.time())

    def _add(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._objects[obj["object"]][obj["id"]] = obj
        self._order[obj["id"]] = next(self._seq)
        return obj

    def _get(self, kind: str, object_id: str | None, param: str | None = "id") -> dict[str, Any]:
        obj = self._objects[kind].get(object_id or "")
        if obj is None:
            raise ResourceMissingError(_KIND_NAMES[kind], object_id or "", param)
        return obj

    def _emit(self, event_type: str, obj: dict[str, Any], ctx: RequestContext,
              previous: dict[str, Any] | None = None) -> None:
        endpoints = [
            Endpoint(we["id"], we["url"], self._endpoint_secrets[we["id"]])
            for we in self._objects["webhook_endpoint"].values()
            if we["status"] == "enabled" and event_matches(we["enabled_events"], event_type)
        ]
        if event_type not in contract.event_types():
            raise ContractViolation("event", [f"{event_type}: Stripe has no such event type"])
        request = {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key}
        event = build.build_event(event_type, self._render_plain(obj), self._now(), request, previous,
                                  len(endpoints))
        if self._config.check_contract:
            problems = contract.object_violations(event)
            if problems:
                raise ContractViolation(f"{event_type} event", problems)
        self._add(event)
        if endpoints:
            self._publish(copy.deepcopy(event), endpoints)

    def _render_plain(self, obj: dict[str, Any]) -> dict[str, Any]:
        rendered = copy.deepcopy(obj)
        if rendered.get("object") == "invoice" and "lines" in rendered:
            lines = rendered["lines"]
            lines["has_more"] = len(lines["data"]) > MAX_INLINE_LINES
            lines["data"] = lines["data"][:MAX_INLINE_LINES]
        return rendered

    def render(self, obj: dict[str, Any], expand: list[str] | None = None) -> dict[str, Any]:
        """A copy of an object (or list envelope) for the API, with the requested fields expanded."""
        with self._lock:
            if obj.get("object") == "list":
                rendered = dict(obj, data=[self._render_plain(item) for item in obj["data"]])
            else:
                rendered = self._render_plain(obj)
            for i, path in enumerate(expand or []):
                self._expand(rendered, path.split("."), path, f"expand[{i}]")
            return rendered

    def _expand(self, obj: dict[str, Any], parts: list[str], path: str, param: str) -> None:
        if obj.get("object") == "list" and parts[0] == "data":
            for item in obj["data"]:
                self._expand(item, parts[1:], path, param)
            return
        allowed = EXPANDABLE.get(obj.get("object", ""), set())
        for cut in range(len(parts), 0, -1):
            if ".".join(parts[:cut]) in allowed:
                break
        else:
            raise ParameterError(f"This property cannot be expanded ({path}).", param=param)
        container: Any = obj
        for segment in parts[: cut - 1]:
            container = container.get(segment) if isinstance(container, dict) else None
        if not isinstance(container, dict):
            return
        value = container.get(parts[cut - 1])
        if isinstance(value, str):
            value = self._render_plain(self._lookup(value))
            container[parts[cut - 1]] = value
        if isinstance(value, dict) and cut < len(parts):
            self._expand(value, parts[cut:], path, param)

    def _lookup(self, object_id: str) -> dict[str, Any]:
        if object_id in self._deleted:
            return self._deleted[object_id]
        kind = build.type_of_id(object_id)
        if kind is None or kind == "line_item":
            raise ResourceMissingError("object", object_id)
        return self._get(kind, object_id)

    def _page(self, items: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
        """Stripe list paging: newest first, ``limit``, ``starting_after`` / ``ending_before``, ``created``."""
        limit = _limit(params)
        created = params.get("created")
        if created:
            items = [o for o in items if _in_range(_created(o), created)]
        key = self._sort_key
        items = sorted(items, key=key, reverse=True)
        if params.get("starting_after"):
            cursor = key(self._cursor(params["starting_after"], "starting_after"))
            rest = [o for o in items if key(o) < cursor]
            return build.list_object(url, rest[:limit], len(rest) > limit)
        if params.get("ending_before"):
            cursor = key(self._cursor(params["ending_before"], "ending_before"))
            before = [o for o in items if key(o) > cursor]
            return build.list_object(url, before[-limit:], len(before) > limit)
        return build.list_object(url, items[:limit], len(items) > limit)

    def _sort_key(self, obj: dict[str, Any]) -> tuple[int, int]:
        return _created(obj), self._order.get(obj["id"], 0)

    def _cursor(self, object_id: str, param: str) -> dict[str, Any]:
        try:
            return self._lookup(object_id)
        except ResourceMissingError:
            raise ResourceMissingError("object", object_id, param) from None

    # --- customers --------------------------------------------------------------------------------

    def create_customer(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/customers."""
        with self._lock:
            customer = self._add(build.build_customer(build.new_id("cus"), self._now(), params))
            self._emit("customer.created", customer, ctx)
            attached_from = params.get("payment_method")
            attached = None
            if attached_from:
                attached = self._attach(self._resolve_payment_method(attached_from, "payment_method"),
                                        customer, ctx)
            default = (params.get("invoice_settings") or {}).get("default_payment_method")
            if default:
                previous_customer = copy.deepcopy(customer)
                pm_id = attached["id"] if attached and default == attached_from else default
                customer["invoice_settings"]["default_payment_method"] = self._owned_payment_method(customer, pm_id)
                self._emit("customer.updated", customer, ctx,
                           build.previous_attributes(previous_customer, customer))
            return customer

    def retrieve_customer(self, customer_id: str) -> dict[str, Any]:
        """GET /v1/customers/{id}: deleted customers answer with their deleted stub, as Stripe does."""
        with self._lock:
            if customer_id in self._deleted:
                return self._deleted[customer_id]
            return self._get("customer", customer_id)

    def update_customer(self, customer_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/customers/{id}."""
        with self._lock:
            customer = self._get("customer", customer_id)
            before = copy.deepcopy(customer)
            for field in ("email", "name", "description", "phone", "invoice_prefix", "tax_exempt"):
                if field in params:
                    customer[field] = params[field] if field != "tax_exempt" else (params[field] or "none")
            if "address" in params:
                customer["address"] = ({**build.empty_address(), **params["address"]}
                                       if params["address"] else None)
            if "preferred_locales" in params:
                customer["preferred_locales"] = list(params["preferred_locales"] or [])
            if "metadata" in params:
                customer["metadata"] = _merge_metadata(customer["metadata"], params["metadata"])
            settings = params.get("invoice_settings") or {}
            if "default_payment_method" in settings:
                pm_id = settings["default_payment_method"]
                customer["invoice_settings"]["default_payment_method"] = (
                    self._owned_payment_method(customer, pm_id) if pm_id else None)
            for field in ("footer", "custom_fields"):
                if field in settings:
                    customer["invoice_settings"][field] = settings[field]
            previous = build.previous_attributes(before, customer)
            if previous:
                self._emit("customer.updated", customer, ctx, previous)
            return customer

    def delete_customer(self, customer_id: str, ctx: RequestContext) -> dict[str, Any]:
        """DELETE /v1/customers/{id}."""
        with self._lock:
            customer = self._get("customer", customer_id)
            del self._objects["customer"][customer_id]
            for pm in self._objects["payment_method"].values():
                if pm["customer"] == customer_id:
                    pm["customer"] = None
            stub = {"id": customer_id, "object": "customer", "deleted": True}
            self._deleted[customer_id] = stub
            self._emit("customer.deleted", customer, ctx)
            return stub

    def list_customers(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/customers."""
        with self._lock:
            items = [c for c in self._objects["customer"].values()
                     if not params.get("email") or c["email"] == params["email"]]
            return self._page(items, params, "/v1/customers")

    def _owned_payment_method(self, customer: dict[str, Any], pm_id: str) -> str:
        pm = self._objects["payment_method"].get(pm_id)
        if pm is None or pm["customer"] != customer["id"]:
            raise InvalidRequestError(
                f"No such PaymentMethod: '{pm_id}'; the payment method must be attached to customer "
                f"{customer['id']} before it can be its default.",
                code="resource_missing", param="invoice_settings[default_payment_method]")
        return pm_id

    # --- payment methods --------------------------------------------------------------------------

    def create_payment_method(self, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/payment_methods from raw card details or an IBAN."""
        with self._lock:
            return self._new_payment_method(params)

    def _new_payment_method(self, data: dict[str, Any]) -> dict[str, Any]:
        pm, secret = build.build_payment_method(data, self._now())
        self._instrument_secrets[pm["id"]] = secret
        return self._add(pm)

    def _resolve_payment_method(self, pm_id: str, param: str) -> dict[str, Any]:
        """An existing PaymentMethod, or a fresh one for a test id such as ``pm_card_visa``."""
        if pm_id in build.TEST_PAYMENT_METHODS:
            return self._new_payment_method(build.TEST_PAYMENT_METHODS[pm_id])
        return self._get("payment_method", pm_id, param)

    def retrieve_payment_method(self, pm_id: str) -> dict[str, Any]:
        """GET /v1/payment_methods/{id}."""
        with self._lock:
            return self._get("payment_method", pm_id)

    def attach_payment_method(self, pm_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/payment_methods/{id}/attach."""
        require(params, "customer")
        with self._lock:
            customer = self._get("customer", params["customer"], "customer")
            return self._attach(self._resolve_payment_method(pm_id, "id"), customer, ctx)

    def _attach(self, pm: dict[str, Any], customer: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        if pm["customer"] == customer["id"]:
            return pm
        if pm["customer"] is not None:
            raise InvalidRequestError("The payment method you provided has already been attached to a customer.",
                                      param="payment_method")
        behaviour = build.behaviour_of(pm, self._instrument_secrets.get(pm["id"], ""))
        if behaviour.setup == "declines":
            raise CardError(DECLINED, code="card_declined", decline_code=behaviour.decline_code)
        pm["customer"] = customer["id"]
        self._emit("payment_method.attached", pm, ctx)
        return pm

    def detach_payment_method(self, pm_id: str, ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/payment_methods/{id}/detach; a customer's default that is detached is cleared."""
        with self._lock:
            pm = self._get("payment_method", pm_id)
            if pm["customer"] is None:
                raise InvalidRequestError(
                    "The payment method you provided is not attached to a customer so detachment is impossible.",
                    code="payment_method_unexpected_state")
            customer = self._objects["customer"].get(pm["customer"])
            previous = {"customer": pm["customer"]}
            pm["customer"] = None
            self._emit("payment_method.detached", pm, ctx, previous)
            if customer and customer["invoice_settings"]["default_payment_method"] == pm_id:
                customer["invoice_settings"]["default_payment_method"] = None
                self._emit("customer.updated", customer, ctx,
                           {"invoice_settings": {"default_payment_method": pm_id}})
            return pm

    def list_payment_methods(self, params: dict[str, Any], customer_id: str | None = None) -> dict[str, Any]:
        """GET /v1/payment_methods or /v1/customers/{id}/payment_methods."""
        with self._lock:
            customer_id = customer_id or params.get("customer")
            if customer_id:
                self._get("customer", customer_id, "customer")
            items = [pm for pm in self._objects["payment_method"].values()
                     if (not customer_id or pm["customer"] == customer_id)
                     and (not params.get("type") or pm["type"] == params["type"])]
            url = f"/v1/customers/{customer_id}/payment_methods" if customer_id else "/v1/payment_methods"
            return self._page(items, params, url)

    # --- setup intents ----------------------------------------------------------------------------

    def create_setup_intent(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/setup_intents (optionally confirming at once)."""
        with self._lock:
            if params.get("customer"):
                self._get("customer", params["customer"], "customer")
            intent = build.build_setup_intent(self._now(), params)
            pm = self._intent_payment_method(params)
            if pm:
                intent["payment_method"] = pm["id"]
                intent["status"] = "requires_confirmation"
            self._add(intent)
            self._emit("setup_intent.created", intent, ctx)
            if params.get("confirm"):
                return self._confirm(intent, {"mandate_data": params.get("mandate_data")}, ctx)
            return intent

    def _intent_payment_method(self, params: dict[str, Any]) -> dict[str, Any] | None:
        if params.get("payment_method"):
            return self._resolve_payment_method(params["payment_method"], "payment_method")
        if params.get("payment_method_data"):
            return self._new_payment_method(params["payment_method_data"])
        return None

    def retrieve_setup_intent(self, intent_id: str, client_secret: str | None = None) -> dict[str, Any]:
        """GET /v1/setup_intents/{id}; with a publishable key the client secret must match."""
        with self._lock:
            intent = self._get("setup_intent", intent_id)
            if client_secret is not None:
                _check_client_secret(intent, client_secret)
            return intent

    def update_setup_intent(self, intent_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/setup_intents/{id}."""
        with self._lock:
            intent = self._get("setup_intent", intent_id)
            if intent["status"] in ("succeeded", "canceled", "processing"):
                raise InvalidRequestError(
                    f"You cannot update this SetupIntent because it has a status of {intent['status']}.",
                    code="setup_intent_unexpected_state")
            for field in ("description", "payment_method_options"):
                if field in params:
                    intent[field] = params[field]
            if "allowed_payment_method_types" in params:
                allowed = list(params["allowed_payment_method_types"] or [])
                intent["allowed_payment_method_types"] = allowed or None
                intent["payment_method_types"] = allowed or ["card", "sepa_debit"]
            if params.get("customer"):
                intent["customer"] = self._get("customer", params["customer"], "customer")["id"]
            if "metadata" in params:
                intent["metadata"] = _merge_metadata(intent["metadata"], params["metadata"])
            if params.get("payment_method"):
                method = self._resolve_payment_method(params["payment_method"], "payment_method")
                intent["payment_method"] = method["id"]
                intent["status"] = "requires_confirmation"
            return intent  # Stripe has no setup_intent.updated event

    def confirm_setup_intent(self, intent_id: str, params: dict[str, Any], ctx: RequestContext,
                             client_secret_required: bool = False) -> dict[str, Any]:
        """POST /v1/setup_intents/{id}/confirm (server side, or Stripe.js style with the client secret)."""
        with self._lock:
            intent = self._get("setup_intent", intent_id)
            if client_secret_required or params.get("client_secret") is not None:
                _check_client_secret(intent, params.get("client_secret") or "")
            return self._confirm(intent, params, ctx)

    def _confirm(self, intent: dict[str, Any], params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        if intent["status"] == "succeeded":
            raise InvalidRequestError(
                "You cannot confirm this SetupIntent because it has already succeeded after being previously "
                "confirmed.", code="setup_intent_unexpected_state", setup_intent=self._render_plain(intent))
        if intent["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
            raise InvalidRequestError(
                f"You cannot confirm this SetupIntent because it has a status of {intent['status']}.",
                code="setup_intent_unexpected_state", setup_intent=self._render_plain(intent))
        pm = self._intent_payment_method(params)
        if pm is None and intent["payment_method"]:
            pm = self._get("payment_method", intent["payment_method"], "payment_method")
        if pm is None:
            raise ParameterError(
                "You cannot confirm this SetupIntent because it's missing a payment method. Update the "
                "SetupIntent with a payment method and then confirm it again.",
                code="setup_intent_unexpected_state", param="payment_method")
        if pm["type"] not in intent["payment_method_types"]:
            raise InvalidRequestError(
                f"The PaymentMethod provided ({pm['type']}) is not allowed for this SetupIntent. Allowed "
                f"types: {', '.join(intent['payment_method_types'])}.", param="payment_method")
        behaviour = build.behaviour_of(pm, self._instrument_secrets.get(pm["id"], ""))
        now = self._now()
        if behaviour.setup == "declines":
            error = {"code": "card_declined", "decline_code": behaviour.decline_code, "message": DECLINED,
                     "payment_method": self._render_plain(pm), "type": "card_error", "doc_url":
                     "https://stripe.com/docs/error-codes/card-declined"}
            attempt = self._add(build.build_setup_attempt(intent, pm, now, error))
            intent.update(status="requires_payment_method", payment_method=None, last_setup_error=error,
                          latest_attempt=attempt["id"])
            self._emit("setup_intent.setup_failed", intent, ctx)
            raise CardError(DECLINED, code="card_declined", decline_code=behaviour.decline_code,
                            setup_intent=self._render_plain(intent))
        if intent["customer"]:
            self._attach(pm, self._get("customer", intent["customer"], "customer"), ctx)
        if pm["type"] == "sepa_debit":
            acceptance = (params.get("mandate_data") or {}).get("customer_acceptance")
            intent["mandate"] = self._add(build.build_mandate(pm, acceptance, now))["id"]
        attempt = self._add(build.build_setup_attempt(intent, pm, now, None))
        intent.update(status="succeeded", payment_method=pm["id"], last_setup_error=None, next_action=None,
                      latest_attempt=attempt["id"])
        self._emit("setup_intent.succeeded", intent, ctx)
        return intent

    def cancel_setup_intent(self, intent_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/setup_intents/{id}/cancel."""
        with self._lock:
            intent = self._get("setup_intent", intent_id)
            if intent["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
                raise InvalidRequestError(
                    f"You cannot cancel this SetupIntent because it has a status of {intent['status']}. Only a "
                    "SetupIntent with one of the following statuses may be canceled: requires_payment_method, "
                    "requires_confirmation, requires_action.", code="setup_intent_unexpected_state")
            intent.update(status="canceled", cancellation_reason=params.get("cancellation_reason"))
            self._emit("setup_intent.canceled", intent, ctx)
            return intent

    def list_setup_intents(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/setup_intents."""
        with self._lock:
            items = [i for i in self._objects["setup_intent"].values()
                     if (not params.get("customer") or i["customer"] == params["customer"])
                     and (not params.get("payment_method") or i["payment_method"] == params["payment_method"])]
            return self._page(items, params, "/v1/setup_intents")

    def list_setup_attempts(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/setup_attempts?setup_intent=: the attempts to confirm one SetupIntent."""
        with self._lock:
            self._get("setup_intent", params["setup_intent"], "setup_intent")
            items = [a for a in self._objects["setup_attempt"].values() if a["setup_intent"] == params["setup_intent"]]
            return self._page(items, params, "/v1/setup_attempts")

    def retrieve(self, kind: str, object_id: str) -> dict[str, Any]:
        """Any stored object by type and id."""
        with self._lock:
            return self._get(kind, object_id)

    # --- invoice items ----------------------------------------------------------------------------

    def create_invoiceitem(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoiceitems (on a draft invoice with ``invoice=``, else pending)."""
        require(params, "customer")
        with self._lock:
            customer = self._get("customer", params["customer"], "customer")
            invoice = None
            if params.get("invoice"):
                invoice = self._get("invoice", params["invoice"], "invoice")
                self._require_editable(invoice)
                if invoice["customer"] != customer["id"]:
                    raise InvalidRequestError(
                        f"The invoice {invoice['id']} belongs to a different customer than {customer['id']}.",
                        param="invoice")
            item = self._new_invoiceitem(customer, invoice, params, "", ctx)
            if invoice:
                self._after_lines_changed(invoice, ctx)
            return item

    def _new_invoiceitem(self, customer: dict[str, Any], invoice: dict[str, Any] | None,
                         params: dict[str, Any], param_prefix: str, ctx: RequestContext) -> dict[str, Any]:
        if params.get("amount") is None and params.get("unit_amount_decimal") is None:
            name = f"{param_prefix}[amount]" if param_prefix else "amount"
            raise ParameterError(f"Missing required param: {name}.", code="parameter_missing", param=name)
        currency = (params.get("currency") or (invoice or {}).get("currency") or customer["currency"]
                    or self._config.default_currency).lower()
        if invoice and currency != invoice["currency"]:
            raise InvalidRequestError(
                f"The currency of the invoice item ({currency}) must match the invoice's currency "
                f"({invoice['currency']}).", param=f"{param_prefix}[currency]" if param_prefix else "currency")
        item = build.build_invoiceitem(self._now(), customer["id"], currency,
                                       {**params, "invoice": invoice["id"] if invoice else None})
        self._add(item)
        if invoice:
            invoice["lines"]["data"].append(build.build_line_item(item))
        self._emit("invoiceitem.created", item, ctx)
        return item

    def update_invoiceitem(self, item_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoiceitems/{id} (only while pending or on a draft)."""
        with self._lock:
            item = self._get("invoiceitem", item_id)
            invoice = self._objects["invoice"].get(item["invoice"] or "")
            if invoice:
                self._require_editable(invoice)
            for field in ("description", "discountable", "period"):
                if field in params:
                    item[field] = params[field]
            if "quantity" in params:
                item["quantity"] = params["quantity"] or 1
                item["quantity_decimal"] = str(item["quantity"])
            if "amount" in params:
                item["amount"] = item["net_amount"] = params["amount"]
            elif "unit_amount_decimal" in params:
                amount = int(round(float(params["unit_amount_decimal"]) * item["quantity"]))
                item["amount"] = item["net_amount"] = amount
            if "metadata" in params:
                item["metadata"] = _merge_metadata(item["metadata"], params["metadata"])
            if invoice:  # Stripe has no invoiceitem.updated event; the invoice's update is the signal
                for line in invoice["lines"]["data"]:
                    if line["parent"]["invoice_item_details"]["invoice_item"] == item_id:
                        line.update(amount=item["amount"], subtotal=item["amount"], description=item["description"],
                                    quantity=item["quantity"], quantity_decimal=item["quantity_decimal"],
                                    period=dict(item["period"]), metadata=dict(item["metadata"]))
                self._after_lines_changed(invoice, ctx)
            return item

    def delete_invoiceitem(self, item_id: str, ctx: RequestContext) -> dict[str, Any]:
        """DELETE /v1/invoiceitems/{id} (only while pending or on a draft)."""
        with self._lock:
            item = self._get("invoiceitem", item_id)
            invoice = self._objects["invoice"].get(item["invoice"] or "")
            if invoice:
                self._require_editable(invoice)
            del self._objects["invoiceitem"][item_id]
            self._emit("invoiceitem.deleted", item, ctx)
            if invoice:
                invoice["lines"]["data"] = [
                    line for line in invoice["lines"]["data"]
                    if line["parent"]["invoice_item_details"]["invoice_item"] != item_id]
                self._after_lines_changed(invoice, ctx)
            return {"id": item_id, "object": "invoiceitem", "deleted": True}

    def list_invoiceitems(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/invoiceitems."""
        with self._lock:
            pending = params.get("pending")
            items = [i for i in self._objects["invoiceitem"].values()
                     if (not params.get("customer") or i["customer"] == params["customer"])
                     and (not params.get("invoice") or i["invoice"] == params["invoice"])
                     and (pending is None or (i["invoice"] is None) == pending)]
            return self._page(items, params, "/v1/invoiceitems")

    # --- invoices ---------------------------------------------------------------------------------

    def create_invoice(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices: a draft one-off invoice."""
        require(params, "customer")
        with self._lock:
            customer = self._get("customer", params["customer"], "customer")
            if params.get("default_payment_method"):
                self._require_owned(customer, params["default_payment_method"], "default_payment_method")
            send_invoice = params.get("collection_method") == "send_invoice"
            if not send_invoice and (params.get("days_until_due") is not None or params.get("due_date") is not None):
                raise InvalidRequestError(
                    "Invoices with collection_method=charge_automatically cannot have a due date.",
                    param="days_until_due" if params.get("days_until_due") is not None else "due_date")
            currency = (params.get("currency") or customer["currency"] or self._config.default_currency).lower()
            account = {"country": self._config.account_country, "name": self._config.account_name}
            invoice = self._add(build.build_invoice(self._now(), customer, params, account, currency))
            invoice["webhooks_delivered_at"] = invoice["created"]
            if params.get("pending_invoice_items_behavior") == "include":
                for item in sorted(self._objects["invoiceitem"].values(), key=self._sort_key):
                    if item["customer"] == customer["id"] and item["invoice"] is None and item["currency"] == currency:
                        item["invoice"] = invoice["id"]
                        invoice["lines"]["data"].append(build.build_line_item(item))
                _recompute_totals(invoice)
            self._emit("invoice.created", invoice, ctx)
            return invoice

    def update_invoice(self, invoice_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices/{id}: drafts fully; finalized invoices only metadata and a few display fields."""
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            status = invoice["status"]
            allowed = set(params) - {"expand"}
            if status in ("open", "uncollectible"):
                allowed -= {"metadata", "description", "footer", "auto_advance", "default_payment_method"}
            elif status in ("paid", "void"):
                allowed -= {"metadata"}
            else:
                allowed = set()
            if allowed:
                raise InvalidRequestError(
                    f"Finalized invoices can't be updated in this way (you tried to change "
                    f"{', '.join(sorted(allowed))} on an invoice with status {status}).",
                    code="invoice_not_editable", param=sorted(allowed)[0])
            before = copy.deepcopy(invoice)
            for field in ("description", "footer", "statement_descriptor", "collection_method"):
                if field in params:
                    invoice[field] = params[field]
            if "auto_advance" in params:
                invoice["auto_advance"] = bool(params["auto_advance"])
            if "default_payment_method" in params:
                pm_id = params["default_payment_method"]
                customer = self._get("customer", invoice["customer"], "customer")
                invoice["default_payment_method"] = (
                    self._require_owned(customer, pm_id, "default_payment_method") if pm_id else None)
            if params.get("due_date") is not None:
                invoice["due_date"] = params["due_date"]
            elif params.get("days_until_due") is not None:
                invoice["due_date"] = invoice["created"] + 86400 * params["days_until_due"]
            if "metadata" in params:
                invoice["metadata"] = _merge_metadata(invoice["metadata"], params["metadata"])
            previous = build.previous_attributes(before, invoice)
            if previous:
                self._emit("invoice.updated", invoice, ctx, previous)
            return invoice

    def delete_invoice(self, invoice_id: str, ctx: RequestContext) -> dict[str, Any]:
        """DELETE /v1/invoices/{id}: only drafts; their invoice items go with them."""
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            if invoice["status"] != "draft":
                raise InvalidRequestError(
                    f"You can only delete draft invoices. This invoice has status {invoice['status']}; void it "
                    "instead.", code="invoice_not_editable")
            del self._objects["invoice"][invoice_id]
            for item_id in [i["id"] for i in self._objects["invoiceitem"].values() if i["invoice"] == invoice_id]:
                del self._objects["invoiceitem"][item_id]
            self._emit("invoice.deleted", invoice, ctx)
            return {"id": invoice_id, "object": "invoice", "deleted": True}

    def add_lines(self, invoice_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices/{id}/add_lines."""
        require(params, "lines")
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            self._require_editable(invoice)
            customer = self._get("customer", invoice["customer"], "customer")
            for i, line in enumerate(params["lines"]):
                if line.get("invoice_item"):
                    item = self._get("invoiceitem", line["invoice_item"], f"lines[{i}][invoice_item]")
                    if item["invoice"] is not None or item["customer"] != customer["id"]:
                        raise InvalidRequestError(
                            f"Invoice item {item['id']} is not a pending item of customer {customer['id']}.",
                            param=f"lines[{i}][invoice_item]")
                    item["invoice"] = invoice_id
                    invoice["lines"]["data"].append(build.build_line_item(item))
                else:
                    self._new_invoiceitem(customer, invoice, line, f"lines[{i}]", ctx)
            if params.get("invoice_metadata") is not None:
                invoice["metadata"] = _merge_metadata(invoice["metadata"], params["invoice_metadata"])
            self._after_lines_changed(invoice, ctx)
            return invoice

    def finalize_invoice(self, invoice_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices/{id}/finalize: draft -> open (or straight to paid when nothing is due)."""
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            if invoice["status"] != "draft":
                raise InvalidRequestError(
                    "This invoice is already finalized, you can't re-finalize a non-draft invoice.")
            if self._config.finalization_failures_next_n > 0:
                self._config.finalization_failures_next_n -= 1
                self._fail_finalization(invoice, ctx)
            before = copy.deepcopy(invoice)
            customer = self._get("customer", invoice["customer"], "customer")
            now = self._now()
            if "auto_advance" in params:
                invoice["auto_advance"] = bool(params["auto_advance"])
            base_url = (self._config.public_url or ctx.base_url).rstrip("/")
            invoice.update(
                status="open", effective_at=now, ending_balance=0, last_finalization_error=None,
                number=f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}",
                hosted_invoice_url=f"{base_url}/invoice/{invoice_id}",
                invoice_pdf=f"{base_url}/invoice/{invoice_id}/pdf",
                customer_email=customer["email"], customer_name=customer["name"],
                customer_phone=customer["phone"], customer_address=customer["address"],
            )
            invoice["status_transitions"]["finalized_at"] = now
            customer["next_invoice_sequence"] += 1
            if customer["currency"] is None:
                customer["currency"] = invoice["currency"]
            automatic = invoice["collection_method"] == "charge_automatically" and invoice["auto_advance"]
            if invoice["amount_due"] > 0 and automatic:
                invoice["next_payment_attempt"] = now + math.ceil(self._config.auto_charge_delay)
            self._emit("invoice.finalized", invoice, ctx, build.previous_attributes(before, invoice))
            if invoice["amount_due"] == 0:
                self._mark_paid(invoice, ctx)
            elif automatic:
                self._schedule_charge(invoice_id, self._config.auto_charge_delay)
            return invoice

    def _fail_finalization(self, invoice: dict[str, Any], ctx: RequestContext) -> None:
        """Stripe could not finalize: the invoice stays a draft, says why, and the request fails."""
        message = "The invoice could not be finalized (injected finalization failure)."
        before = copy.deepcopy(invoice)
        invoice["last_finalization_error"] = {"message": message, "type": "invalid_request_error"}
        self._emit("invoice.finalization_failed", invoice, ctx, build.previous_attributes(before, invoice))
        raise InvalidRequestError(message)

    def pay_invoice(self, invoice_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices/{id}/pay: one synchronous attempt; a decline answers 402."""
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            status = invoice["status"]
            if status == "paid":
                raise InvalidRequestError("Invoice is already paid.")
            if status not in ("open", "uncollectible"):
                raise InvalidRequestError(
                    f"You can only pay an invoice with status open or uncollectible; this invoice is {status}.")
            if invoice_id in self._processing:
                raise InvalidRequestError("This invoice's payment is already processing.")
            pm = None
            if params.get("payment_method"):
                customer = self._get("customer", invoice["customer"], "customer")
                pm = self._resolve_payment_method(params["payment_method"], "payment_method")
                if pm["customer"] is None and params["payment_method"] in build.TEST_PAYMENT_METHODS:
                    self._attach(pm, customer, ctx)
                self._require_owned(customer, pm["id"], "payment_method")
            self._attempt_payment(invoice, ctx, pm, synchronous=True)
            return invoice

    def void_invoice(self, invoice_id: str, ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices/{id}/void: open or uncollectible -> void."""
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            if invoice["status"] not in ("open", "uncollectible"):
                raise InvalidRequestError(
                    f"You can only void an invoice with status open or uncollectible; this invoice is "
                    f"{invoice['status']}.")
            if invoice_id in self._processing:
                raise InvalidRequestError("This invoice can't be voided while its payment is processing.")
            before = copy.deepcopy(invoice)
            invoice.update(status="void", next_payment_attempt=None)
            invoice["status_transitions"]["voided_at"] = self._now()
            self._charge_tokens.pop(invoice_id, None)
            self._emit("invoice.voided", invoice, ctx, build.previous_attributes(before, invoice))
            return invoice

    def mark_uncollectible(self, invoice_id: str, ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices/{id}/mark_uncollectible: open -> uncollectible."""
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            if invoice["status"] != "open":
                raise InvalidRequestError(
                    f"You can only mark an open invoice as uncollectible; this invoice is {invoice['status']}.")
            before = copy.deepcopy(invoice)
            invoice.update(status="uncollectible", next_payment_attempt=None)
            invoice["status_transitions"]["marked_uncollectible_at"] = self._now()
            self._charge_tokens.pop(invoice_id, None)
            self._emit("invoice.marked_uncollectible", invoice, ctx, build.previous_attributes(before, invoice))
            return invoice

    def list_invoices(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/invoices."""
        with self._lock:
            items = [i for i in self._objects["invoice"].values()
                     if (not params.get("customer") or i["customer"] == params["customer"])
                     and (not params.get("status") or i["status"] == params["status"])
                     and (not params.get("collection_method") or i["collection_method"] == params["collection_method"])
                     and (not params.get("due_date") or (i["due_date"] is not None
                                                         and _in_range(i["due_date"], params["due_date"])))]
            return self._page(items, params, "/v1/invoices")

    def list_invoice_lines(self, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/invoices/{id}/lines, in the order the lines were added."""
        with self._lock:
            lines = self._get("invoice", invoice_id)["lines"]["data"]
            limit = _limit(params)
            start = 0
            if params.get("starting_after"):
                ids = [line["id"] for line in lines]
                if params["starting_after"] not in ids:
                    raise ResourceMissingError("line item", params["starting_after"], "starting_after")
                start = ids.index(params["starting_after"]) + 1
            rest = lines[start:]
            return build.list_object(f"/v1/invoices/{invoice_id}/lines", copy.deepcopy(rest[:limit]),
                                     len(rest) > limit)

    def _require_editable(self, invoice: dict[str, Any]) -> None:
        if invoice["status"] != "draft":
            raise InvalidRequestError(
                f"You can only modify the lines of a draft invoice; invoice {invoice['id']} has status "
                f"{invoice['status']}.", code="invoice_not_editable")

    def _require_owned(self, customer: dict[str, Any], pm_id: str, param: str) -> str:
        pm = self._get("payment_method", pm_id, param)
        if pm["customer"] != customer["id"]:
            raise InvalidRequestError(
                f"The PaymentMethod {pm_id} does not belong to the Customer {customer['id']}. Please attach it "
                "to the customer first.", param=param)
        return pm_id

    def _after_lines_changed(self, invoice: dict[str, Any], ctx: RequestContext) -> None:
        before = {k: invoice[k] for k in _TOTAL_FIELDS}
        _recompute_totals(invoice)
        previous = {k: v for k, v in before.items() if invoice[k] != v}
        self._emit("invoice.updated", invoice, ctx, previous)

    # --- payments ---------------------------------------------------------------------------------

    def _schedule_charge(self, invoice_id: str, delay: float) -> None:
        token = self._charge_tokens.get(invoice_id, 0) + 1
        self._charge_tokens[invoice_id] = token
        generation = self._generation
        self._scheduler.call_later(delay, lambda: self._automatic_charge(invoice_id, generation, token))

    def _automatic_charge(self, invoice_id: str, generation: int, token: int) -> None:
        with self._lock:
            if generation != self._generation or self._charge_tokens.get(invoice_id) != token:
                return
            invoice = self._objects["invoice"].get(invoice_id)
            if (invoice is None or invoice["status"] != "open" or not invoice["auto_advance"]
                    or invoice_id in self._processing):
                return
            self._attempt_payment(invoice, BACKGROUND, None, synchronous=False)

    def _payment_method_for(self, invoice: dict[str, Any]) -> dict[str, Any] | None:
        customer = self._objects["customer"].get(invoice["customer"]) or {"invoice_settings": {}}
        pm_id = invoice["default_payment_method"] or customer["invoice_settings"].get("default_payment_method")
        return self._objects["payment_method"].get(pm_id) if pm_id else None

    def _attempt_payment(self, invoice: dict[str, Any], ctx: RequestContext, pm: dict[str, Any] | None,
                         synchronous: bool) -> None:
        pm = pm or self._payment_method_for(invoice)
        if pm is None and synchronous:
            raise InvalidRequestError(NO_PAYMENT_METHOD)
        before = copy.deepcopy(invoice)
        invoice["attempted"] = True
        invoice["attempt_count"] += 1
        if pm is None:
            self._payment_failed(invoice, before, ctx)
            return
        behaviour = build.behaviour_of(pm, self._instrument_secrets.get(pm["id"], ""))
        if behaviour.charge == "succeeds":
            self._mark_paid(invoice, ctx, before)
        elif behaviour.charge == "declines":
            self._payment_failed(invoice, before, ctx)
            if synchronous:
                raise CardError(DECLINED, code="card_declined", decline_code=behaviour.decline_code,
                                payment_method=self._render_plain(pm))
        elif behaviour.charge == "requires_action":
            invoice["next_payment_attempt"] = None
            self._charge_tokens.pop(invoice["id"], None)
            self._emit("invoice.payment_action_required", invoice, ctx,
                       build.previous_attributes(before, invoice))
            if synchronous:
                raise CardError(REQUIRES_ACTION, code="invoice_payment_intent_requires_action",
                                payment_method=self._render_plain(pm))
        else:  # SEPA debit: processing now, settled later
            invoice["next_payment_attempt"] = None
            self._processing.add(invoice["id"])
            succeeds = behaviour.charge == "processing_then_succeeds"
            generation = self._generation
            self._scheduler.call_later(self._config.sepa_settle_delay,
                                       lambda: self._settle_debit(invoice["id"], generation, succeeds))

    def _settle_debit(self, invoice_id: str, generation: int, succeeds: bool) -> None:
        with self._lock:
            if generation != self._generation or invoice_id not in self._processing:
                return
            self._processing.discard(invoice_id)
            invoice = self._objects["invoice"].get(invoice_id)
            if invoice is None or invoice["status"] not in ("open", "uncollectible"):
                return
            before = copy.deepcopy(invoice)
            if succeeds:
                self._mark_paid(invoice, BACKGROUND, before)
            else:
                self._payment_failed(invoice, before, BACKGROUND)

    def _payment_failed(self, invoice: dict[str, Any], before: dict[str, Any], ctx: RequestContext) -> None:
        retry = invoice["auto_advance"] and invoice["attempt_count"] < self._config.payment_max_attempts
        interval = self._config.payment_retry_interval
        invoice["next_payment_attempt"] = self._now() + math.ceil(interval) if retry else None
        self._emit("invoice.payment_failed", invoice, ctx, build.previous_attributes(before, invoice))
        if retry:
            self._schedule_charge(invoice["id"], interval)
        else:
            self._charge_tokens.pop(invoice["id"], None)

    def _mark_paid(self, invoice: dict[str, Any], ctx: RequestContext, before: dict[str, Any] | None = None) -> None:
        before = before or copy.deepcopy(invoice)
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0,
                       next_payment_attempt=None)
        invoice["status_transitions"]["paid_at"] = self._now()
        self._charge_tokens.pop(invoice["id"], None)
        previous = build.previous_attributes(before, invoice)
        self._emit("invoice.payment_succeeded", invoice, ctx, previous)
        self._emit("invoice.paid", invoice, ctx, previous)

    # --- events and webhook endpoints -------------------------------------------------------------

    def list_events(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/events, filtered by ``type`` (``*`` wildcards), ``types[]`` and ``created``."""
        with self._lock:
            if len(params.get("types") or []) > contract.MAX_EVENT_TYPES_FILTER:
                raise ParameterError(f"Invalid types: at most {contract.MAX_EVENT_TYPES_FILTER} event types can be "
                                     "given.", param="types")
            types = params.get("types") or ([params["type"]] if params.get("type") else None)
            if params.get("type") and params.get("types"):
                raise ParameterError("You may only specify one of these parameters: type, types.", param="types")
            delivered = params.get("delivery_success")
            items = [e for e in self._objects["event"].values()
                     if (types is None or any(_type_matches(t, e["type"]) for t in types))
                     and (delivered is None or (e["pending_webhooks"] == 0) == delivered)]
            return self._page(items, params, "/v1/events")

    def create_webhook_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/webhook_endpoints; the answer (only this one) carries the ``whsec_`` secret."""
        require(params, "url", "enabled_events")
        with self._lock:
            endpoint = self._add(build.build_webhook_endpoint(self._now(), params))
            secret = "whsec_" + secrets.token_hex(24)
            self._endpoint_secrets[endpoint["id"]] = secret
            return dict(copy.deepcopy(endpoint), secret=secret)

    def update_webhook_endpoint(self, endpoint_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/webhook_endpoints/{id}."""
        with self._lock:
            endpoint = self._get("webhook_endpoint", endpoint_id)
            if params.get("enabled_events"):
                        endpoint["enabled_events"] = list(params["enabled_events"])
            for field in ("url", "description"):
                if field in params:
                    endpoint[field] = params[field]
            if "disabled" in params:
                endpoint["status"] = "disabled" if params["disabled"] else "enabled"
            if "metadata" in params:
                endpoint["metadata"] = _merge_metadata(endpoint["metadata"], params["metadata"])
            return endpoint

    def delete_webhook_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """DELETE /v1/webhook_endpoints/{id}."""
        with self._lock:
            self._get("webhook_endpoint", endpoint_id)
            del self._objects["webhook_endpoint"][endpoint_id]
            self._endpoint_secrets.pop(endpoint_id, None)
            return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}

    def list_objects(self, kind: str, params: dict[str, Any], url: str) -> dict[str, Any]:
        """An unfiltered Stripe list of one object type."""
        with self._lock:
            return self._page(list(self._objects[kind].values()), params, url)


_KIND_NAMES = {
    "customer": "customer", "payment_method": "PaymentMethod", "setup_intent": "setupintent",
    "setup_attempt": "setupattempt", "mandate": "mandate", "invoice": "invoice", "invoiceitem": "invoiceitem",
    "event": "event", "webhook_endpoint": "webhook endpoint",
}
_TOTAL_FIELDS = ("subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax", "amount_due",
                 "amount_remaining")


def _limit(params: dict[str, Any]) -> int:
    limit = params.get("limit", 10)
    low, high = contract.LIST_LIMIT_RANGE
    if not low <= limit <= high:
        raise ParameterError(f"Invalid limit: must be between {low} and {high}", code="parameter_invalid_integer",
                             param="limit")
    return int(limit)


def _created(obj: dict[str, Any]) -> int:
    return obj["created"] if "created" in obj else obj["date"]  # invoice items carry "date"


def _recompute_totals(invoice: dict[str, Any]) -> None:
    """Totals follow from the lines (no tax, discounts or customer balance in the emulator)."""
    subtotal = sum(line["amount"] for line in invoice["lines"]["data"])
    due = max(subtotal, 0)
    invoice.update(subtotal=subtotal, subtotal_excluding_tax=subtotal, total=subtotal, total_excluding_tax=subtotal,
                   amount_due=due, amount_remaining=due - invoice["amount_paid"])


def _merge_metadata(current: dict[str, str], changes: dict[str, str] | None) -> dict[str, str]:
    """Stripe's metadata update: keys merge, an empty value deletes a key, an empty metadata clears all."""
    if changes is None:
        return {}
    merged = dict(current)
    for key, value in changes.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _in_range(value: int, bounds: dict[str, int]) -> bool:
    checks = {"eq": value.__eq__, "gt": value.__gt__, "gte": value.__ge__, "lt": value.__lt__, "lte": value.__le__}
    return all(checks[op](bound) for op, bound in bounds.items())


def _type_matches(pattern: str, event_type: str) -> bool:
    if "*" not in pattern:
        return pattern == event_type
    prefix = pattern.split("*", 1)[0]
    return event_type.startswith(prefix)


def _check_client_secret(intent: dict[str, Any], client_secret: str) -> None:
    if not secrets.compare_digest(intent["client_secret"], client_secret):
        raise InvalidRequestError(
            "The client_secret provided does not match the client_secret associated with the SetupIntent.",
            code="setup_intent_invalid_parameter", param="client_secret")
