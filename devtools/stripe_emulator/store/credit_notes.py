"""Credit notes: adjust a finalized invoice, before payment (less due) or after it (refund, balance, out of band).

Stripe's rules, from the pinned SDK (``CreditNoteService.create`` and ``CreditNoteCreateParams``):

- "A credit note will first reduce the invoice's amount_remaining (and amount_due), but not below zero.
  This amount is indicated by the credit note's pre_payment_amount. The excess amount is indicated by
  post_payment_amount" and "The sum of refunds, customer balance credits, and outside of Stripe credits
  must equal the post_payment_amount";
- "One of `amount`, `lines`, or `shipping_cost` must be provided"; a line's ``amount`` and
  ``invoice_line_item`` are "Only valid when `type` is `invoice_line_item`", ``description``,
  ``unit_amount`` and ``tax_rates`` "Only valid when the `type` is `custom_line_item`", and
  "`custom_line_item` is not valid when the invoice is set up with `automatic_tax[enabled]=true`";
- "ensure the combined total does not exceed the invoice's paid amount".

Credit notes apply to ``open`` or ``paid`` invoices ("Credit notes are documents that decrease the amount
of an open or paid invoice", https://docs.stripe.com/invoicing/dashboard/credit-notes). A credited invoice
line's tax follows the line's taxes in proportion to the amount credited; once the whole line is credited
its whole tax is (the proportion is taken of what all credit notes credited so far, so rounding never
credits more tax than the line carries).

A line may instead give its tax as ``tax_amounts`` (``CreditNoteCreateParamsLineTaxAmount``: ``amount``,
``tax_rate``, ``taxable_amount``): "A list of up to 20 tax amounts for the credit note line item. Not valid
when `tax_rates` is used or if invoice is set up with `automatic_tax[enabled]=true`", and the rate "must
have been automatically created by Stripe" (the archived rate Stripe made for an invoice line's own
``tax_amounts``). The given taxes are the line's taxes, in place of the proportion. The emulator is stricter
where the SDK says nothing: on an invoice line item each rate must be one of that line's taxes, and no
more of a rate's tax is credited than the line still carries of it.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from stripe_emulator import objects as build
from stripe_emulator import taxes
from stripe_emulator.errors import InvalidRequestError, ParameterError, ResourceMissingError
from stripe_emulator.params import require
from stripe_emulator.store.core import RequestContext, list_limit, merge_metadata
from stripe_emulator.store.invoices import Invoices

INVOICE_LINE_ONLY = ("amount", "invoice_line_item")
CUSTOM_LINE_ONLY = ("description", "unit_amount", "unit_amount_decimal", "tax_rates")
# Credit note reasons Refund.reason shares; the others are refunds "requested_by_customer".
REFUND_REASONS = {"duplicate": "duplicate", "fraudulent": "fraudulent"}


class CreditNotes(Invoices):
    """``/v1/credit_notes``, and the refunds that post-payment credit notes make."""

    def create_credit_note(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/credit_notes."""
        with self._lock:
            invoice = self._get("invoice", params["invoice"], "invoice")
            note = self._plan_credit_note(invoice, params, ctx)
            self._add(note)
            for line, asked in zip(note["lines"]["data"], params.get("lines") or [], strict=False):
                line_id = line["invoice_line_item"]
                if line_id:  # by quantity or by amount: later credits of the line must do the same
                    by_quantity = asked.get("quantity") is not None
                    entry = (note["id"], line["amount"], line["quantity"] if by_quantity else None)
                    self._credited.setdefault(line_id, []).append(entry)
            self._apply_credit_note(invoice, note, ctx)
            return note

    def preview_credit_note(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """GET /v1/credit_notes/preview: the credit note ``create`` would issue, nothing changed."""
        with self._lock:
            invoice = self._get("invoice", params["invoice"], "invoice")
            note = self._plan_credit_note(invoice, params, ctx)
            del note["_settle"]
            return note

    def preview_credit_note_lines(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """GET /v1/credit_notes/preview/lines."""
        paging: dict[str, Any] = {k: params.pop(k) for k in ("limit", "starting_after", "ending_before") if k in params}
        note = self.preview_credit_note(params, ctx)
        return self._line_page(note["lines"]["data"], paging, "/v1/credit_notes/preview/lines")

    def retrieve_credit_note(self, note_id: str) -> dict[str, Any]:
        """GET /v1/credit_notes/{id}."""
        with self._lock:
            return self._get("credit_note", note_id)

    def list_credit_notes(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/credit_notes, filtered by ``invoice``, ``customer`` and ``created``."""
        with self._lock:
            items = [
                n
                for n in self._objects["credit_note"].values()
                if (not params.get("invoice") or n["invoice"] == params["invoice"])
                and (not params.get("customer") or n["customer"] == params["customer"])
            ]
            return self._page(items, params, "/v1/credit_notes")

    def list_credit_note_lines(self, note_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/credit_notes/{id}/lines."""
        with self._lock:
            note = self._get("credit_note", note_id)
            return self._line_page(note["lines"]["data"], params, f"/v1/credit_notes/{note_id}/lines")

    def update_credit_note(self, note_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/credit_notes/{id}: only ``memo`` and ``metadata`` change (CreditNoteUpdateParams)."""
        with self._lock:
            note = self._get("credit_note", note_id)
            before = copy.deepcopy(note)
            if "memo" in params:
                note["memo"] = params["memo"]
            if "metadata" in params:
                note["metadata"] = merge_metadata(note["metadata"], params["metadata"])
            self._emit_changes("credit_note.updated", note, before, ctx)
            return note

    def void_credit_note(self, note_id: str, ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/credit_notes/{id}/void: only while the invoice is open, so only a pre-payment credit is undone.

        A refund cannot be taken back and a paid invoice stays paid, so a credit note of a paid invoice
        is never voided here (stricter than Stripe, if Stripe allows more).
        """
        with self._lock:
            note = self._get("credit_note", note_id)
            if note["status"] == "void":
                raise InvalidRequestError("This credit note has already been voided.")
            invoice = self._get("invoice", note["invoice"], "invoice")
            if invoice["status"] != "open":
                raise InvalidRequestError(
                    f"You can only void a credit note if the associated invoice is open; invoice {invoice['id']} "
                    f"has status {invoice['status']}."
                )
            before_note = copy.deepcopy(note)
            before = copy.deepcopy(invoice)
            note.update(status="void", voided_at=self._now())
            invoice["pre_payment_credit_notes_amount"] -= note["pre_payment_amount"]
            invoice["amount_due"] += note["pre_payment_amount"]
            invoice["amount_remaining"] += note["pre_payment_amount"]
            for entries in self._credited.values():
                entries[:] = [entry for entry in entries if entry[0] != note_id]
            self._emit("credit_note.voided", note, ctx, build.previous_attributes(before_note, note))
            self._emit_changes("invoice.updated", invoice, before, ctx)
            return note

    def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        """GET /v1/refunds/{id}."""
        with self._lock:
            return self._get("refund", refund_id)

    def list_refunds(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/refunds (the emulator keeps no charges, so ``charge`` and ``payment_intent`` match none)."""
        with self._lock:
            items = [
                r
                for r in self._objects["refund"].values()
                if (not params.get("charge") or r["charge"] == params["charge"])
                and (not params.get("payment_intent") or r["payment_intent"] == params["payment_intent"])
            ]
            return self._page(items, params, "/v1/refunds")

    # --- computing a credit note -----------------------------------------------------------------

    def _init_state(self) -> None:
        super()._init_state()
        # invoice line id -> (credit note id, amount, quantity) of every issued credit note line
        self._credited: dict[str, list[tuple[str, int, int | None]]] = {}

    def _plan_credit_note(self, invoice: dict[str, Any], params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """The credit note for ``params`` with its amounts split; refused as Stripe refuses it."""
        require(params, "invoice")
        if invoice["status"] not in ("open", "paid"):
            raise InvalidRequestError(
                f"You can only create a credit note for an open or paid invoice; invoice {invoice['id']} has status "
                f"{invoice['status']}.",
                param="invoice",
            )
        if params.get("shipping_cost") is not None:
            raise InvalidRequestError(
                "This invoice has no shipping cost to credit (the emulator has no shipping rates).",
                param="shipping_cost",
            )
        if params.get("refunds"):
            refund_id = params["refunds"][0].get("refund") or ""
            raise ResourceMissingError("refund", refund_id, "refunds[0][refund]", status=400)
        given = [name for name in ("amount", "lines") if params.get(name) not in (None, [])]
        if not given:
            raise ParameterError(
                "One of `amount`, `lines`, or `shipping_cost` must be provided.",
                code="parameter_missing",
                param="lines",
            )
        if len(given) > 1:
            raise ParameterError("You may only specify one of these parameters: amount, lines.", param="amount")
        if "lines" in given:
            lines = [self._credit_note_line(invoice, line, f"lines[{i}]") for i, line in enumerate(params["lines"])]
            seen = [line["invoice_line_item"] for line in lines if line["invoice_line_item"]]
            if len(seen) != len(set(seen)):
                raise InvalidRequestError("Each invoice line item can be credited only once per credit note.")
        else:
            if params["amount"] <= 0:
                raise InvalidRequestError("The credit note amount must be greater than 0.", param="amount")
            lines = []
        subtotal = sum(line["amount"] for line in lines)
        excluding_tax = sum(taxes.line_net(line) for line in lines)
        total = excluding_tax + sum(tax["amount"] for line in lines for tax in line["taxes"])
        if not lines:
            subtotal = excluding_tax = total = int(params["amount"])
        issued = [n for n in self._objects["credit_note"].values() if n["invoice"] == invoice["id"]]
        # What a credit note can take before payment is what is left to pay; after payment, what was paid
        # and not yet credited.
        pre = min(total, invoice["amount_remaining"]) if invoice["status"] == "open" else 0
        post = total - pre
        paid_left = invoice["amount_paid"] - invoice["post_payment_credit_notes_amount"]
        if post > paid_left:
            creditable = (invoice["amount_remaining"] if invoice["status"] == "open" else 0) + paid_left
            raise InvalidRequestError(
                f"The credit note's total ({total}) exceeds the amount that can still be credited on invoice "
                f"{invoice['id']} ({creditable}).",
                param="lines" if lines else "amount",
            )
        refund = int(params.get("refund_amount") or 0)
        credit = int(params.get("credit_amount") or 0)
        out_of_band = int(params.get("out_of_band_amount") or 0)
        for name, value in (("refund_amount", refund), ("credit_amount", credit), ("out_of_band_amount", out_of_band)):
            if value < 0:
                raise InvalidRequestError(f"{name} must be 0 or greater.", param=name)
        if refund + credit + out_of_band != post:
            raise InvalidRequestError(
                f"The sum of refund_amount ({refund}), credit_amount ({credit}) and out_of_band_amount "
                f"({out_of_band}) must equal the credit note's post-payment amount ({post}): its total ({total}) "
                f"less what it takes off the invoice's amount remaining ({pre}).",
                param="refund_amount" if refund else "credit_amount" if credit else "out_of_band_amount",
            )
        note_id = build.new_id("cn")
        base_url = (self._config.public_url or ctx.base_url).rstrip("/")
        now = self._now()
        return {
            "id": note_id,
            "object": "credit_note",
            "amount": total,
            "amount_shipping": 0,
            "created": now,
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "customer_account": None,
            "customer_balance_transaction": None,
            "discount_amount": 0,
            "discount_amounts": [],
            "effective_at": params.get("effective_at") or now,
            "invoice": invoice["id"],
            "lines": build.list_object(f"/v1/credit_notes/{note_id}/lines", lines, False),
            "livemode": False,
            "memo": params.get("memo"),
            "metadata": dict(params.get("metadata") or {}),
            "number": f"{invoice['number']}-CN-{len(issued) + 1:02d}",
            "out_of_band_amount": out_of_band or None,
            "pdf": f"{base_url}/invoice/{invoice['id']}/credit_notes/{note_id}/pdf",
            "post_payment_amount": post,
            "pre_payment_amount": pre,
            "pretax_credit_amounts": [],
            "reason": params.get("reason"),
            "refunds": [],
            "shipping_cost": None,
            "status": "issued",
            "subtotal": subtotal,
            "subtotal_excluding_tax": excluding_tax,
            "total": total,
            "total_excluding_tax": excluding_tax,
            "total_taxes": taxes.total_taxes(lines),
            "type": "mixed" if pre and post else "post_payment" if post else "pre_payment",
            "voided_at": None,
            # Kept only while planning: how the post-payment amount is settled.
            "_settle": {"refund": refund, "credit": credit},
        }

    def _credit_note_line(self, invoice: dict[str, Any], line: dict[str, Any], prefix: str) -> dict[str, Any]:
        kind = line["type"]
        if kind not in ("invoice_line_item", "custom_line_item"):
            raise ParameterError(
                f"Invalid {prefix}[type]: must be one of custom_line_item, invoice_line_item", param=f"{prefix}[type]"
            )
        if line.get("tax_amounts") and line.get("tax_rates"):
            raise InvalidRequestError(
                f"{prefix}[tax_amounts] cannot be combined with {prefix}[tax_rates].", param=f"{prefix}[tax_amounts]"
            )
        wrong = CUSTOM_LINE_ONLY if kind == "invoice_line_item" else INVOICE_LINE_ONLY
        for name in wrong:
            if line.get(name) is not None:
                raise InvalidRequestError(
                    f"{prefix}[{name}] is only valid when {prefix}[type] is "
                    f"{'custom_line_item' if kind == 'invoice_line_item' else 'invoice_line_item'}.",
                    param=f"{prefix}[{name}]",
                )
        if kind == "custom_line_item":
            return self._custom_credit_line(invoice, line, prefix)
        return self._invoice_credit_line(invoice, line, prefix)

    def _custom_credit_line(self, invoice: dict[str, Any], line: dict[str, Any], prefix: str) -> dict[str, Any]:
        if invoice["automatic_tax"]["enabled"]:
            raise InvalidRequestError(
                "custom_line_item is not valid when the invoice is set up with automatic_tax[enabled]=true.",
                param=f"{prefix}[type]",
            )
        if line.get("unit_amount") is not None and line.get("unit_amount_decimal") is not None:
            raise ParameterError(
                f"You may only specify one of these parameters: {prefix}[unit_amount], {prefix}[unit_amount_decimal].",
                param=f"{prefix}[unit_amount]",
            )
        if line.get("unit_amount") is None and line.get("unit_amount_decimal") is None:
            raise ParameterError(
                f"Missing required param: {prefix}[unit_amount].",
                code="parameter_missing",
                param=f"{prefix}[unit_amount]",
            )
        quantity = int(line.get("quantity") or 1)
        unit = Decimal(line["unit_amount"] if line.get("unit_amount") is not None else line["unit_amount_decimal"])
        amount = taxes.round_half_up(unit * quantity)
        if amount <= 0:
            raise InvalidRequestError("A credit note line must credit more than 0.", param=f"{prefix}[unit_amount]")
        manual = self._credit_tax_amounts(invoice, line, prefix, None)
        rates = self._resolve_tax_rates(line.get("tax_rates"), f"{prefix}[tax_rates]")
        terms = [taxes.RateTerms(r["id"], taxes.percentage_of(r), r["inclusive"]) for r in rates]
        return build.build_credit_note_line(
            "custom_line_item",
            amount,
            description=line.get("description"),
            quantity=quantity,
            unit_amount=int(unit) if unit == unit.to_integral_value() else None,
            invoice_line_item=None,
            tax_rates=[r["id"] for r in rates]
            if manual is None
            else [t["tax_rate_details"]["tax_rate"] for t in manual],
            taxes=taxes.rate_taxes(amount, terms, invoice["customer_tax_exempt"]) if manual is None else manual,
            metadata=line.get("metadata"),
        )

    def _invoice_credit_line(self, invoice: dict[str, Any], line: dict[str, Any], prefix: str) -> dict[str, Any]:
        line_id = line.get("invoice_line_item")
        if not line_id:
            raise ParameterError(
                f"Missing required param: {prefix}[invoice_line_item].",
                code="parameter_missing",
                param=f"{prefix}[invoice_line_item]",
            )
        source = next((item for item in invoice["lines"]["data"] if item["id"] == line_id), None)
        if source is None:
            raise ResourceMissingError("invoice line item", line_id, f"{prefix}[invoice_line_item]", status=400)
        earlier = self._credited.get(line_id, [])
        by_quantity = line.get("quantity") is not None
        if by_quantity == (line.get("amount") is not None):
            raise ParameterError(
                f"Give exactly one of {prefix}[amount] and {prefix}[quantity] to credit an invoice line item.",
                param=f"{prefix}[amount]",
            )
        # "You can't combine discount types on an invoice line item" (programmatic credit notes guide).
        if earlier and (earlier[0][2] is not None) != by_quantity:
            raise InvalidRequestError(
                f"Invoice line item {line_id} was credited by {'quantity' if earlier[0][2] is not None else 'amount'}"
                " before; later credit notes must credit it the same way.",
                param=f"{prefix}[{'quantity' if by_quantity else 'amount'}]",
            )
        credited_before = sum(amount for _, amount, _ in earlier)
        if by_quantity:
            quantity = int(line["quantity"])
            left = source["quantity"] - sum(q or 0 for _, _, q in earlier)
            if not 0 < quantity <= left:
                raise InvalidRequestError(
                    f"You can credit at most {left} more of invoice line item {line_id}'s quantity.",
                    param=f"{prefix}[quantity]",
                )
            unit = source["amount"] // max(source["quantity"], 1)
            amount = source["amount"] - credited_before if quantity == left else unit * quantity
        else:
            amount = int(line["amount"])
            quantity = None
            if not 0 < amount <= source["amount"] - credited_before:
                raise InvalidRequestError(
                    f"The amount credited for invoice line item {line_id} ({amount}) must be greater than 0 and at "
                    f"most what is left of it to credit ({source['amount'] - credited_before}).",
                    param=f"{prefix}[amount]",
                )
        credited_taxes = self._taxes_credited(invoice["id"], line_id)
        line_taxes = self._credit_tax_amounts(invoice, line, prefix, source, credited_taxes)
        if line_taxes is None:
            line_taxes = []
            for tax in source["taxes"] or []:
                # In proportion to all that is credited of the line by now, less the tax credited before.
                rate_id = (tax["tax_rate_details"] or {}).get("tax_rate")
                tax_before, taxable_before = credited_taxes.get(rate_id, (0, 0))
                taxable = tax["taxable_amount"]
                line_taxes.append(
                    dict(
                        tax,
                        amount=min(
                            max(_share(tax["amount"], credited_before + amount, source["amount"]) - tax_before, 0),
                            tax["amount"] - tax_before,
                        ),
                        taxable_amount=None
                        if taxable is None
                        else _share(taxable, credited_before + amount, source["amount"]) - taxable_before,
                        tax_rate_details=dict(tax["tax_rate_details"]),
                    )
                )
        rate_ids = [t["tax_rate_details"]["tax_rate"] for t in line_taxes if t["tax_rate_details"]]
        return build.build_credit_note_line(
            "invoice_line_item",
            amount,
            description=source["description"],
            quantity=quantity if quantity is not None else 1,
            unit_amount=amount // quantity if quantity else amount,
            invoice_line_item=line_id,
            tax_rates=rate_ids,
            taxes=line_taxes,
            metadata=line.get("metadata"),
        )

    def _taxes_credited(self, invoice_id: str, line_id: str) -> dict[str | None, tuple[int, int]]:
        """Per tax rate, the tax and taxable amount the issued credit notes took back of one invoice line."""
        credited: dict[str | None, tuple[int, int]] = {}
        for note in self._objects["credit_note"].values():
            if note["invoice"] != invoice_id or note["status"] != "issued":
                continue
            for line in note["lines"]["data"]:
                if line["invoice_line_item"] != line_id:
                    continue
                for tax in line["taxes"] or []:
                    rate_id = (tax["tax_rate_details"] or {}).get("tax_rate")
                    amount, taxable = credited.get(rate_id, (0, 0))
                    credited[rate_id] = (amount + tax["amount"], taxable + (tax["taxable_amount"] or 0))
        return credited

    def _credit_tax_amounts(
        self,
        invoice: dict[str, Any],
        line: dict[str, Any],
        prefix: str,
        source: dict[str, Any] | None,
        credited: dict[str | None, tuple[int, int]] | None = None,
    ) -> list[dict[str, Any]] | None:
        """The line's ``tax_amounts`` as its taxes, refused as Stripe refuses them; None when none are given.

        ``source`` is the credited invoice line (None for a custom line), ``credited`` what credit notes
        took back of its taxes so far.
        """
        given = line.get("tax_amounts")
        if not given:
            return None
        param = f"{prefix}[tax_amounts]"
        if invoice["automatic_tax"]["enabled"]:
            raise InvalidRequestError(
                f"{param} is not valid when the invoice is set up with automatic_tax[enabled]=true.", param=param
            )
        if len(given) > taxes.MAX_TAX_AMOUNTS:
            raise ParameterError(
                f"You can set at most {taxes.MAX_TAX_AMOUNTS} tax amounts; {param} has {len(given)}.", param=param
            )
        on_line = (
            {(tax["tax_rate_details"] or {}).get("tax_rate"): tax for tax in (source["taxes"] or [])}
            if source is not None
            else {}
        )
        entries: list[dict[str, Any]] = []
        for index, tax_amount in enumerate(given):
            where = f"{param}[{index}]"
            for name in ("amount", "tax_rate", "taxable_amount"):
                if tax_amount.get(name) in (None, ""):
                    raise ParameterError(
                        f"Missing required param: {where}[{name}].", code="parameter_missing", param=f"{where}[{name}]"
                    )
            amount, taxable, rate_id = (
                int(tax_amount["amount"]),
                int(tax_amount["taxable_amount"]),
                tax_amount["tax_rate"],
            )
            if amount < 0 or taxable < 0:
                raise InvalidRequestError(f"{where}: amount and taxable_amount must be 0 or greater.", param=where)
            rate = self._objects["tax_rate"].get(rate_id)
            if rate is None:
                raise ResourceMissingError("tax rate", rate_id, f"{where}[tax_rate]", status=400)
            if rate_id not in self._stripe_made_rates:
                raise InvalidRequestError(
                    f"The tax rate {rate_id} was not created automatically by Stripe: a credit note's tax amounts "
                    "must use the tax rates Stripe created for the invoice's tax amounts.",
                    param=f"{where}[tax_rate]",
                )
            if any(entry["tax_rate_details"]["tax_rate"] == rate_id for entry in entries):
                raise InvalidRequestError(
                    f"The tax rate {rate_id} is given more than once.", param=f"{where}[tax_rate]"
                )
            reason = taxes.NOT_AVAILABLE
            if source is not None:
                charged = on_line.get(rate_id)
                if charged is None:
                    raise InvalidRequestError(
                        f"Invoice line item {source['id']} has no tax of the tax rate {rate_id}.",
                        param=f"{where}[tax_rate]",
                    )
                left = charged["amount"] - (credited or {}).get(rate_id, (0, 0))[0]
                if amount > left:
                    raise InvalidRequestError(
                        f"The tax amount credited for invoice line item {source['id']} at the tax rate {rate_id} "
                        f"({amount}) must be at most what is left of its tax to credit ({left}).",
                        param=f"{where}[amount]",
                    )
                reason = charged["taxability_reason"]
            entries.append(taxes.entry(amount, rate_id, rate["inclusive"], taxable, reason))
        return entries

    def _line_page(self, lines: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
        limit = list_limit(params)
        start = 0
        if params.get("starting_after"):
            ids = [line["id"] for line in lines]
            if params["starting_after"] not in ids:
                raise ResourceMissingError("credit note line item", params["starting_after"], "starting_after")
            start = ids.index(params["starting_after"]) + 1
        rest = lines[start:]
        page = [self._render_line(line) for line in rest[:limit]]
        return build.list_object(url, page, len(rest) > limit)

    def _render_line(self, line: dict[str, Any]) -> dict[str, Any]:
        rendered = copy.deepcopy(line)
        rendered["tax_rates"] = [copy.deepcopy(self._objects["tax_rate"][r]) for r in line["tax_rates"]]
        return rendered

    # --- the effect of an issued credit note -----------------------------------------------------

    def _apply_credit_note(self, invoice: dict[str, Any], note: dict[str, Any], ctx: RequestContext) -> None:
        settle = note.pop("_settle")
        before = copy.deepcopy(invoice)
        pre, post = note["pre_payment_amount"], note["post_payment_amount"]
        invoice["pre_payment_credit_notes_amount"] += pre
        invoice["post_payment_credit_notes_amount"] += post
        invoice["amount_due"] -= pre
        invoice["amount_remaining"] -= pre
        customer = self._objects["customer"].get(invoice["customer"])
        if settle["refund"]:
            reason = REFUND_REASONS.get(note["reason"] or "", "requested_by_customer")
            refund = self._add(
                build.build_refund(self._now(), settle["refund"], note["currency"], invoice["customer"], reason)
            )
            note["refunds"] = [
                {
                    "amount_refunded": settle["refund"],
                    "payment_record_refund": None,
                    "refund": refund["id"],
                    "type": "refund",
                }
            ]
            self._emit("refund.created", refund, ctx)
        if settle["credit"] and customer is not None:
            transaction = self._balance_transaction(
                customer,
                -settle["credit"],
                "credit_note",
                note["currency"],
                ctx,
                invoice=invoice["id"],
                credit_note=note["id"],
            )
            note["customer_balance_transaction"] = transaction["id"]
        self._emit("credit_note.created", note, ctx)
        if invoice["status"] == "open" and invoice["amount_remaining"] == 0:
            # Nothing left to pay: the invoice is settled by its credit notes, without a payment.
            invoice.update(status="paid", next_payment_attempt=None)
            invoice["status_transitions"]["paid_at"] = self._now()
            self._charge_tokens.pop(invoice["id"], None)
            self._emit("invoice.paid", invoice, ctx, build.previous_attributes(before, invoice))
        else:
            self._emit_changes("invoice.updated", invoice, before, ctx)


def _share(amount: int, part: int, whole: int) -> int:
    """``amount * part / whole``, rounded half away from zero."""
    if whole == 0:
        return 0
    return taxes.round_half_up(Decimal(amount) * part / whole)
