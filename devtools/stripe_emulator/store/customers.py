"""Customers, with their default payment method for invoices."""

from __future__ import annotations

import copy
from typing import Any

from stripe_emulator import objects as build
from stripe_emulator import taxes
from stripe_emulator.errors import InvalidRequestError, ResourceMissingError
from stripe_emulator.store.balances import Balances
from stripe_emulator.store.core import RequestContext, merge_metadata
from stripe_emulator.store.payment_methods import PaymentMethods


class Customers(PaymentMethods, Balances):
    """``/v1/customers``."""

    def create_customer(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/customers."""
        with self._lock:
            customer = self._add(build.build_customer(build.new_id("cus"), self._now(), {**params, "balance": 0}))
            self._emit("customer.created", customer, ctx)
            for index, datum in enumerate(params.get("tax_id_data") or []):
                self._add_tax_id(customer, datum, f"tax_id_data[{index}]", ctx)
            if params.get("balance"):  # a starting balance is the ledger's first entry
                currency = customer["currency"] or self._config.default_currency
                self._balance_transaction(customer, params["balance"], "initial", currency, ctx)
            attached_from = params.get("payment_method")
            attached = None
            if attached_from:
                attached = self._attach(self._resolve_payment_method(attached_from, "payment_method"), customer, ctx)
            default = (params.get("invoice_settings") or {}).get("default_payment_method")
            if default:
                previous_customer = copy.deepcopy(customer)
                pm_id = attached["id"] if attached and default == attached_from else default
                customer["invoice_settings"]["default_payment_method"] = self._owned_payment_method(customer, pm_id)
                self._emit("customer.updated", customer, ctx, build.previous_attributes(previous_customer, customer))
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
            for field in ("business_name", "individual_name"):  # present only when set
                if params.get(field):
                    customer[field] = params[field]
                elif field in params:
                    customer.pop(field, None)
            if "address" in params:
                customer["address"] = {**build.empty_address(), **params["address"]} if params["address"] else None
            if "preferred_locales" in params:
                customer["preferred_locales"] = list(params["preferred_locales"] or [])
            if "metadata" in params:
                customer["metadata"] = merge_metadata(customer["metadata"], params["metadata"])
            settings = params.get("invoice_settings") or {}
            if "default_payment_method" in settings:
                pm_id = settings["default_payment_method"]
                customer["invoice_settings"]["default_payment_method"] = (
                    self._owned_payment_method(customer, pm_id) if pm_id else None
                )
            for field in ("footer", "custom_fields"):
                if field in settings:
                    customer["invoice_settings"][field] = settings[field]
            self._emit_changes("customer.updated", customer, before, ctx)
            if params.get("balance") is not None and params["balance"] != customer["balance"]:
                # A balance set directly is recorded as an adjustment of the ledger.
                currency = customer["currency"] or self._config.default_currency
                self._balance_transaction(
                    customer, params["balance"] - customer["balance"], "adjustment", currency, ctx
                )
            if customer["tax_exempt"] != before["tax_exempt"] or customer["address"] != before["address"]:
                self._customer_changed(customer, ctx)
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
            items = [
                c
                for c in self._objects["customer"].values()
                if not params.get("email") or c["email"] == params["email"]
            ]
            return self._page(items, params, "/v1/customers")

    def _owned_payment_method(self, customer: dict[str, Any], pm_id: str) -> str:
        pm = self._objects["payment_method"].get(pm_id)
        if pm is None or pm["customer"] != customer["id"]:
            raise InvalidRequestError(
                f"No such PaymentMethod: '{pm_id}'; the payment method must be attached to customer "
                f"{customer['id']} before it can be its default.",
                code="resource_missing",
                param="invoice_settings[default_payment_method]",
            )
        return pm_id

    # --- tax ids ----------------------------------------------------------------------------------

    def create_tax_id(self, customer_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/customers/{id}/tax_ids."""
        with self._lock:
            customer = self._get("customer", customer_id, "customer")
            return self._add_tax_id(customer, params, "", ctx)

    def _add_tax_id(
        self, customer: dict[str, Any], data: dict[str, Any], prefix: str, ctx: RequestContext
    ) -> dict[str, Any]:
        tax_type, value = data["type"], str(data["value"]).replace(" ", "")
        country = _tax_id_country(tax_type, value)
        if country is None:
            raise InvalidRequestError(
                f"Invalid value for {tax_type}.", code="tax_id_invalid", param=f"{prefix}[value]" if prefix else "value"
            )
        tax_id = self._add(build.build_tax_id(self._now(), customer["id"], tax_type, value, country))
        self._emit("customer.tax_id.created", tax_id, ctx)
        return tax_id

    def list_tax_ids(self, customer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/customers/{id}/tax_ids."""
        with self._lock:
            self._get("customer", customer_id, "customer")
            items = [t for t in self._objects["tax_id"].values() if t["customer"] == customer_id]
            return self._page(items, params, f"/v1/customers/{customer_id}/tax_ids")

    def retrieve_tax_id(self, customer_id: str, tax_id: str) -> dict[str, Any]:
        """GET /v1/customers/{id}/tax_ids/{tax_id}."""
        with self._lock:
            self._get("customer", customer_id, "customer")
            found = self._get("tax_id", tax_id)
            if found["customer"] != customer_id:
                raise ResourceMissingError("tax ID", tax_id)
            return found

    def delete_tax_id(self, customer_id: str, tax_id: str, ctx: RequestContext) -> dict[str, Any]:
        """DELETE /v1/customers/{id}/tax_ids/{tax_id}."""
        with self._lock:
            found = self.retrieve_tax_id(customer_id, tax_id)
            del self._objects["tax_id"][tax_id]
            self._emit("customer.tax_id.deleted", found, ctx)
            return {"id": tax_id, "object": "tax_id", "deleted": True}

    def _customer_tax_ids(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's tax ids as a finalized invoice keeps them (``Invoice.customer_tax_ids``)."""
        ids = sorted((t for t in self._objects["tax_id"].values() if t["customer"] == customer_id), key=self._sort_key)
        return [{"type": t["type"], "value": t["value"]} for t in ids]


# EU VAT numbers start with the member state's code (Greece: EL; Northern Ireland: XI).
_VAT_PREFIXES = {c for c in taxes.EU_COUNTRIES if c != "GR"} | {"EL", "XI"}


def _tax_id_country(tax_type: str, value: str) -> str | None:
    """The country a tax id belongs to; None when its value cannot be one of its type."""
    if not 3 <= len(value) <= 20 or not value.isalnum():
        return None
    if tax_type == "eu_vat":
        prefix = value[:2].upper()
        if prefix not in _VAT_PREFIXES or len(value) < 4:
            return None
        return {"EL": "GR", "XI": "GB"}.get(prefix, prefix)
    return tax_type.split("_", 1)[0].upper() if tax_type != "unknown" else None
