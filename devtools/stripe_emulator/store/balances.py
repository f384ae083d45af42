"""The customer's invoice balance: a ledger of customer balance transactions, applied to the next invoice.

Stripe's rules (https://docs.stripe.com/billing/customer/balance): a negative balance is a credit, a
positive one a debit; "The invoice balance automatically applies toward the next invoice finalized to
a customer"; every change is a ``CustomerBalanceTransaction`` whose ``type`` says why (the SDK's enum:
``applied_to_invoice``, ``credit_note``, ``invoice_too_small``, ``unapplied_from_invoice``, ``adjustment`` ...).
"""

from __future__ import annotations

import copy
from typing import Any

from stripe_emulator import objects as build
from stripe_emulator.errors import ResourceMissingError
from stripe_emulator.store.core import RequestContext, StoreCore

# Stripe's minimum charge amounts in minor units (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts):
# "The minimum amount is $0.50 US or equivalent in charge currency"; 0.50 EUR for the euro. Currencies
# not listed here have no minimum in the emulator.
MINIMUM_CHARGE = {"eur": 50, "usd": 50}


class Balances(StoreCore):
    """Customer balance transactions, and the customer's ``balance`` they add up to."""

    def _balance_transaction(
        self,
        customer: dict[str, Any],
        amount: int,
        kind: str,
        currency: str,
        ctx: RequestContext,
        *,
        invoice: str | None = None,
        credit_note: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Record ``amount`` (negative: a credit) on the customer's balance; ``customer.updated`` says so."""
        before = copy.deepcopy(customer)
        customer["balance"] += amount
        if customer["currency"] is None:
            customer["currency"] = currency
        transaction = self._add(
            build.build_balance_transaction(
                self._now(),
                customer,
                amount,
                kind,
                currency,
                invoice=invoice,
                credit_note=credit_note,
                description=description,
            )
        )
        self._emit_changes("customer.updated", customer, before, ctx)
        self._customer_changed(customer, ctx)  # drafts show the balance they will apply
        return transaction

    def list_balance_transactions(self, customer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/customers/{id}/balance_transactions, optionally of one invoice."""
        with self._lock:
            self._get("customer", customer_id, "customer")
            items = [
                t
                for t in self._objects["customer_balance_transaction"].values()
                if t["customer"] == customer_id and (not params.get("invoice") or t["invoice"] == params["invoice"])
            ]
            return self._page(items, params, f"/v1/customers/{customer_id}/balance_transactions")

    def retrieve_balance_transaction(self, customer_id: str, transaction_id: str) -> dict[str, Any]:
        """GET /v1/customers/{id}/balance_transactions/{transaction}."""
        with self._lock:
            self._get("customer", customer_id, "customer")
            transaction = self._get("customer_balance_transaction", transaction_id)
            if transaction["customer"] != customer_id:
                raise ResourceMissingError("customer balance transaction", transaction_id)
            return transaction
