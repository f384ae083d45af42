"""Invoices: draft, add lines, finalize, pay, void, mark uncollectible."""

from __future__ import annotations

import copy
import math
from typing import Any

from stripe_emulator import instruments
from stripe_emulator import objects as build
from stripe_emulator.errors import InvalidRequestError, ParameterError, ResourceMissingError
from stripe_emulator.params import require
from stripe_emulator.store.balances import MINIMUM_CHARGE, Balances
from stripe_emulator.store.core import RequestContext, in_range, list_limit, merge_metadata
from stripe_emulator.store.invoice_items import InvoiceItems, amount_of, balance_applied
from stripe_emulator.store.payment_methods import PaymentMethods
from stripe_emulator.store.payments import Payments

# Stripe's answer when Stripe Tax cannot tell where the customer is (``last_finalization_error.code``).
TAX_LOCATION_MISSING = (
    "Automatic tax calculation requires a valid address on the Customer: the customer's "
    "location is missing or not precise enough to calculate tax."
)


class Invoices(InvoiceItems, Payments, PaymentMethods, Balances):
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
                    param="days_until_due" if params.get("days_until_due") is not None else "due_date",
                )
            currency = (params.get("currency") or customer["currency"] or self._config.default_currency).lower()
            default_rates = self._resolve_tax_rates(params.get("default_tax_rates"), "default_tax_rates")
            automatic_tax = self._automatic_tax_settings(params.get("automatic_tax"))
            if automatic_tax["enabled"] and default_rates:
                raise InvalidRequestError(
                    "You cannot set default_tax_rates on an invoice that uses automatic tax.", param="default_tax_rates"
                )
            pending = []
            if params.get("pending_invoice_items_behavior") == "include":
                pending = [
                    item
                    for item in sorted(self._objects["invoiceitem"].values(), key=self._sort_key)
                    if item["customer"] == customer["id"] and item["invoice"] is None and item["currency"] == currency
                ]
                if automatic_tax["enabled"]:
                    _require_automatic_tax_compatible(pending, "pending_invoice_items_behavior")
            account = {"country": self._config.account_country, "name": self._config.account_name}
            invoice = build.build_invoice(self._now(), customer, params, account, currency)
            invoice.update(
                default_tax_rates=copy.deepcopy(default_rates),
                automatic_tax=automatic_tax,
                customer_address=copy.deepcopy(customer["address"]),
                starting_balance=customer["balance"] if customer["currency"] in (None, currency) else 0,
            )
            invoice = self._add(invoice)
            invoice["webhooks_delivered_at"] = invoice["created"]
            for item in pending:
                item["invoice"] = invoice["id"]
                invoice["lines"]["data"].append(build.build_line_item(item))
            self._recompute(invoice)
            self._emit("invoice.created", invoice, ctx)
            return invoice

    def _automatic_tax_settings(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """An invoice's ``automatic_tax``; its status follows from the customer (``_recompute``)."""
        params = params or {}
        if not params.get("enabled"):
            return {"disabled_reason": None, "enabled": False, "liability": None, "provider": None, "status": None}
        liability = params.get("liability") or {"type": "self"}
        if liability["type"] == "account":
            # The emulator has no connected accounts (Connect), so none can be liable.
            account = liability.get("account")
            if not account:
                raise ParameterError(
                    "Missing required param: automatic_tax[liability][account].",
                    code="parameter_missing",
                    param="automatic_tax[liability][account]",
                )
            raise ResourceMissingError("account", account, "automatic_tax[liability][account]", status=400)
        return {
            "disabled_reason": None,
            "enabled": True,
            "liability": {"type": "self"},  # ``account`` only when the type is account
            "provider": "stripe",
            "status": None,
        }

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
                    code="invoice_not_editable",
                    param=sorted(allowed)[0],
                )
            before = copy.deepcopy(invoice)
            if "default_tax_rates" in params or "automatic_tax" in params:  # first: it may refuse the update
                self._update_invoice_taxes(invoice, params)
            for field in ("description", "footer", "statement_descriptor", "collection_method"):
                if field in params:
                    invoice[field] = params[field]
            if "auto_advance" in params:
                invoice["auto_advance"] = bool(params["auto_advance"])
            if "default_payment_method" in params:
                pm_id = params["default_payment_method"]
                customer = self._get("customer", invoice["customer"], "customer")
                invoice["default_payment_method"] = (
                    self._require_owned(customer, pm_id, "default_payment_method") if pm_id else None
                )
            if params.get("due_date") is not None:
                invoice["due_date"] = params["due_date"]
            elif params.get("days_until_due") is not None:
                invoice["due_date"] = invoice["created"] + 86400 * params["days_until_due"]
            if "metadata" in params:
                invoice["metadata"] = merge_metadata(invoice["metadata"], params["metadata"])
            self._emit_changes("invoice.updated", invoice, before, ctx)
            return invoice

    def _update_invoice_taxes(self, invoice: dict[str, Any], params: dict[str, Any]) -> None:
        """A draft's ``default_tax_rates`` and ``automatic_tax``, refused where its lines do not allow them."""
        rates = invoice["default_tax_rates"]
        if "default_tax_rates" in params:
            rates = self._resolve_tax_rates(params["default_tax_rates"], "default_tax_rates")
        automatic_tax = invoice["automatic_tax"]
        if "automatic_tax" in params:
            automatic_tax = self._automatic_tax_settings(params["automatic_tax"])
        if automatic_tax["enabled"]:
            if rates:
                raise InvalidRequestError(
                    "You cannot set default_tax_rates on an invoice that uses automatic tax.", param="default_tax_rates"
                )
            if self._lines_have_manual_taxes(invoice):
                raise InvalidRequestError(
                    "Automatic tax cannot be enabled on an invoice whose line items have tax amounts.",
                    param="automatic_tax[enabled]",
                )
            items = [self._objects["invoiceitem"][item_id] for item_id in self._line_items(invoice)]
            _require_automatic_tax_compatible(items, "automatic_tax[enabled]")
        if rates and self._lines_have_manual_taxes(invoice):
            raise InvalidRequestError(
                "You cannot set default_tax_rates on an invoice whose line items have tax amounts.",
                param="default_tax_rates",
            )
        invoice.update(default_tax_rates=copy.deepcopy(rates), automatic_tax=automatic_tax)
        self._recompute(invoice)

    def delete_invoice(self, invoice_id: str, ctx: RequestContext) -> dict[str, Any]:
        """DELETE /v1/invoices/{id}: only drafts; their invoice items go with them."""
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            if invoice["status"] != "draft":
                raise InvalidRequestError(
                    f"You can only delete draft invoices. This invoice has status {invoice['status']}; void it "
                    "instead.",
                    code="invoice_not_editable",
                )
            del self._objects["invoice"][invoice_id]
            for item_id in [i["id"] for i in self._objects["invoiceitem"].values() if i["invoice"] == invoice_id]:
                del self._objects["invoiceitem"][item_id]
                self._manual_taxes.pop(item_id, None)
            self._emit("invoice.deleted", invoice, ctx)
            return {"id": invoice_id, "object": "invoice", "deleted": True}

    def add_lines(self, invoice_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices/{id}/add_lines."""
        require(params, "lines")
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            self._require_editable(invoice)
            customer = self._get("customer", invoice["customer"], "customer")
            # Every line is checked before any is added: Stripe adds all of them or none.
            planned: list[Any] = []
            rates_before = manual_before = False
            for i, line in enumerate(params["lines"]):
                prefix = f"lines[{i}]"
                item = None
                if line.get("invoice_item"):
                    item = self._get("invoiceitem", line["invoice_item"], f"{prefix}[invoice_item]")
                    if (
                        item["invoice"] is not None
                        or item["customer"] != customer["id"]
                        or any(planned_item is item for _, planned_item, _, _, _ in planned)
                    ):
                        raise InvalidRequestError(
                            f"Invoice item {item['id']} is not a pending item of customer {customer['id']}.",
                            param=f"{prefix}[invoice_item]",
                        )
                elif line.get("amount") is None:
                    raise ParameterError(
                        f"Missing required param: {prefix}[amount].",
                        code="parameter_missing",
                        param=f"{prefix}[amount]",
                    )
                if "tax_rates" in line:
                    rates = self._resolve_tax_rates(line["tax_rates"], f"{prefix}[tax_rates]")
                else:
                    rates = item["tax_rates"] if item else []
                manual = self._checked_tax_amounts(line.get("tax_amounts"), f"{prefix}[tax_amounts]")
                self._check_line_taxes(
                    invoice,
                    rates=rates,
                    manual=manual,
                    amount=item["amount"] if item else amount_of(line),
                    prefix=prefix,
                    rates_before=rates_before,
                    manual_before=manual_before,
                )
                rates_before, manual_before = rates_before or bool(rates), manual_before or bool(manual)
                planned.append((line, item, rates, manual, prefix))
            for line, item, rates, manual, prefix in planned:
                if item is not None:
                    item["invoice"] = invoice_id
                    item["tax_rates"] = copy.deepcopy(rates)
                    invoice["lines"]["data"].append(build.build_line_item(item))
                else:
                    item = self._new_invoiceitem(customer, invoice, line, prefix, ctx, rates)
                if manual:
                    self._set_manual_taxes(item["id"], manual)
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
                    "This invoice is already finalized, you can't re-finalize a non-draft invoice."
                )
            if self._config.finalization_failures_next_n > 0:
                self._config.finalization_failures_next_n -= 1
                self._fail_finalization(invoice, ctx)
            customer = self._get("customer", invoice["customer"], "customer")
            self._follow_customer(invoice, customer)  # Stripe computes the tax at finalization
            if invoice["automatic_tax"]["enabled"] and invoice["automatic_tax"]["status"] == "requires_location_inputs":
                self._fail_finalization(invoice, ctx, TAX_LOCATION_MISSING, code="customer_tax_location_invalid")
            before = copy.deepcopy(invoice)
            now = self._now()
            if "auto_advance" in params:
                invoice["auto_advance"] = bool(params["auto_advance"])
            base_url = (self._config.public_url or ctx.base_url).rstrip("/")
            invoice.update(
                status="open",
                effective_at=now,
                customer_tax_ids=self._customer_tax_ids(customer["id"]),
                last_finalization_error=None,
                number=f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}",
                hosted_invoice_url=f"{base_url}/invoice/{invoice_id}",
                invoice_pdf=f"{base_url}/invoice/{invoice_id}/pdf",
                customer_email=customer["email"],
                customer_name=customer["name"],
                customer_phone=customer["phone"],
                customer_address=customer["address"],
            )
            invoice["status_transitions"]["finalized_at"] = now
            invoice["ending_balance"] = self._apply_balance(invoice, customer, ctx)  # once open: drafts follow
            customer["next_invoice_sequence"] += 1
            if customer["currency"] is None:
                customer["currency"] = invoice["currency"]
            automatic = invoice["collection_method"] == "charge_automatically" and invoice["auto_advance"]
            if invoice["amount_due"] > 0 and automatic:
                invoice["next_payment_attempt"] = now + math.ceil(self._config.auto_charge_delay)
            self._emit("invoice.finalized", invoice, ctx, build.previous_attributes(before, invoice))
            self._defer_too_small(invoice, customer, ctx)
            if invoice["amount_due"] == 0:
                self._mark_paid(invoice, ctx)
            elif automatic:
                self._schedule_charge(invoice_id, self._config.auto_charge_delay)
            return invoice

    def _apply_balance(self, invoice: dict[str, Any], customer: dict[str, Any], ctx: RequestContext) -> int:
        """The customer's balance applied at finalization (``applied_to_invoice``); the ending balance.

        A credit (negative balance) reduces the amount due, down to 0, and what is left of it stays on
        the balance; a debit is added to the amount due ("credits reduce the amount due, while debits
        increase it", https://docs.stripe.com/billing/scripts/customer-balance).
        """
        applied = balance_applied(invoice["total"], invoice["starting_balance"])
        if applied:
            self._balance_transaction(
                customer, -applied, "applied_to_invoice", invoice["currency"], ctx, invoice=invoice["id"]
            )
        return int(invoice["starting_balance"] - applied)

    def _defer_too_small(self, invoice: dict[str, Any], customer: dict[str, Any], ctx: RequestContext) -> None:
        """An amount due below Stripe's minimum charge is not charged: it moves to the customer's balance.

        "If the amount due for the invoice is less than Stripe's minimum allowed charge per currency, the
        invoice is automatically marked paid, and we add the amount due to the customer's credit balance
        which is applied to the next invoice" (https://docs.stripe.com/api/invoices); the transaction is
        ``invoice_too_small`` and the invoice's ``amount_due`` becomes 0 (the SDK's Invoice.amount_due: "If
        the invoice's total is smaller than the minimum charge amount ... the amount_due may be 0").
        """
        due = invoice["amount_due"]
        if not 0 < due < MINIMUM_CHARGE.get(invoice["currency"], 0):
            return
        before = copy.deepcopy(invoice)
        self._balance_transaction(customer, due, "invoice_too_small", invoice["currency"], ctx, invoice=invoice["id"])
        invoice.update(
            amount_due=0,
            amount_remaining=0,
            ending_balance=(invoice["ending_balance"] or 0) + due,
            next_payment_attempt=None,
        )
        self._charge_tokens.pop(invoice["id"], None)
        self._emit_changes("invoice.updated", invoice, before, ctx)

    def _customer_tax_ids(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's tax ids as a finalized invoice keeps them (none before ``TaxIds`` joins)."""
        return []

    def _fail_finalization(
        self,
        invoice: dict[str, Any],
        ctx: RequestContext,
        message: str = "The invoice could not be finalized (injected finalization failure).",
        code: str | None = None,
    ) -> None:
        """Stripe could not finalize: the invoice stays a draft, says why, and the request fails."""
        before = copy.deepcopy(invoice)
        error = InvalidRequestError(message, code=code)
        invoice["last_finalization_error"] = error.body()["error"]
        self._emit("invoice.finalization_failed", invoice, ctx, build.previous_attributes(before, invoice))
        raise error

    def _follow_customer(self, invoice: dict[str, Any], customer: dict[str, Any]) -> None:
        """Until it is finalized, an invoice shows its customer's tax exemption and address, and is taxed by them."""
        invoice["customer_tax_exempt"] = customer["tax_exempt"]
        invoice["customer_address"] = copy.deepcopy(customer["address"])
        # "If the invoice has not been finalized yet, this will be the current customer balance" (the SDK's
        # Invoice.starting_balance); a balance kept in another currency does not apply.
        same_currency = customer["currency"] in (None, invoice["currency"])
        invoice["starting_balance"] = customer["balance"] if same_currency else 0
        self._recompute(invoice)

    def _customer_changed(self, customer: dict[str, Any], ctx: RequestContext) -> None:
        """The customer's drafts follow its new tax exemption or address (finalized invoices keep theirs)."""
        for invoice in list(self._objects["invoice"].values()):
            if invoice["customer"] == customer["id"] and invoice["status"] == "draft":
                before = copy.deepcopy(invoice)
                self._follow_customer(invoice, customer)
                self._emit_changes("invoice.updated", invoice, before, ctx)

    def pay_invoice(self, invoice_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices/{id}/pay: one synchronous attempt; a decline answers 402."""
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            status = invoice["status"]
            if status == "paid":
                # Stripe: 400 invalid_request_error, no code, this message (the pinned SDK's codes have none).
                raise InvalidRequestError("Invoice is already paid")
            if status not in ("open", "uncollectible"):
                raise InvalidRequestError(
                    f"You can only pay an invoice with status open or uncollectible; this invoice is {status}."
                )
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
                    f"{invoice['status']}."
                )
            if invoice_id in self._processing:
                raise InvalidRequestError("This invoice can't be voided while its payment is processing.")
            self._unapply_balance(invoice, ctx)
            return self._close(invoice, "void", "voided_at", "invoice.voided", ctx)

    def _unapply_balance(self, invoice: dict[str, Any], ctx: RequestContext) -> None:
        """A voided invoice gives back the balance it took: ``unapplied_from_invoice``, "Paired with an earlier
        'applied_to_invoice' transaction" (https://docs.stripe.com/billing/customer/balance#types)."""
        applied = sum(
            t["amount"]
            for t in self._objects["customer_balance_transaction"].values()
            if t["invoice"] == invoice["id"] and t["type"] in ("applied_to_invoice", "unapplied_from_invoice")
        )
        customer = self._objects["customer"].get(invoice["customer"])
        if applied and customer is not None:
            self._balance_transaction(
                customer, -applied, "unapplied_from_invoice", invoice["currency"], ctx, invoice=invoice["id"]
            )

    def mark_uncollectible(self, invoice_id: str, ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/invoices/{id}/mark_uncollectible: open -> uncollectible."""
        with self._lock:
            invoice = self._get("invoice", invoice_id)
            if invoice["status"] != "open":
                raise InvalidRequestError(
                    f"You can only mark an open invoice as uncollectible; this invoice is {invoice['status']}."
                )
            return self._close(invoice, "uncollectible", "marked_uncollectible_at", "invoice.marked_uncollectible", ctx)

    def _close(
        self, invoice: dict[str, Any], status: str, transition: str, event_type: str, ctx: RequestContext
    ) -> dict[str, Any]:
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
            items = [
                i
                for i in self._objects["invoice"].values()
                if (not params.get("customer") or i["customer"] == params["customer"])
                and (not params.get("status") or i["status"] == params["status"])
                and (not params.get("collection_method") or i["collection_method"] == params["collection_method"])
                and (
                    not params.get("due_date")
                    or (i["due_date"] is not None and in_range(i["due_date"], params["due_date"]))
                )
            ]
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
            return build.list_object(f"/v1/invoices/{invoice_id}/lines", copy.deepcopy(rest[:limit]), len(rest) > limit)

    def _require_owned(self, customer: dict[str, Any], pm_id: str, param: str) -> str:
        pm = self._get("payment_method", pm_id, param)
        if pm["customer"] != customer["id"]:
            raise InvalidRequestError(
                f"The PaymentMethod {pm_id} does not belong to the Customer {customer['id']}. Please attach it "
                "to the customer first.",
                param=param,
            )
        return pm_id


def _require_automatic_tax_compatible(items: list[dict[str, Any]], param: str) -> None:
    """Stripe Tax takes no invoice item with its own tax rates or a negative amount."""
    for item in items:
        if item["tax_rates"]:
            raise InvalidRequestError(
                f"Invoice item {item['id']} has manually specified tax rates and cannot be on an invoice that uses "
                "automatic tax.",
                param=param,
            )
        if item["amount"] is not None and item["amount"] < 0:
            raise InvalidRequestError(
                f"Invoice item {item['id']} has a negative amount and cannot be on an invoice that uses automatic tax.",
                param=param,
            )
