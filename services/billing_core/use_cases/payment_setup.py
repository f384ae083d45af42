"""Start saving a payment method: get-or-create the account's Stripe customer, then a SetupIntent.

Exactly one Stripe customer per account, even when many requests arrive at once:

    request A: account has no customer           request B: account has no customer
    A: create customer, key customer:<userId>    B: create customer, same key -> Stripe replays A's
    A: conditional write (no customer yet) wins  B: conditional write refused -> read A's customer

The idempotency key makes the racing Stripe calls one customer; the conditional write makes the
account item record one customer id. If the key has expired at Stripe (24 h) and an earlier
request crashed between the two steps, the conditional write still decides which id is used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from billing_core.domain.records import AccountChanges
from billing_core.errors import InvalidStripeObject
from billing_core.ports import AccountRepository, PaymentGateway, SecretsProvider

log = logging.getLogger(__name__)

PAYMENT_METHOD_TYPES = ("card", "sepa_debit")


@dataclass(frozen=True)
class PaymentSetup:
    """What the page needs to mount Stripe's Payment Element for this SetupIntent."""

    client_secret: str = field(repr=False)
    publishable_key: str = field(repr=False)
    customer_id: str
    setup_intent_id: str


def customer_idempotency_key(account_id: str) -> str:
    """The one idempotency key under which the account's Stripe customer is created."""
    return f"customer:{account_id}"


def ensure_customer(
    account_id: str,
    *,
    accounts: AccountRepository,
    payments: PaymentGateway,
    email: str | Callable[[], str | None] | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """The account's Stripe customer id, creating the customer (once) if the account has none.

    ``email`` may be a function, asked only when a customer is created (it may call Cognito).
    """
    account = accounts.get(account_id)
    if account and account.stripe_customer_id:
        return account.stripe_customer_id
    if callable(email):
        email = email()
    customer = payments.create_customer(
        account_id=account_id, idempotency_key=customer_idempotency_key(account_id), email=email
    )
    changes: AccountChanges = {"updated_at": int(clock() * 1000)}
    if email:
        changes["email"] = email
    created_id = customer.id
    if accounts.set_stripe_customer_id_if_absent(account_id, created_id, changes):
        log.info("Stripe customer recorded", extra={"userId": account_id, "stripeCustomerId": created_id})
        return created_id
    stored = accounts.get(account_id)
    winner = stored.stripe_customer_id if stored else None
    if not winner:
        raise RuntimeError("conditional write refused but the account has no Stripe customer")
    if winner != created_id:
        # Only possible after the idempotency key expired: the other customer stays unused.
        log.warning(
            "a second Stripe customer was created and is not used",
            extra={"userId": account_id, "stripeCustomerId": winner, "unusedCustomerId": created_id},
        )
    return winner


def start_payment_setup(
    account_id: str,
    *,
    request_key: str,
    accounts: AccountRepository,
    payments: PaymentGateway,
    secrets: SecretsProvider,
    email: str | Callable[[], str | None] | None = None,
    clock: Callable[[], float] = time.time,
) -> PaymentSetup:
    """A SetupIntent (card and SEPA debit, off-session) on the account's one Stripe customer.

    ``request_key`` identifies this request (each click gets its own SetupIntent; SDK retries of
    the same request reuse the key).
    """
    customer_id = ensure_customer(account_id, accounts=accounts, payments=payments, email=email, clock=clock)
    intent = payments.create_setup_intent(
        customer_id=customer_id,
        idempotency_key=f"setup-intent:{account_id}:{request_key}",
        payment_method_types=PAYMENT_METHOD_TYPES,
        metadata={"userId": account_id},
    )
    if intent.client_secret is None:
        raise InvalidStripeObject(f"SetupIntent {intent.id} came without its client secret")
    return PaymentSetup(
        client_secret=intent.client_secret,
        publishable_key=secrets.get().publishable_key,
        customer_id=customer_id,
        setup_intent_id=intent.id,
    )
