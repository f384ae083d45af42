"""Invoice items, pending or on a draft invoice, and the invoice lines and totals that follow from them."""
from __future__ import annotations

from typing import Any

from stripe_emulator import objects as build
from stripe_emulator.errors import InvalidRequestError, ParameterError
from stripe_emulator.params import require
from stripe_emulator.store.core import RequestContext, StoreCore, merge_metadata


class InvoiceItems(StoreCore):
    """``/v1/invoiceitems``; an item on a draft is one of its lines."""

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
                item["metadata"] = merge_metadata(item["metadata"], params["metadata"])
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

    def _require_editable(self, invoice: dict[str, Any]) -> None:
        if invoice["status"] != "draft":
            raise InvalidRequestError(
                f"You can only modify the lines of a draft invoice; invoice {invoice['id']} has status "
                f"{invoice['status']}.", code="invoice_not_editable")

    def _after_lines_changed(self, invoice: dict[str, Any], ctx: RequestContext) -> None:
        before = {k: invoice[k] for k in TOTAL_FIELDS}
        recompute_totals(invoice)
        previous = {k: v for k, v in before.items() if invoice[k] != v}
        self._emit("invoice.updated", invoice, ctx, previous)


TOTAL_FIELDS = ("subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax", "amount_due",
                "amount_remaining")


def recompute_totals(invoice: dict[str, Any]) -> None:
    """Totals follow from the lines (no tax, discounts or customer balance in the emulator)."""
    subtotal = sum(line["amount"] for line in invoice["lines"]["data"])
    due = max(subtotal, 0)
    invoice.update(subtotal=subtotal, subtotal_excluding_tax=subtotal, total=subtotal, total_excluding_tax=subtotal,
                   amount_due=due, amount_remaining=due - invoice["amount_paid"])
