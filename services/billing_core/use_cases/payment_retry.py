"""Paying an open invoice again, once per Stripe attempt: the operator's retry, the admin's "pay now",
and the retry after a customer saved a new payment method all go through here.

The idempotency key names Stripe's own attempt count, read just before: a repeated request after a
crash replays the same attempt instead of charging twice, and the next real attempt gets a new key.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing_core.domain.records import Invoice
from billing_core.errors import BillingError, PaymentActionRequired, PaymentDeclined
from billing_core.ports import PaymentGateway


class NothingToPay(BillingError):
    """Stripe has the invoice in a state that cannot be paid (paid, void, draft)."""


@dataclass(frozen=True)
class PaymentAttempt:
    """What Stripe answered to paying an invoice again."""

    stripe_status: str  # "paid", "open", ... as Stripe reports the invoice after the attempt
    declined: str | None = None  # the decline code, if the payment method was declined
    action_url: str | None = None  # the hosted invoice page, if the customer must authenticate (SCA)

    @property
    def paid(self) -> bool:
        """Whether Stripe reports the invoice paid."""
        return self.stripe_status == "paid"


def pay_again(payments: PaymentGateway, invoice: Invoice, *, purpose: str = "retry") -> PaymentAttempt:
    """Pay the invoice's Stripe invoice now with the customer's current default payment method."""
    if invoice.stripe.invoice_id is None:
        raise NothingToPay(f"{invoice.invoice_id} has no Stripe invoice yet")
    current = payments.retrieve_invoice(invoice.stripe.invoice_id)
    if current.status != "open":
        raise NothingToPay(f"{invoice.invoice_id} is {current.status} at Stripe: nothing to pay")
    key = f"{invoice.invoice_id}:{purpose}:{current.attempt_count or 0}"
    try:
        paid = payments.pay_invoice(invoice.stripe.invoice_id, idempotency_key=key)
    except PaymentActionRequired:
        return PaymentAttempt(
            "open",
            declined="authentication_required",
            action_url=current.hosted_invoice_url or invoice.stripe.hosted_invoice_url,
        )
    except PaymentDeclined as declined:
        return PaymentAttempt("open", declined=declined.decline_code or declined.code or "declined")
    return PaymentAttempt(paid.status or "unknown")
