"""A ``PaymentGateway`` decorator that keeps one process under a Stripe request rate and retries 429s.

Every thread of a worker shares one ``TokenBucket``, so the process as a whole stays under
``STRIPE_MAX_REQUESTS_PER_SECOND`` however many invoice jobs run at once. If Stripe still answers 429
(other processes share the account's limit), the call backs off with full jitter and is sent again
with the same idempotency key, so a retry can never do the work twice.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar

from billing_core.errors import StripeRateLimited
from billing_core.ports import (
    CreditNoteRequest,
    InvoiceLine,
    PaymentGateway,
    StripeCreditNote,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripeInvoiceLine,
    StripePaymentMethod,
    StripeSetupIntent,
)
from billing_core.ports.stripe import CustomerDetails, TaxRateSpec

log = logging.getLogger(__name__)

T = TypeVar("T")


# Stripe's global limits are 25 requests/s in test mode and 100 in live mode; the budget leaves room
# for billing-api and the event consumer on the same account.
TEST_MODE_BUDGET = Decimal("20")
LIVE_MODE_BUDGET = Decimal("80")


def request_budget(configured: Decimal | None, secret_key: str) -> tuple[Decimal, str]:
    """Requests per second for this process, and why: the setting, else what the key's mode allows."""
    if configured is not None:
        return configured, "STRIPE_MAX_REQUESTS_PER_SECOND"
    if secret_key.startswith(("sk_test_", "rk_test_")):
        return TEST_MODE_BUDGET, "test-mode key"
    return LIVE_MODE_BUDGET, "live-mode key"


class TokenBucket:
    """Thread-safe pacing: at most ``rate`` acquisitions per second after a burst of ``capacity``.

    Each caller reserves the next free slot under the lock and then sleeps outside it, so waiting
    threads are served in order and the lock is never held while sleeping.
    """

    def __init__(
        self,
        rate: float | Decimal,
        *,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = float(rate)
        if self.rate <= 0:
            raise ValueError("rate must be greater than 0")
        # Default burst: 1/20 s worth of requests. It lets a slot missed while every thread was busy be
        # made up, and keeps any one-second window under rate * 1.05 (80/s -> at most 84 in a second).
        self.capacity = float(capacity) if capacity is not None else max(1.0, self.rate / 20)
        if self.capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token; returns how many seconds the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> None:
        """Block until a request may be sent."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)


class RateLimitedPaymentGateway(PaymentGateway):
    """Wraps another ``PaymentGateway``: one token per request, 429s retried with jittered back-off."""

    def __init__(
        self,
        inner: PaymentGateway,
        bucket: TokenBucket,
        *,
        max_attempts: int = 8,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._inner = inner
        self._bucket = bucket
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._jitter = jitter
        self.rate_limited = 0  # 429s seen (and retried), for the benchmark and the logs

    def __repr__(self) -> str:
        return f"RateLimitedPaymentGateway({self._inner!r}, {self._bucket.rate}/s)"

    def _call(self, operation: Callable[[], T]) -> T:
        for attempt in range(1, self._max_attempts + 1):
            self._bucket.acquire()
            try:
                return operation()
            except StripeRateLimited:
                self.rate_limited += 1
                if attempt == self._max_attempts:
                    raise
                delay = self._jitter() * min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
                log.warning(
                    "Stripe rate limit hit; backing off", extra={"attempt": attempt, "delaySeconds": round(delay, 3)}
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def create_customer(
        self,
        *,
        account_id: str,
        idempotency_key: str,
        email: str | None = None,
        name: str | None = None,
        details: CustomerDetails | None = None,
    ) -> StripeCustomer:
        """See ``PaymentGateway.create_customer``."""
        return self._call(
            lambda: self._inner.create_customer(
                account_id=account_id, idempotency_key=idempotency_key, email=email, name=name, details=details
            )
        )

    def update_customer(self, customer_id: str, *, details: CustomerDetails, idempotency_key: str) -> StripeCustomer:
        """See ``PaymentGateway.update_customer``."""
        return self._call(
            lambda: self._inner.update_customer(customer_id, details=details, idempotency_key=idempotency_key)
        )

    def create_setup_intent(
        self,
        *,
        customer_id: str,
        idempotency_key: str,
        payment_method_types: Sequence[str] = ("card", "sepa_debit"),
        metadata: Mapping[str, str] | None = None,
    ) -> StripeSetupIntent:
        """See ``PaymentGateway.create_setup_intent``."""
        return self._call(
            lambda: self._inner.create_setup_intent(
                customer_id=customer_id,
                idempotency_key=idempotency_key,
                payment_method_types=payment_method_types,
                metadata=metadata,
            )
        )

    def set_default_payment_method(
        self, *, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> StripeCustomer:
        """See ``PaymentGateway.set_default_payment_method``."""
        return self._call(
            lambda: self._inner.set_default_payment_method(
                customer_id=customer_id, payment_method_id=payment_method_id, idempotency_key=idempotency_key
            )
        )

    def retrieve_payment_method(self, payment_method_id: str) -> StripePaymentMethod:
        """See ``PaymentGateway.retrieve_payment_method``."""
        return self._call(lambda: self._inner.retrieve_payment_method(payment_method_id))

    def create_draft_invoice(
        self,
        *,
        customer_id: str,
        currency: str,
        idempotency_key: str,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        auto_advance: bool = False,
        custom_fields: Mapping[str, str] | None = None,
        footer: str | None = None,
        automatic_tax: bool = False,
    ) -> StripeInvoice:
        """See ``PaymentGateway.create_draft_invoice``."""
        return self._call(
            lambda: self._inner.create_draft_invoice(
                customer_id=customer_id,
                currency=currency,
                idempotency_key=idempotency_key,
                description=description,
                metadata=metadata,
                auto_advance=auto_advance,
                custom_fields=custom_fields,
                footer=footer,
                automatic_tax=automatic_tax,
            )
        )

    def find_tax_rate(self, key: str) -> str | None:
        """See ``PaymentGateway.find_tax_rate``."""
        return self._call(lambda: self._inner.find_tax_rate(key))

    def create_tax_rate(self, spec: TaxRateSpec, *, idempotency_key: str) -> str:
        """See ``PaymentGateway.create_tax_rate``."""
        return self._call(lambda: self._inner.create_tax_rate(spec, idempotency_key=idempotency_key))

    def add_invoice_lines(
        self, *, invoice_id: str, lines: Sequence[InvoiceLine], idempotency_key: str
    ) -> StripeInvoice:
        """See ``PaymentGateway.add_invoice_lines``."""
        return self._call(
            lambda: self._inner.add_invoice_lines(invoice_id=invoice_id, lines=lines, idempotency_key=idempotency_key)
        )

    def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str, auto_advance: bool | None = None
    ) -> StripeInvoice:
        """See ``PaymentGateway.finalize_invoice``."""
        return self._call(
            lambda: self._inner.finalize_invoice(invoice_id, idempotency_key=idempotency_key, auto_advance=auto_advance)
        )

    def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        """See ``PaymentGateway.pay_invoice``."""
        return self._call(lambda: self._inner.pay_invoice(invoice_id, idempotency_key=idempotency_key))

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        """See ``PaymentGateway.void_invoice``."""
        return self._call(lambda: self._inner.void_invoice(invoice_id, idempotency_key=idempotency_key))

    def retrieve_invoice(self, invoice_id: str) -> StripeInvoice:
        """See ``PaymentGateway.retrieve_invoice``."""
        return self._call(lambda: self._inner.retrieve_invoice(invoice_id))

    def list_invoices(self, customer_id: str, *, status: str | None = None) -> list[StripeInvoice]:
        """See ``PaymentGateway.list_invoices`` (one token per call, whatever its page count)."""
        return self._call(lambda: self._inner.list_invoices(customer_id, status=status))

    def list_invoice_lines(self, invoice_id: str) -> list[StripeInvoiceLine]:
        """See ``PaymentGateway.list_invoice_lines`` (one token per call, whatever its page count)."""
        return self._call(lambda: self._inner.list_invoice_lines(invoice_id))

    def preview_credit_note(self, request: CreditNoteRequest) -> StripeCreditNote:
        """See ``PaymentGateway.preview_credit_note``."""
        return self._call(lambda: self._inner.preview_credit_note(request))

    def create_credit_note(self, request: CreditNoteRequest, *, idempotency_key: str) -> StripeCreditNote:
        """See ``PaymentGateway.create_credit_note``."""
        return self._call(lambda: self._inner.create_credit_note(request, idempotency_key=idempotency_key))

    def list_credit_notes(self, invoice_id: str) -> list[StripeCreditNote]:
        """See ``PaymentGateway.list_credit_notes`` (one token per call, whatever its page count)."""
        return self._call(lambda: self._inner.list_credit_notes(invoice_id))

    def retrieve_event(self, event_id: str) -> StripeEvent:
        """See ``PaymentGateway.retrieve_event``."""
        return self._call(lambda: self._inner.retrieve_event(event_id))

    def list_events(self, *, created_after: int, types: Sequence[str] = ()) -> Iterator[StripeEvent]:
        """See ``PaymentGateway.list_events``."""
        return self._call(lambda: self._inner.list_events(created_after=created_after, types=types))
