"""Paying an open invoice again, once per Stripe attempt: the operator's retry, the admin's "pay now",
and the retry after a customer saved a new payment method all go through here.

The idempotency key names Stripe's own attempt count, read just before: a repeated request after a
crash replays the same attempt instead of charging twice, and the next real attempt gets a new key.

Racing payments are charged once by Stripe, which pays an open invoice once: requests of one purpose
that read the same attempt share a key (Stripe answers the later ones with the first one's answer);
one of another purpose, or one that read the invoice open just before the winner paid it, is refused
with "Invoice is already paid" (``InvoiceAlreadyPaid``), which is ``AlreadyPaid`` here. A customer
without a payment method is a decline: ``declined`` is ``no_payment_method``, and nothing was charged.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing_core.domain.records import Invoice
from billing_core.errors import (
    BillingError,
    InvoiceAlreadyPaid,
    PaymentActionRequired,
    PaymentDeclined,
    PaymentMethodMissing,
)
from billing_core.ports import PaymentGateway

# ``PaymentAttempt.declined`` when the customer has no payment method to charge: they must save one.
NO_PAYMENT_METHOD = "no_payment_method"


class NothingToPay(BillingError):
    """Stripe has the invoice in a state that cannot be paid (paid, void, draft)."""


class AlreadyPaid(NothingToPay):
    """Stripe has the invoice paid, perhaps by a concurrent payment a moment ago."""


@dataclass(frozen=True)
class PaymentAttempt:
    """What Stripe answered to paying an invoice again."""

    stripe_status: str  # "paid", "open", ... as Stripe reports the invoice after the attempt
    declined: str | None = None  # the decline code, if declined; NO_PAYMENT_METHOD if there was none to charge
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
    if current.status == "paid":
        raise AlreadyPaid(f"{invoice.invoice_id} is paid at Stripe: nothing to pay")
    if current.status != "open":
        raise NothingToPay(f"{invoice.invoice_id} is {current.status} at Stripe: nothing to pay")
    key = f"{invoice.invoice_id}:{purpose}:{current.attempt_count or 0}"
    try:
        paid = payments.pay_invoice(invoice.stripe.invoice_id, idempotency_key=key)
    except InvoiceAlreadyPaid:
        raise AlreadyPaid(f"{invoice.invoice_id} was paid at Stripe a moment ago: nothing to pay") from None
    except PaymentMethodMissing:
        return PaymentAttempt("open", declined=NO_PAYMENT_METHOD)
    except PaymentActionRequired:
        return PaymentAttempt(
            "open",
            declined="authentication_required",
            action_url=current.hosted_invoice_url or invoice.stripe.hosted_invoice_url,
        )
    except PaymentDeclined as declined:
        return PaymentAttempt("open", declined=declined.decline_code or declined.code or "declined")
    return PaymentAttempt(paid.status or "unknown")
