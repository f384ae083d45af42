"""The Stripe rate limiter: a token bucket shared by threads, 429s retried with the same idempotency key."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from billing_core.adapters.rate_limited_gateway import RateLimitedPaymentGateway, TokenBucket, request_budget
from billing_core.errors import StripeRateLimited
from tests.support.fakes import FakePaymentGateway, FakeSecretsProvider


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_paces_requests_to_the_configured_rate():
    clock = ManualClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)

    for _ in range(21):
        bucket.acquire()

    assert clock.now == pytest.approx(2.0)  # the first is free, then one every 0.1 s


def test_bucket_reservations_from_many_threads_never_exceed_the_rate():
    clock = ManualClock()
    bucket = TokenBucket(50, capacity=1, clock=clock, sleep=lambda s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # 200 requests reserved at t=0: the last may go at 199/50 s, and no two share a slot.
    assert sorted(waits)[-1] == pytest.approx(199 / 50)
    assert len({round(w, 9) for w in waits}) == 200


def test_a_429_is_retried_with_the_same_idempotency_key_and_creates_one_object():
    stripe = FakePaymentGateway()
    clock = ManualClock()
    gateway = RateLimitedPaymentGateway(
        stripe, TokenBucket(100, clock=clock, sleep=clock.sleep), sleep=clock.sleep, jitter=lambda: 0.5
    )
    stripe.fail_next("create_customer", StripeRateLimited("Too many requests"))
    stripe.fail_next("create_customer", StripeRateLimited("Too many requests"))

    customer = gateway.create_customer(account_id="u1", idempotency_key="k1")

    assert len(stripe.customers) == 1 and customer.id in stripe.customers
    assert gateway.rate_limited == 2
    assert clock.slept[-2:] == [pytest.approx(0.1), pytest.approx(0.2)]  # jittered, doubling


def test_rate_limiting_that_never_ends_surfaces_after_the_last_attempt():
    stripe = FakePaymentGateway()
    gateway = RateLimitedPaymentGateway(stripe, TokenBucket(1000), max_attempts=3, sleep=lambda s: None)
    for _ in range(3):
        stripe.fail_next("retrieve_invoice", StripeRateLimited("Too many requests"))

    with pytest.raises(StripeRateLimited):
        gateway.retrieve_invoice("in_1")
    assert len(stripe.calls_to("retrieve_invoice")) == 3  # every attempt was made before giving up


def test_default_burst_keeps_every_one_second_window_within_five_percent_of_the_rate():
    clock = ManualClock()
    bucket = TokenBucket(80, clock=clock, sleep=clock.sleep)
    clock.now = 10.0  # idle for a while: the bucket is full
    sent = []
    for _ in range(400):
        bucket.acquire()
        sent.append(clock.now)

    busiest = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
    assert busiest <= 84


@pytest.mark.parametrize(
    ("configured", "key", "expected"),
    [
        (None, "sk_test_abc", (Decimal("20"), "test-mode key")),
        (None, "rk_test_abc", (Decimal("20"), "test-mode key")),
        (None, "sk_live_abc", (Decimal("80"), "live-mode key")),
        (None, "rk_live_abc", (Decimal("80"), "live-mode key")),
        (Decimal("7"), "sk_test_abc", (Decimal("7"), "STRIPE_MAX_REQUESTS_PER_SECOND")),
    ],
)
def test_the_request_budget_follows_the_keys_mode_unless_set(configured, key, expected):
    assert request_budget(configured, key) == expected


def test_the_worker_logs_which_budget_it_chose(caplog):
    from billing_core.bootstrap import WorkerUseCases
    from billing_core.settings import Settings

    ports = type(
        "Ports",
        (),
        {
            "settings": Settings.from_env({}),
            "payments": FakePaymentGateway(),
            "secrets": FakeSecretsProvider(secret_key="sk_test_x"),
        },
    )()
    with caplog.at_level("INFO"):
        gateway = WorkerUseCases(ports).rate_limited_payments

    assert repr(gateway).endswith(", 20.0/s)")
    (record,) = [r for r in caplog.records if r.getMessage() == "Stripe request budget"]
    assert (record.requestsPerSecond, getattr(record, "from")) == ("20", "test-mode key")
