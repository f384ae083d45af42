"""How a stored account (an item of the ``payment-methods`` table) becomes the planning ``Account``."""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from billing_core.domain.invoice_plan import Account


def account_from_item(item: Mapping[str, Any] | None, user_id: str | None = None) -> Account:
    """The planning view of an account item; no item (a new account) bills the whole payer account.

    ``costScope`` is a linked account id or a cost-allocation tag value; absent or empty means the
    whole payer account. ``baseFeeOverride`` replaces the default base fee when set.
    """
    item = item or {}
    scope = item.get("costScope")
    override = item.get("baseFeeOverride")
    return Account(
        user_id=user_id or item["userId"],
        cost_scope=scope if isinstance(scope, str) and scope else None,
        base_fee_override=override if isinstance(override, Decimal) else None,
    )
