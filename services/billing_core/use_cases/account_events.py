"""Account events: the saved payment method and the customer's data, kept in step with Stripe.

Each write is a compare-and-set on one field of the account, so a late or repeated event never
replaces what a newer one recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from billing_core.domain.lifecycle import RETRYING
from billing_core.domain.records import Account, AccountChanges, SavedPaymentMethod, SetupFailure
from billing_core.errors import ConditionFailed, NotFound, UpdateConflict
from billing_core.ports import (
    AccountRepository,
    FieldIs,
    StripeCustomer,
    StripeEvent,
    StripePaymentMethod,
    StripeSetupIntent,
)
from billing_core.use_cases.event_support import (
    WRITE_ATTEMPTS,
    EventHandler,
    EventOutcome,
    EventPorts,
    names_unknown_account,
    object_of,
)
from billing_core.use_cases.payment_retry import NothingToPay, pay_again

log = logging.getLogger(__name__)


def _setup_intent_succeeded(intent: StripeSetupIntent, event_ms: int, ports: EventPorts) -> EventOutcome:
    """Make the set-up payment method the customer's default in Stripe, then store it with its display fields."""
    payment_method_id, customer_id = intent.payment_method_id, intent.customer_id
    account = find_account(customer_id, intent.metadata, ports.accounts)
    if account is None or not payment_method_id or not customer_id:
        return _unknown_customer(
            intent.metadata, ports, "setup intent of an unknown customer", {"setupIntentId": intent.id}
        )
    if (account.payment_method_changed_at or 0) > event_ms:
        return EventOutcome.UNCHANGED  # a later payment method change is already recorded
    ports.payments.set_default_payment_method(
        customer_id=customer_id,
        payment_method_id=payment_method_id,
        idempotency_key=f"default-payment-method:{intent.id}",
    )
    payment_method = ports.payments.retrieve_payment_method(payment_method_id)
    outcome = _store_payment_method(account, saved_payment_method(payment_method), event_ms, ports)
    if ports.retry_failed_on_new_payment_method:
        retry_failed_invoices(account.account_id, ports)
    return outcome


def retry_failed_invoices(account_id: str, ports: EventPorts) -> None:
    """Pay the account's failed and action-required invoices again with its new default payment method.

    Keyed per Stripe attempt (``pay_again``), so a repeated ``setup_intent.succeeded`` charges nothing
    twice; the outcome reaches the records through Stripe's invoice events, as any payment's does.
    """
    cursor: str | None = None
    while True:
        page = ports.invoices.list_for_account(account_id, limit=100, cursor=cursor)
        for invoice in page.items:
            if invoice.status not in RETRYING or invoice.stripe.invoice_id is None:
                continue
            try:
                attempt = pay_again(ports.payments, invoice, purpose="new-payment-method")
            except NothingToPay:
                continue
            log.info(
                "failed invoice paid again with the new payment method",
                extra={
                    "invoiceId": invoice.invoice_id,
                    "stripeStatus": attempt.stripe_status,
                    "declined": attempt.declined,
                },
            )
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _setup_intent_failed(intent: StripeSetupIntent, event_ms: int, ports: EventPorts) -> EventOutcome:
    """Record why setting up a payment method failed (codes only: messages may echo customer input)."""
    account = find_account(intent.customer_id, intent.metadata, ports.accounts)
    if account is None:
        return _unknown_customer(
            intent.metadata, ports, "setup intent of an unknown customer", {"setupIntentId": intent.id}
        )
    if (account.setup_failed_at or 0) >= event_ms:
        return EventOutcome.UNCHANGED
    error = intent.last_setup_error
    failure = SetupFailure(
        setup_intent_id=intent.id,
        code=(error.code if error else None) or "unknown",
        decline_code=error.decline_code if error else None,
    )
    return _write_account(
        account,
        ports,
        lambda current: (
            None
            if (current.setup_failed_at or 0) >= event_ms
            else {"last_setup_error": failure, "setup_failed_at": event_ms, "updated_at": ports.now_ms()}
        ),
        guard="setup_failed_at",
    )


def _payment_method_detached(
    payment_method: StripePaymentMethod, previous_customer_id: str | None, event_ms: int, ports: EventPorts
) -> EventOutcome:
    """Forget the account's default payment method if it is the one detached."""
    account = find_account(previous_customer_id, None, ports.accounts)
    if account is None:
        log.info(
            "payment method of an unknown customer detached; acknowledged", extra={"paymentMethodId": payment_method.id}
        )
        return EventOutcome.UNKNOWN

    def change(current: Account) -> AccountChanges | None:
        if current.payment_method is None or current.payment_method.id != payment_method.id:
            return None
        changed_at = max(event_ms, current.payment_method_changed_at or 0)
        return {"payment_method": None, "payment_method_changed_at": changed_at, "updated_at": ports.now_ms()}

    return _write_account(account, ports, change, guard="payment_method")


def _customer_updated(customer: StripeCustomer, event_ms: int, ports: EventPorts) -> EventOutcome:
    """Sync the customer's email and default payment method onto the account."""
    account = find_account(customer.id, customer.metadata, ports.accounts)
    if account is None:
        return _unknown_customer(
            customer.metadata, ports, "unknown customer updated", {"stripeCustomerId": customer.id}
        )
    default_id = customer.default_payment_method_id
    payment_method = None
    if default_id and default_id != _default_id(account) and (account.payment_method_changed_at or 0) <= event_ms:
        payment_method = ports.payments.retrieve_payment_method(default_id)

    def change(current: Account) -> AccountChanges | None:
        changes: AccountChanges = {}
        if (current.customer_synced_at or 0) <= event_ms:
            email = customer.email
            if email and email != current.email:
                changes["email"] = email
                changes["customer_synced_at"] = event_ms
        newer = (current.payment_method_changed_at or 0) <= event_ms
        if newer and default_id != _default_id(current):
            if default_id is None:
                changes["payment_method"] = None
                changes["payment_method_changed_at"] = event_ms
            elif payment_method is not None and payment_method.id == default_id:
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


def saved_payment_method(payment_method: StripePaymentMethod) -> SavedPaymentMethod:
    """The display fields of a Stripe payment method (brand and last four only, never more)."""
    return SavedPaymentMethod(
        id=payment_method.id, type=payment_method.type, brand=payment_method.brand, last4=payment_method.last4
    )


def find_account(
    customer_id: str | None, metadata: Mapping[str, str] | None, accounts: AccountRepository
) -> Account | None:
    """The account of a Stripe customer: through the customer index, else the ``userId`` in the metadata."""
    if not customer_id:
        return None
    account = accounts.find_by_stripe_customer_id(customer_id)
    if account is None and metadata and metadata.get("userId"):
        candidate = accounts.get(metadata["userId"])
        if candidate is not None and candidate.stripe_customer_id == customer_id:
            account = candidate
    return account


def _unknown_customer(
    metadata: Mapping[str, str], ports: EventPorts, what: str, context: dict[str, str]
) -> EventOutcome:
    """UNKNOWN_ACCOUNT if the object names an account of this system that does not exist, else UNKNOWN.

    A customer without this system's ``userId`` (or naming an account that has another customer) is
    someone else's: acknowledged. One naming a missing account is this system's and must not be lost.
    """
    if names_unknown_account(metadata, ports.accounts):
        log.warning(
            "%s names an account billing does not have; not applied yet",
            what,
            extra={**context, "userId": metadata.get("userId")},
        )
        return EventOutcome.UNKNOWN_ACCOUNT
    log.info("%s; acknowledged", what, extra=context)
    return EventOutcome.UNKNOWN


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


def _on_setup_intent_succeeded(event: StripeEvent, ports: EventPorts) -> EventOutcome:
    return _setup_intent_succeeded(object_of(event, StripeSetupIntent), event.created_ms, ports)


def _on_setup_intent_failed(event: StripeEvent, ports: EventPorts) -> EventOutcome:
    return _setup_intent_failed(object_of(event, StripeSetupIntent), event.created_ms, ports)


def _on_payment_method_detached(event: StripeEvent, ports: EventPorts) -> EventOutcome:
    payment_method = object_of(event, StripePaymentMethod)
    return _payment_method_detached(payment_method, event.previous_customer_id, event.created_ms, ports)


def _on_customer_updated(event: StripeEvent, ports: EventPorts) -> EventOutcome:
    return _customer_updated(object_of(event, StripeCustomer), event.created_ms, ports)


ACCOUNT_HANDLERS: dict[str, EventHandler] = {
    "setup_intent.succeeded": _on_setup_intent_succeeded,
    "setup_intent.setup_failed": _on_setup_intent_failed,
    "payment_method.detached": _on_payment_method_detached,
    "customer.updated": _on_customer_updated,
}
