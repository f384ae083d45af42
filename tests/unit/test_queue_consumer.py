"""The queue consumer: delete after success, show a failed message again after its retry delay, long-poll as set."""
from __future__ import annotations

import json
import threading
import time
from datetime import date
from decimal import Decimal

import pytest

from billing_core.bootstrap import WorkerServices
from billing_core.domain.costs import CostLine, CostReport, Period
from billing_core.domain.invoice_plan import BillingPolicy, FxRate, plan_invoice
from billing_core.domain.records import Account
from billing_core.settings import Settings
from billing_core.use_cases.apply_event import EventPorts
from billing_core.use_cases.invoice_messages import plan_to_message
from scheduler_worker import worker
from scheduler_worker.billing_jobs import JOB_RETRY_DELAY
from scheduler_worker.consumer import QueueConsumer, exponential_backoff
from scheduler_worker.stripe_events import stripe_event_consumers
from scheduler_worker.worker import worker_consumers
from tests.support.fakes import (
    FakeAccountRepository,
    FakeCostSource,
    FakeInvoiceRepository,
    FakeLeases,
    FakePaymentGateway,
    FakeProcessedEvents,
    FakeQueue,
    FakeRunRecords,
    FakeSecretsProvider,
)


def wait_until(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds passed; returns whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _consume_one_batch(queue: FakeQueue, handle, **kwargs) -> None:
    """Run a consumer until its handler has seen one message."""
    stopping = threading.Event()

    def handle_then_stop(message):
        stopping.set()
        handle(message)

    consumer = QueueConsumer("test", queue, handle_then_stop, stopping, **kwargs)
    consumer.start()
    consumer.join(timeout=10)
    assert stopping.is_set(), "the consumer never received the message"


def test_a_handled_message_is_deleted():
    queue = FakeQueue()
    queue.send('{"job": 1}')
    _consume_one_batch(queue, lambda message: None)
    assert queue.approximate_depth() == 0


def test_a_failed_billing_job_comes_back_after_the_job_retry_delay_not_the_visibility_timeout():
    now = [0.0]
    queue = FakeQueue(visibility_timeout=300, clock=lambda: now[0])
    queue.send('{"job": 1}')

    def fail(message):
        raise RuntimeError("Stripe unavailable")

    _consume_one_batch(queue, fail, retry_delay=JOB_RETRY_DELAY)
    now[0] = 14.0
    assert queue.receive() == []
    now[0] = 15.0
    assert [message.receive_count for message in queue.receive()] == [2]


def test_without_a_retry_delay_a_failed_message_waits_out_the_visibility_timeout():
    now = [0.0]
    queue = FakeQueue(visibility_timeout=300, clock=lambda: now[0])
    queue.send('{"job": 1}')

    def fail(message):
        raise RuntimeError("boom")

    _consume_one_batch(queue, fail)
    now[0] = 299.0
    assert queue.receive() == []
    now[0] = 300.0
    assert len(queue.receive()) == 1


def test_job_retry_delays_double_from_15_seconds_and_stay_under_the_visibility_timeout():
    assert [JOB_RETRY_DELAY(count) for count in range(1, 7)] == [15, 30, 60, 120, 240, 300]
    assert [exponential_backoff(count) for count in range(1, 5)] == [1, 2, 4, 8]


class RecordingQueue(FakeQueue):
    """Records the long-poll length of every receive."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[int] = []

    def receive(self, *, max_messages=10, wait_seconds=0, visibility_timeout=None):
        self.waits.append(wait_seconds)
        return super().receive(max_messages=max_messages, wait_seconds=wait_seconds,
                               visibility_timeout=visibility_timeout)


def _worker_services(environ: dict[str, str]) -> WorkerServices:
    return WorkerServices(
        settings=Settings.from_env(environ), invoices=FakeInvoiceRepository(), accounts=FakeAccountRepository(),
        events=FakeProcessedEvents(), leases=FakeLeases(), runs=FakeRunRecords(), costs=FakeCostSource(),
        payments=FakePaymentGateway(),
        secrets=FakeSecretsProvider(), billing_jobs=RecordingQueue(), stripe_events=RecordingQueue(),
    )


def test_a_consumer_long_polls_for_its_wait_seconds():
    queue = RecordingQueue()
    queue.send('{"job": 1}')

    _consume_one_batch(queue, lambda message: None, wait_seconds=7)

    assert queue.waits and set(queue.waits) == {7}


@pytest.mark.parametrize("wait_seconds", [0, 21])
def test_a_wait_sqs_does_not_allow_is_refused(wait_seconds):
    with pytest.raises(ValueError, match="wait_seconds"):
        QueueConsumer("test", FakeQueue(), lambda message: None, threading.Event(), wait_seconds=wait_seconds)


def test_every_worker_consumer_long_polls_for_queue_wait_seconds():
    services = _worker_services({"QUEUE_WAIT_SECONDS": "5", "WORKER_THREADS": "3"})

    consumers = worker_consumers(services, threading.Event())

    assert [consumer.name for consumer in consumers] == [
        "billing-jobs-1", "billing-jobs-2", "billing-jobs-3",
        "stripe-events-1", "stripe-events-2", "stripe-events-3", "stripe-events-4",
    ]
    assert {consumer.wait_seconds for consumer in consumers} == {5}


def test_the_worker_consumers_poll_20_seconds_unless_told_otherwise():
    consumers = worker_consumers(_worker_services({}), threading.Event())

    assert {consumer.wait_seconds for consumer in consumers} == {20}


def test_a_failed_stripe_event_comes_back_after_15_seconds_like_a_failed_job():
    now = [0.0]
    queue = FakeQueue(visibility_timeout=300, clock=lambda: now[0])
    queue.send("not a stripe event")  # fails on every receive, like an event during an outage
    ports = EventPorts(invoices=FakeInvoiceRepository(), accounts=FakeAccountRepository(),
                       payments=FakePaymentGateway(), events=FakeProcessedEvents())
    stopping = threading.Event()
    (consumer,) = stripe_event_consumers(queue, ports, stopping, count=1, wait_seconds=1)
    consumer.start()
    try:
        rescheduled = wait_until(lambda: 0 <= queue.messages[0].invisible_until < 300)
    finally:
        stopping.set()
        consumer.join(timeout=10)

    assert rescheduled
    now[0] = 14.0
    assert queue.receive() == []
    now[0] = 15.0
    assert [message.receive_count for message in queue.receive()] == [2]


def test_both_queues_of_a_worker_call_stripe_through_one_rate_limited_gateway(monkeypatch):
    services = _worker_services({"WORKER_THREADS": "1"})
    shared = FakePaymentGateway()  # stands in for the one rate-limited gateway of the process
    built = []
    monkeypatch.setattr(worker, "rate_limited_payments", lambda s: built.append(s) or shared)
    customer = shared.create_customer(account_id="u1", idempotency_key="setup:u1")
    services.accounts.put(Account("u1", stripe_customer_id=customer.id))
    period = Period(2024, 11)
    report = CostReport(period.start, period.end, "USD", False, (CostLine("AWS Lambda", Decimal("5.23")),))
    policy = BillingPolicy(fx=FxRate(Decimal("1.0"), "test", date(2024, 11, 30)))
    services.billing_jobs.send(plan_to_message(plan_invoice(period, report, Account("u1"), policy), "run_1"))
    services.stripe_events.send(json.dumps({
        "id": "evt_1", "object": "event", "type": "setup_intent.succeeded", "created": 1_733_000_000,
        "data": {"object": {"id": "seti_1", "object": "setup_intent", "customer": customer.id,
                            "payment_method": "pm_card_visa", "status": "succeeded", "metadata": {}}},
    }))
    stopping = threading.Event()
    consumers = worker_consumers(services, stopping)
    for consumer in consumers:
        consumer.start()
    try:
        both_called = wait_until(
            lambda: shared.calls_to("finalize_invoice") and shared.calls_to("set_default_payment_method"))
    finally:
        stopping.set()
        for consumer in consumers:
            consumer.join(timeout=10)

    assert both_called
    assert built == [services]
    assert services.payments.calls == []


def test_a_claim_check_message_is_applied_from_the_event_stripe_keeps():
    from billing_core.ports import ReceivedMessage
    from billing_core.use_cases.event_support import EventPorts
    from billing_core.use_cases.receive_webhook import claim_check
    from scheduler_worker.stripe_events import StripeEventHandler
    from tests.support.fakes import FakeAccountRepository, FakeInvoiceRepository, FakePaymentGateway
    from tests.support.storage_fakes import FakeProcessedEvents

    payments = FakePaymentGateway()
    payments.events.append({"id": "evt_big", "object": "event", "type": "customer.updated", "created": 1_700_000_000,
                            "data": {"object": {"id": "cus_nobody", "object": "customer", "metadata": {}}}})
    events = FakeProcessedEvents()
    ports = EventPorts(invoices=FakeInvoiceRepository(), accounts=FakeAccountRepository(), payments=payments,
                       events=events)
    message = ReceivedMessage(message_id="m1", body=claim_check("evt_big", "customer.updated"), receipt_handle="r")

    StripeEventHandler(ports)(message)
    StripeEventHandler(ports)(message)  # redelivered: read again, applied once

    assert [call.method for call in payments.calls] == ["retrieve_event", "retrieve_event"]
    assert events.claims["evt_big"]["state"] == "done" and events.claims["evt_big"]["applications"] == 1
