"""PaymentMethods: created from card details, an IBAN or a test id; attached to and detached from customers."""

from __future__ import annotations

from typing import Any

from stripe_emulator import instruments
from stripe_emulator.errors import CardError, InvalidRequestError
from stripe_emulator.params import require
from stripe_emulator.store.core import DECLINED, RequestContext, StoreCore


class PaymentMethods(StoreCore):
    """``/v1/payment_methods``, and attaching a payment method for the other resources."""

    def create_payment_method(self, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/payment_methods from raw card details or an IBAN."""
        with self._lock:
            return self._new_payment_method(params)

    def _new_payment_method(self, data: dict[str, Any]) -> dict[str, Any]:
        pm, secret = instruments.build_payment_method(data, self._now())
        self._instrument_secrets[pm["id"]] = secret
        return self._add(pm)

    def _resolve_payment_method(self, pm_id: str, param: str) -> dict[str, Any]:
        """An existing PaymentMethod, or a fresh one for a test id such as ``pm_card_visa``."""
        if pm_id in instruments.TEST_PAYMENT_METHODS:
            return self._new_payment_method(instruments.TEST_PAYMENT_METHODS[pm_id])
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
            raise InvalidRequestError(
                "The payment method you provided has already been attached to a customer.", param="payment_method"
            )
        behaviour = instruments.behaviour_of(pm, self._instrument_secrets.get(pm["id"], ""))
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
                    code="payment_method_unexpected_state",
                )
            customer = self._objects["customer"].get(pm["customer"])
            previous = {"customer": pm["customer"]}
            pm["customer"] = None
            self._emit("payment_method.detached", pm, ctx, previous)
            if customer and customer["invoice_settings"]["default_payment_method"] == pm_id:
                customer["invoice_settings"]["default_payment_method"] = None
                self._emit("customer.updated", customer, ctx, {"invoice_settings": {"default_payment_method": pm_id}})
            return pm

    def list_payment_methods(self, params: dict[str, Any], customer_id: str | None = None) -> dict[str, Any]:
        """GET /v1/payment_methods or /v1/customers/{id}/payment_methods."""
        with self._lock:
            customer_id = customer_id or params.get("customer")
            if customer_id:
                self._get("customer", customer_id, "customer")
            items = [
                pm
                for pm in self._objects["payment_method"].values()
                if (not customer_id or pm["customer"] == customer_id)
                and (not params.get("type") or pm["type"] == params["type"])
            ]
            url = f"/v1/customers/{customer_id}/payment_methods" if customer_id else "/v1/payment_methods"
            return self._page(items, params, url)
