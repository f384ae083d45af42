"""The project's error types: adapters translate library errors into these, use cases raise them.

Entry points map them to HTTP status codes (or to "retry the message") in one place each.
"""

from __future__ import annotations

from typing import Any


class BillingError(Exception):
    """Base of every error the billing system raises on purpose."""


class SettingsError(BillingError):
    """The process environment is missing or has an invalid setting (a startup error)."""


# --- storage -------------------------------------------------------------------------------------


class NotFound(BillingError):
    """The thing asked for does not exist (a DynamoDB item, a Stripe object)."""


class ConditionFailed(BillingError):
    """A conditional write was refused because the stored item did not meet the condition.

    ``current`` is the stored record (an ``Invoice`` or ``Account``) as it was when the write was
    refused (when known), so the caller can decide whether the refusal means "someone else already
    did it" or "conflict".
    """

    def __init__(self, message: str, current: Any = None) -> None:
        super().__init__(message)
        self.current = current


class InvalidStoredRecord(BillingError):
    """A stored item cannot be read as the record it should be (a wrong type, a malformed value).

    ``table`` and ``key`` name the item, ``field`` the attribute that is wrong; the message says how.
    ``record_id`` is the id of the record the item should hold (account or invoice id), when it has one.
    """

    def __init__(self, table: str, key: str, field: str, problem: str, *, record_id: str | None = None) -> None:
        super().__init__(f"{table} item {key}: {field} {problem}")
        self.table = table
        self.key = key
        self.record_id = record_id
        self.field = field
        self.problem = problem


class StorageUnavailable(BillingError):
    """DynamoDB or SQS could not be reached or refused the request for a transient reason."""


class MessageReceiptStale(StorageUnavailable):
    """SQS no longer knows this receipt of a message: its visibility ran out and another receive took it
    (or it was deleted). The message is that receive's now; nothing is lost."""


class InvalidCursor(BillingError):
    """A pagination cursor was not one this system issued."""


# --- secrets -------------------------------------------------------------------------------------


class SecretsUnavailable(BillingError):
    """The Stripe secrets could not be read or are malformed (the message never holds a value)."""


# --- Cost Explorer -------------------------------------------------------------------------------


class CostSourceError(BillingError):
    """Cost Explorer refused the query or answered something this system cannot read."""


class ExchangeRateUnavailable(BillingError):
    """The reference-rate feed could not be read or is not the feed; the run waits, it never guesses a rate."""


class CostSourceUnavailable(CostSourceError):
    """Cost Explorer could not be reached, did not answer in time or failed on its side (5xx): try later."""


class CostSourceThrottled(CostSourceUnavailable):
    """Cost Explorer kept throttling after the bounded number of attempts."""


# --- Stripe --------------------------------------------------------------------------------------


class PaymentGatewayError(BillingError):
    """Base of every Stripe failure; ``code`` is Stripe's error code when there is one."""

    def __init__(self, message: str, *, code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


class PaymentDeclined(PaymentGatewayError):
    """The payment method was declined (card declined, insufficient funds, ...)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        decline_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, request_id=request_id)
        self.decline_code = decline_code


class PaymentActionRequired(PaymentDeclined):
    """The customer must authenticate the payment (SCA / 3-D Secure) before it can succeed."""


class StripeUnavailable(PaymentGatewayError):
    """Stripe could not be reached or answered 5xx; safe to retry with the same idempotency key."""


class StripeRateLimited(StripeUnavailable):
    """Stripe answered 429; retry later with the same idempotency key."""


class StripeFailedAfterExecution(StripeUnavailable):
    """Stripe answered 500 after the request began executing (``Stripe-Should-Retry: false``).

    The request may have taken effect, and Stripe replays this same 500 for its idempotency key for
    24 hours: retrying with that key cannot help. Look at what exists, then use a fresh key.
    """


class StripeAuthenticationFailed(PaymentGatewayError):
    """Stripe rejected the API key (even after re-reading it from Secrets Manager)."""


class StripeRequestRejected(PaymentGatewayError):
    """Stripe rejected the request as invalid; retrying the same request will not help."""

    def __init__(
        self, message: str, *, code: str | None = None, param: str | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message, code=code, request_id=request_id)
        self.param = param


class IdempotencyKeyReused(StripeRequestRejected):
    """An idempotency key was sent again with different parameters: a bug in key derivation."""


class InvoiceAlreadyPaid(StripeRequestRejected):
    """Stripe refused to pay an invoice it has already paid: a concurrent payment (another request,
    Stripe's own automatic charge) took the money a moment ago. Nothing was charged by this request."""


class PaymentMethodMissing(StripeRequestRejected):
    """Stripe refused to pay: neither the invoice nor its customer has a default payment method.

    Nothing was charged, and no attempt is counted; the customer has to save a payment method first.
    """


class StripeObjectNotFound(NotFound, PaymentGatewayError):
    """Stripe has no object with that id."""

    def __init__(self, message: str, *, code: str | None = "resource_missing", request_id: str | None = None) -> None:
        PaymentGatewayError.__init__(self, message, code=code, request_id=request_id)


class UpdateConflict(BillingError):
    """A conditional write kept losing to concurrent writers; the work is retried later as a whole."""


# --- webhooks ------------------------------------------------------------------------------------


class InvalidWebhookSignature(BillingError):
    """A webhook whose ``Stripe-Signature`` is missing, malformed, wrong or outside the time tolerance."""


class InvalidStripeObject(BillingError):
    """A Stripe object without a field every object of its kind has (its id, its type): it is not one."""


class InvalidStripeEvent(InvalidStripeObject):
    """A payload that is not a Stripe event (not JSON, no id or type); it will never become one."""


class MailError(BillingError):
    """Sending an e-mail failed."""


class MailThrottled(MailError):
    """The mail service asks to slow down (SES ``TooManyRequestsException``, a sending rate exceeded): retry."""


class MailRejected(MailError):
    """The mail service refuses the message for good (unverified sender, ``MessageRejected``): recorded, not retried."""
