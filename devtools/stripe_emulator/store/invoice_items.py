"""Invoice items, pending or on a draft invoice, and the invoice lines, taxes and totals that follow from them.

A line's tax comes from exactly one source (``stripe_emulator.taxes`` computes it):

- manual ``tax_amounts`` given with the line (kept per invoice item, with the archived TaxRate Stripe
  made for their ``tax_rate_data``);
- automatic tax, when the invoice has ``automatic_tax.enabled``;
- the invoice item's ``tax_rates``, else the invoice's ``default_tax_rates``.

Stripe refuses to mix them: "You cannot set tax amounts if any line item has tax_rates or if the
invoice has default_tax_rates or uses automatic tax" (InvoiceAddLinesParamsLine.tax_amounts), and
"incompatible invoice items (invoice items with manually specified tax rates, negative amounts ...)
cannot be added to automatic tax invoices" (InvoiceCreateParamsAutomaticTax.enabled).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from stripe_emulator import objects as build
from stripe_emulator import taxes
from stripe_emulator.errors import InvalidRequestError, ParameterError
from stripe_emulator.params import require
from stripe_emulator.store.core import RequestContext, merge_metadata
from stripe_emulator.store.tax_rates import TaxRates, check_tax_rate_data


class InvoiceItems(TaxRates):
    """``/v1/invoiceitems``; an item on a draft is one of its lines."""

    def _init_state(self) -> None:
        super()._init_state()
        self._manual_taxes: dict[str, list[dict[str, Any]]] = {}  # invoice item id -> its line's taxes

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
                        param="invoice",
                    )
            rates = self._resolve_tax_rates(params.get("tax_rates"), "tax_rates")
            if invoice:
                self._check_line_taxes(invoice, rates=rates, manual=None, amount=amount_of(params), prefix="")
            item = self._new_invoiceitem(customer, invoice, params, "", ctx, rates)
            if invoice:
                self._after_lines_changed(invoice, ctx)
            return item

    def _new_invoiceitem(
        self,
        customer: dict[str, Any],
        invoice: dict[str, Any] | None,
        params: dict[str, Any],
        param_prefix: str,
        ctx: RequestContext,
        tax_rates: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        _require_amount(params, param_prefix)
        currency = (
            params.get("currency")
            or (invoice or {}).get("currency")
            or customer["currency"]
            or self._config.default_currency
        ).lower()
        if invoice and currency != invoice["currency"]:
            raise InvalidRequestError(
                f"The currency of the invoice item ({currency}) must match the invoice's currency "
                f"({invoice['currency']}).",
                param=f"{param_prefix}[currency]" if param_prefix else "currency",
            )
        item = build.build_invoiceitem(
            self._now(), customer["id"], currency, {**params, "invoice": invoice["id"] if invoice else None}
        )
        item["tax_rates"] = copy.deepcopy(tax_rates or [])
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
            rates = self._resolve_tax_rates(params.get("tax_rates"), "tax_rates") if "tax_rates" in params else None
            if invoice:
                amount = (
                    amount_of(params, item["quantity"])
                    if ("amount" in params or "unit_amount_decimal" in params)
                    else None
                )
                # The item's own manual taxes count too: new tax_rates cannot join them.
                self._check_line_taxes(invoice, rates=rates or [], manual=None, amount=amount, prefix="")
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
            if rates is not None:
                item["tax_rates"] = copy.deepcopy(rates)
            if invoice:  # Stripe has no invoiceitem.updated event; the invoice's update is the signal
                for line in invoice["lines"]["data"]:
                    if line["parent"]["invoice_item_details"]["invoice_item"] == item_id:
                        line.update(
                            amount=item["amount"],
                            subtotal=item["amount"],
                            description=item["description"],
                            quantity=item["quantity"],
                            quantity_decimal=item["quantity_decimal"],
                            period=dict(item["period"]),
                            metadata=dict(item["metadata"]),
                        )
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
            self._manual_taxes.pop(item_id, None)
            self._emit("invoiceitem.deleted", item, ctx)
            if invoice:
                invoice["lines"]["data"] = [
                    line
                    for line in invoice["lines"]["data"]
                    if line["parent"]["invoice_item_details"]["invoice_item"] != item_id
                ]
                self._after_lines_changed(invoice, ctx)
            return {"id": item_id, "object": "invoiceitem", "deleted": True}

    def list_invoiceitems(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/invoiceitems."""
        with self._lock:
            pending = params.get("pending")
            items = [
                i
                for i in self._objects["invoiceitem"].values()
                if (not params.get("customer") or i["customer"] == params["customer"])
                and (not params.get("invoice") or i["invoice"] == params["invoice"])
                and (pending is None or (i["invoice"] is None) == pending)
            ]
            return self._page(items, params, "/v1/invoiceitems")

    def _require_editable(self, invoice: dict[str, Any]) -> None:
        if invoice["status"] != "draft":
            raise InvalidRequestError(
                f"You can only modify the lines of a draft invoice; invoice {invoice['id']} has status "
                f"{invoice['status']}.",
                code="invoice_not_editable",
            )

    # --- taxes ------------------------------------------------------------------------------------

    def _line_items(self, invoice: dict[str, Any]) -> list[str]:
        return [line["parent"]["invoice_item_details"]["invoice_item"] for line in invoice["lines"]["data"]]

    def _lines_have_rates(self, invoice: dict[str, Any]) -> bool:
        return any(
            self._objects["invoiceitem"].get(item_id, {}).get("tax_rates") for item_id in self._line_items(invoice)
        )

    def _lines_have_manual_taxes(self, invoice: dict[str, Any]) -> bool:
        return any(item_id in self._manual_taxes for item_id in self._line_items(invoice))

    def _check_line_taxes(
        self,
        invoice: dict[str, Any],
        *,
        rates: list[dict[str, Any]],
        manual: list[dict[str, Any]] | None,
        amount: int | None,
        prefix: str,
        rates_before: bool = False,
        manual_before: bool = False,
    ) -> None:
        """Refuse what Stripe refuses to put on one line of ``invoice`` (``*_before``: earlier lines of the request)."""

        def param(name: str) -> str:
            return f"{prefix}[{name}]" if prefix else name

        automatic = invoice["automatic_tax"]["enabled"]
        if manual:
            if rates:
                raise InvalidRequestError(
                    "You cannot set tax amounts on a line item that has tax_rates.", param=param("tax_amounts")
                )
            if automatic:
                raise InvalidRequestError(
                    "You cannot set tax amounts on a line item of an invoice that uses automatic tax.",
                    param=param("tax_amounts"),
                )
            if invoice["default_tax_rates"]:
                raise InvalidRequestError(
                    "You cannot set tax amounts on a line item of an invoice that has default_tax_rates.",
                    param=param("tax_amounts"),
                )
            if rates_before or self._lines_have_rates(invoice):
                raise InvalidRequestError(
                    "You cannot set tax amounts if any line item of the invoice has tax_rates.",
                    param=param("tax_amounts"),
                )
        if rates:
            if automatic:
                raise InvalidRequestError(
                    "Invoice items with manually specified tax rates cannot be added to an "
                    "invoice that uses automatic tax.",
                    param=param("tax_rates"),
                )
            if manual_before or self._lines_have_manual_taxes(invoice):
                raise InvalidRequestError(
                    "You cannot set tax_rates on a line item of an invoice whose line items have tax amounts.",
                    param=param("tax_rates"),
                )
        if automatic and amount is not None and amount < 0:
            raise InvalidRequestError(
                "Invoice items with negative amounts cannot be added to an invoice that uses automatic tax.",
                param=param("amount"),
            )

    def _checked_tax_amounts(self, amounts: list[dict[str, Any]] | None, param: str) -> list[dict[str, Any]] | None:
        """Manual tax amounts within Stripe's limits (nothing is created yet); None for none."""
        if not amounts:
            return None
        if len(amounts) > taxes.MAX_TAX_AMOUNTS:
            raise ParameterError(
                f"You can set at most {taxes.MAX_TAX_AMOUNTS} tax amounts; {param} has {len(amounts)}.", param=param
            )
        for index, amount in enumerate(amounts):
            check_tax_rate_data(amount["tax_rate_data"], f"{param}[{index}][tax_rate_data]")
        return amounts

    def _set_manual_taxes(self, item_id: str, amounts: list[dict[str, Any]]) -> None:
        """A line's manual taxes, each with the archived TaxRate made (or reused) for its ``tax_rate_data``."""
        entries = []
        for amount in amounts:
            rate = self._rate_for_tax_rate_data(amount["tax_rate_data"])
            entries.append(
                taxes.entry(
                    amount["amount"],
                    rate["id"],
                    rate["inclusive"],
                    amount["taxable_amount"],
                    amount.get("taxability_reason") or taxes.NOT_AVAILABLE,
                )
            )
        self._manual_taxes[item_id] = entries

    def _recompute(self, invoice: dict[str, Any]) -> None:
        """Every line's taxes, then the invoice's totals, from the lines and the invoice's tax settings."""
        automatic = invoice["automatic_tax"]
        exemption = invoice["customer_tax_exempt"]
        automatic_lines = []
        for line in invoice["lines"]["data"]:
            item_id = line["parent"]["invoice_item_details"]["invoice_item"]
            item = self._objects["invoiceitem"].get(item_id) or {}
            if item_id in self._manual_taxes:
                line["taxes"] = copy.deepcopy(self._manual_taxes[item_id])
            elif automatic["enabled"]:
                automatic_lines.append(line)
            else:
                rates = item.get("tax_rates") or invoice["default_tax_rates"]
                terms = [taxes.RateTerms(r["id"], taxes.percentage_of(r), r["inclusive"]) for r in rates]
                line["taxes"] = taxes.rate_taxes(line["amount"], terms, exemption)
        if automatic["enabled"]:
            self._automatic_tax(invoice, automatic_lines)
        recompute_totals(invoice)

    def _automatic_tax(self, invoice: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        outcome = taxes.automatic_outcome(
            (invoice["customer_address"] or {}).get("country"), invoice["customer_tax_exempt"]
        )
        invoice["automatic_tax"]["status"] = "requires_location_inputs" if outcome is None else "complete"
        if outcome is None or not lines:
            for line in lines:
                line["taxes"] = []
            return
        rate = self._automatic_rate(outcome.rate_country, outcome.percentage)
        amounts = taxes.automatic_taxes(
            [line["amount"] for line in lines], outcome.percentage, self._config.automatic_tax_rounding
        )
        for line, tax in zip(lines, amounts, strict=True):
            line["taxes"] = [taxes.entry(tax, rate["id"], False, line["amount"], outcome.taxability_reason)]

    def _after_lines_changed(self, invoice: dict[str, Any], ctx: RequestContext) -> None:
        before = {k: copy.deepcopy(invoice[k]) for k in TOTAL_FIELDS}
        self._recompute(invoice)
        self._emit(
            "invoice.updated", invoice, ctx, build.previous_attributes(before, {k: invoice[k] for k in TOTAL_FIELDS})
        )


TOTAL_FIELDS = (
    "subtotal",
    "subtotal_excluding_tax",
    "total",
    "total_excluding_tax",
    "total_taxes",
    "amount_due",
    "amount_remaining",
    "automatic_tax",
)


def recompute_totals(invoice: dict[str, Any]) -> None:
    """Totals follow from the lines and their taxes, the amount due also from the customer's balance (no discounts).

    ``subtotal`` is the sum of the lines' amounts; ``subtotal_excluding_tax`` (and ``total_excluding_tax``)
    the same less inclusive taxes; ``total`` adds every tax to that, so an inclusive tax is counted
    once and an exclusive one comes on top; ``total_taxes`` sums each tax rate's taxes over the lines.
    """
    lines = invoice["lines"]["data"]
    subtotal = sum(line["amount"] for line in lines)
    excluding_tax = sum(taxes.line_net(line) for line in lines)
    total = excluding_tax + sum(tax["amount"] for line in lines for tax in line["taxes"] or [])
    due = max(total + balance_applied(total, invoice["starting_balance"]), 0)
    invoice.update(
        subtotal=subtotal,
        subtotal_excluding_tax=excluding_tax,
        total=total,
        total_excluding_tax=excluding_tax,
        total_taxes=taxes.total_taxes(lines),
        amount_due=due,
        amount_remaining=due - invoice["amount_paid"],
    )


def balance_applied(total: int, starting_balance: int) -> int:
    """How much of the customer's balance an invoice of ``total`` takes: a debit all of it, a credit up to the total."""
    if starting_balance >= 0:
        return starting_balance
    return max(starting_balance, -max(total, 0))


def _require_amount(params: dict[str, Any], param_prefix: str) -> None:
    if params.get("amount") is None and params.get("unit_amount_decimal") is None:
        name = f"{param_prefix}[amount]" if param_prefix else "amount"
        raise ParameterError(f"Missing required param: {name}.", code="parameter_missing", param=name)


def amount_of(params: dict[str, Any], quantity: int | None = None) -> int | None:
    """The amount an invoice item will have (as ``build_invoiceitem`` computes it), None if not given."""
    if params.get("amount") is not None:
        return int(params["amount"])
    if params.get("unit_amount_decimal") is not None:
        return int(round(float(Decimal(params["unit_amount_decimal"])) * (params.get("quantity") or quantity or 1)))
    return None
