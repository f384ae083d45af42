"""How often one caller may make the system write to Stripe: per account (or operator) and action.

Stripe allows about 25 requests a second in test mode and 100 live, for everyone together; one admin
clicking "add a payment method" 200 times in two seconds would push every customer's billing into
Stripe's 429 back-off. Each action that writes to Stripe takes one request from a per-minute budget
of its caller before it starts; past it the caller waits (HTTP 429 with Retry-After).
"""

from __future__ import annotations

import logging

from billing_core.errors import BillingError
from billing_core.ports import RequestLimits

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class RequestLimited(BillingError):
    """The caller made this request too often; ``retry_after`` seconds until it may again."""

    def __init__(self, action: str, retry_after: int) -> None:
        super().__init__(f"{action}: too many requests; try again in {retry_after} s")
        self.action = action
        self.retry_after = retry_after


class StripeWriteBudget:
    """Per-minute budgets: ``per_account`` for a customer's admins (one account), ``per_operator`` for
    each operator. ``limits`` ``None`` (no events table) lets everything through."""

    def __init__(self, limits: RequestLimits | None, *, per_account: int, per_operator: int) -> None:
        self._limits = limits
        self._per_account = per_account
        self._per_operator = per_operator

    def for_account(self, account_id: str, action: str) -> None:
        """Take one request of ``account_id``'s budget for ``action``; ``RequestLimited`` past it."""
        self._take(f"account:{account_id}:{action}", action, self._per_account)

    def for_operator(self, operator_sub: str, action: str) -> None:
        """Take one request of the operator's budget for ``action``; ``RequestLimited`` past it."""
        self._take(f"operator:{operator_sub}:{action}", action, self._per_operator)

    def _take(self, key: str, action: str, limit: int) -> None:
        if self._limits is None:
            return
        wait = self._limits.take(key, limit=limit, window_seconds=WINDOW_SECONDS)
        if wait is not None:
            log.warning("request limit reached", extra={"limitKey": key, "retryAfterSeconds": wait})
            raise RequestLimited(action, wait)
