"""Account events: the saved payment method and the customer's data, kept in step with Stripe.

Each write is a compare-and-set on one field of the account, so a late or repeated event never
replaces what a newer one recorded.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from billing_core.domain.records import Account, AccountChanges, SavedPaymentMethod, SetupFailure
from billing_core.errors import ConditionFailed, NotFound, UpdateConflict
from billing_core.ports import AccountRepository, FieldIs, StripeObject
from billing_core.use_cases.event_support import (
    WRITE_ATTEMPTS,
    EventHandler,
    EventOutcome,
    EventPorts,
    stripe_id,
    text,
)

log = logging.getLogger(__name__)


def _setup_intent_succeeded(intent: StripeObject, event_ms: int, ports: EventPorts) -> EventOutcome:
    """Make the set-up payment method the customer's default in Stripe, then store it with its display fields."""
    payment_method_id = stripe_id(intent.get("payment_method"))
    customer_id = stripe_id(intent.get("customer"))
    account = find_account(customer_id, intent.get("metadata"), ports.accounts)
    if account is None or not payment_method_id or not customer_id:
        log.info("setup intent of an unknown customer; acknowledged", extra={"setupIntentId": intent.get("id")})
        return EventOutcome.UNKNOWN
    if (account.payment_method_changed_at or 0) > event_ms:
        return EventOutcome.UNCHANGED  # a later payment method change is already recorded
    ports.payments.set_default_payment_method(
        customer_id=customer_id,
        payment_method_id=payment_method_id,
        idempotency_key=f"default-payment-method:{intent['id']}",
    )
    payment_method = ports.payments.retrieve_payment_method(payment_method_id)
    return _store_payment_method(account, saved_payment_method(payment_method), event_ms, ports)


def _setup_intent_failed(intent: StripeObject, event_ms: int, ports: EventPorts) -> EventOutcome:
    """Record why setting up a payment method failed (codes only: messages may echo customer input)."""
    account = find_account(stripe_id(intent.get("customer")), intent.get("metadata"), ports.accounts)
    if account is None:
        log.info("setup intent of an unknown customer; acknowledged", extra={"setupIntentId": intent.get("id")})
        return EventOutcome.UNKNOWN
    if (account.setup_failed_at or 0) >= event_ms:
        return EventOutcome.UNCHANGED
    error = intent.get("last_setup_error") or {}
    failure = SetupFailure(
        setup_intent_id=str(intent["id"]), code=text(error.get("code")) or "unknown",
        decline_code=text(error.get("decline_code")),
    )
    return _write_account(
        account, ports,
        lambda current: None if (current.setup_failed_at or 0) >= event_ms else {
            "last_setup_error": failure, "setup_failed_at": event_ms, "updated_at": ports.now_ms()
        },
        guard="setup_failed_at",
    )


def _payment_method_detached(
    payment_method: StripeObject, previous_customer: Any, event_ms: int, ports: EventPorts
) -> EventOutcome:
    """Forget the account's default payment method if it is the one detached."""
    account = find_account(stripe_id(previous_customer), None, ports.accounts)
    if account is None:
        log.info("payment method of an unknown customer detached; acknowledged",
                 extra={"paymentMethodId": payment_method.get("id")})
        return EventOutcome.UNKNOWN

    def change(current: Account) -> AccountChanges | None:
        if current.payment_method is None or current.payment_method.id != payment_method["id"]:
            return None
        changed_at = max(event_ms, current.payment_method_changed_at or 0)
        return {"payment_method": None, "payment_method_changed_at": changed_at, "updated_at": ports.now_ms()}

    return _write_account(account, ports, change, guard="payment_method")


def _customer_updated(customer: StripeObject, event_ms: int, ports: EventPorts) -> EventOutcome:
    """Sync the customer's email and default payment method onto the account."""
    account = find_account(customer.get("id"), customer.get("metadata"), ports.accounts)
    if account is None:
        log.info("unknown customer updated; acknowledged", extra={"stripeCustomerId": customer.get("id")})
        return EventOutcome.UNKNOWN
    default_id = stripe_id((customer.get("invoice_settings") or {}).get("default_payment_method"))
    payment_method = None
    if (
        default_id
        and default_id != _default_id(account)
        and (account.payment_method_changed_at or 0) <= event_ms
    ):
        payment_method = ports.payments.retrieve_payment_method(default_id)

    def change(current: Account) -> AccountChanges | None:
        changes: AccountChanges = {}
        if (current.customer_synced_at or 0) <= event_ms:
            email = text(customer.get("email"))
            if email and email != current.email:
                changes["email"] = email
                changes["customer_synced_at"] = event_ms
        newer = (current.payment_method_changed_at or 0) <= event_ms
        if newer and default_id != _default_id(current):
            if default_id is None:
                changes["payment_method"] = None
                changes["payment_method_changed_at"] = event_ms
            elif payment_method is not None and payment_method.get("id") == default_id:
                changes["payment_method"] = saved_payment_method(payment_method)
                changes["payment_method_changed_at"] = event_ms
        if not changes:
            return None
        changes["updated_at"] = ports.now_ms()
        return changes

    return _write_account(account, ports, change, guard="updated_at")


def _store_payment_method(
    account: Account, method: SavedPaymentMethod, event_ms: int, ports: EventPorts
) -> EventOutcome:
    def change(current: Account) -> AccountChanges | None:
        if (current.payment_method_changed_at or 0) > event_ms or current.payment_method == method:
            return None
        return {"payment_method": method, "payment_method_changed_at": event_ms, "updated_at": ports.now_ms()}

    return _write_account(account, ports, change, guard="payment_method_changed_at")


def saved_payment_method(payment_method: StripeObject) -> SavedPaymentMethod:
    """The display fields of a Stripe payment method (brand and last four only, never more)."""
    kind = payment_method.get("type")
    details = (payment_method.get(kind) or {}) if isinstance(kind, str) else {}
    return SavedPaymentMethod(
        id=str(payment_method["id"]),
        type=kind if isinstance(kind, str) and kind else "unknown",
        brand=text(details.get("brand")),
        last4=text(details.get("last4")),
    )


def find_account(
    customer_id: str | None, metadata: Mapping[str, Any] | None, accounts: AccountRepository
) -> Account | None:
    """The account of a Stripe customer: through the customer index, else the ``userId`` in the metadata."""
    if not customer_id:
        return None
    account = accounts.find_by_stripe_customer_id(customer_id)
    if account is None and metadata and metadata.get("userId"):
        candidate = accounts.get(str(metadata["userId"]))
        if candidate is not None and candidate.stripe_customer_id == customer_id:
            account = candidate
    return account


def _default_id(account: Account) -> str | None:
    return account.payment_method.id if account.payment_method else None


def _write_account(
    account: Account,
    ports: EventPorts,
    change: Callable[[Account], AccountChanges | None],
    *,
    guard: str,
) -> EventOutcome:
    """Compare-and-set on the account: the write holds only if the field ``guard`` is still what was read."""
    current = account
    for _ in range(WRITE_ATTEMPTS):
        changes = change(current)
        if not changes:
            return EventOutcome.UNCHANGED
        value = getattr(current, guard)
        condition = FieldIs.one_of(guard, value) if value is not None else FieldIs.absent(guard)
        try:
            ports.accounts.update(current.account_id, changes, conditions=[condition])
        except ConditionFailed as refused:
            if refused.current is None:
                return EventOutcome.UNKNOWN
            current = refused.current
            continue
        except NotFound:
            return EventOutcome.UNKNOWN
        return EventOutcome.APPLIED
    raise UpdateConflict(f"account {account.account_id} kept changing while an event was applied")


ACCOUNT_HANDLERS: dict[str, EventHandler] = {
    "setup_intent.succeeded": lambda event, ports: _setup_intent_succeeded(event.object, event.created_ms, ports),
    "setup_intent.setup_failed": lambda event, ports: _setup_intent_failed(event.object, event.created_ms, ports),
    "payment_method.detached": lambda event, ports: _payment_method_detached(
        event.object, event.previous_attributes.get("customer"), event.created_ms, ports),
    "customer.updated": lambda event, ports: _customer_updated(event.object, event.created_ms, ports),
}
