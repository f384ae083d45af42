"""Collecting an invoice: automatic charges with retries, a synchronous pay, SEPA debits that settle later."""

from __future__ import annotations

import copy
import math
from typing import Any

from stripe_emulator import instruments
from stripe_emulator import objects as build
from stripe_emulator.errors import CardError, InvalidRequestError
from stripe_emulator.store.core import BACKGROUND, DECLINED, RequestContext, StoreCore

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


class Payments(StoreCore):
    """Payment attempts on open invoices; no API route of its own (Stripe's PaymentIntents are left out)."""

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
            if (
                invoice is None
                or invoice["status"] != "open"
                or not invoice["auto_advance"]
                or invoice_id in self._processing
            ):
                return
            self._attempt_payment(invoice, BACKGROUND, None, synchronous=False)

    def _payment_method_for(self, invoice: dict[str, Any]) -> dict[str, Any] | None:
        customer = self._objects["customer"].get(invoice["customer"]) or {"invoice_settings": {}}
        pm_id = invoice["default_payment_method"] or customer["invoice_settings"].get("default_payment_method")
        return self._objects["payment_method"].get(pm_id) if pm_id else None

    def _attempt_payment(
        self, invoice: dict[str, Any], ctx: RequestContext, pm: dict[str, Any] | None, synchronous: bool
    ) -> None:
        pm = pm or self._payment_method_for(invoice)
        if pm is None and synchronous:
            raise InvalidRequestError(NO_PAYMENT_METHOD)
        before = copy.deepcopy(invoice)
        invoice["attempted"] = True
        invoice["attempt_count"] += 1
        if pm is None:
            self._payment_failed(invoice, before, ctx)
            return
        behaviour = instruments.behaviour_of(pm, self._instrument_secrets.get(pm["id"], ""))
        if behaviour.charge == "succeeds":
            self._mark_paid(invoice, ctx, before)
        elif behaviour.charge == "declines":
            self._payment_failed(invoice, before, ctx)
            if synchronous:
                raise CardError(
                    DECLINED,
                    code="card_declined",
                    decline_code=behaviour.decline_code,
                    payment_method=self._render_plain(pm),
                )
        elif behaviour.charge == "requires_action":
            invoice["next_payment_attempt"] = None
            self._charge_tokens.pop(invoice["id"], None)
            self._emit("invoice.payment_action_required", invoice, ctx, build.previous_attributes(before, invoice))
            if synchronous:
                raise CardError(
                    REQUIRES_ACTION,
                    code="invoice_payment_intent_requires_action",
                    payment_method=self._render_plain(pm),
                )
        else:  # SEPA debit: processing now, settled later
            invoice["next_payment_attempt"] = None
            self._processing.add(invoice["id"])
            succeeds = behaviour.charge == "processing_then_succeeds"
            generation = self._generation
            self._scheduler.call_later(
                self._config.sepa_settle_delay, lambda: self._settle_debit(invoice["id"], generation, succeeds)
            )

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
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0, next_payment_attempt=None)
        invoice["status_transitions"]["paid_at"] = self._now()
        self._charge_tokens.pop(invoice["id"], None)
        previous = build.previous_attributes(before, invoice)
        self._emit("invoice.payment_succeeded", invoice, ctx, previous)
        self._emit("invoice.paid", invoice, ctx, previous)
