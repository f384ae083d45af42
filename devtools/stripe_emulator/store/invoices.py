"""Invoices: draft, add lines, finalize, pay, void, mark uncollectible."""
from __future__ import annotations

import copy
import math
from typing import Any

from stripe_emulator import instruments
from stripe_emulator import objects as build
from stripe_emulator.errors import InvalidRequestError, ResourceMissingError
from stripe_emulator.params import require
from stripe_emulator.store.core import RequestContext, in_range, list_limit, merge_metadata
from stripe_emulator.store.invoice_items import InvoiceItems, recompute_totals
from stripe_emulator.store.payment_methods import PaymentMethods
from stripe_emulator.store.payments import Payments


class Invoices(InvoiceItems, Payments, PaymentMethods):
    """``/v1/invoices``, with Stripe's state machine: draft -> open -> paid | void | uncollectible."""

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
                recompute_totals(invoice)
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
                invoice["metadata"] = merge_metadata(invoice["metadata"], params["metadata"])
            self._emit_changes("invoice.updated", invoice, before, ctx)
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
                invoice["metadata"] = merge_metadata(invoice["metadata"], params["invoice_metadata"])
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
                if pm["customer"] is None and params["payment_method"] in instruments.TEST_PAYMENT_METHODS:
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
            return self._close(invoice, "void", "voided_at", "invoice.voided", ctx)

    def mark_uncollectible(self, invoice_id: str, ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices/{id}/mark_uncollectible: open -> uncollectible."""
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            if invoice["status"] != "open":
                raise InvalidRequestError(
                    f"You can only mark an open invoice as uncollectible; this invoice is {invoice['status']}.")
            return self._close(invoice, "uncollectible", "marked_uncollectible_at", "invoice.marked_uncollectible", ctx)

    def _close(self, invoice: dict[str, Any], status: str, transition: str, event_type: str,
               ctx: RequestContext) -> dict[str, Any]:
        """Move an invoice to ``status`` (void, uncollectible): no further automatic payment attempt."""
        before = copy.deepcopy(invoice)
        invoice.update(status=status, next_payment_attempt=None)
        invoice["status_transitions"][transition] = self._now()
        self._charge_tokens.pop(invoice["id"], None)
        self._emit(event_type, invoice, ctx, build.previous_attributes(before, invoice))
        return invoice

    def list_invoices(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/invoices."""
        with self._lock:
            items = [i for i in self._objects["invoice"].values()
                     if (not params.get("customer") or i["customer"] == params["customer"])
                     and (not params.get("status") or i["status"] == params["status"])
                     and (not params.get("collection_method") or i["collection_method"] == params["collection_method"])
                     and (not params.get("due_date") or (i["due_date"] is not None
                                                         and in_range(i["due_date"], params["due_date"])))]
            return self._page(items, params, "/v1/invoices")

    def list_invoice_lines(self, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/invoices/{id}/lines, in the order the lines were added."""
        with self._lock:
            lines = self._get("invoice", invoice_id)["lines"]["data"]
            limit = list_limit(params)
            start = 0
            if params.get("starting_after"):
                ids = [line["id"] for line in lines]
                if params["starting_after"] not in ids:
                    raise ResourceMissingError("line item", params["starting_after"], "starting_after")
                start = ids.index(params["starting_after"]) + 1
            rest = lines[start:]
            return build.list_object(f"/v1/invoices/{invoice_id}/lines", copy.deepcopy(rest[:limit]),
                                     len(rest) > limit)

    def _require_owned(self, customer: dict[str, Any], pm_id: str, param: str) -> str:
        pm = self._get("payment_method", pm_id, param)
        if pm["customer"] != customer["id"]:
            raise InvalidRequestError(
                f"The PaymentMethod {pm_id} does not belong to the Customer {customer['id']}. Please attach it "
                "to the customer first.", param=param)
        return pm_id
