"""The queue consumer: delete after success, show a failed message again after its retry delay, long-poll as set."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import date
from decimal import Decimal

import pytest

from billing_core import resources
from billing_core.bootstrap import WorkerPorts, WorkerUseCases
from billing_core.domain.costs import CostLine, CostReport, Period
from billing_core.domain.invoice_plan import BillingPolicy, FxRate, plan_invoice
from billing_core.domain.records import Account
from billing_core.errors import (
    CostSourceThrottled,
    CostSourceUnavailable,
    StorageUnavailable,
    StripeRateLimited,
    StripeUnavailable,
)
from billing_core.settings import Settings
from billing_core.use_cases.apply_event import EventPorts
from billing_core.use_cases.invoice_messages import plan_to_message
from billing_core.use_cases.receive_webhook import claim_check
from scheduler_worker.billing_jobs import retry_schedule
from scheduler_worker.consumer import (
    RENEW_AFTER_RECEIVES,
    UNEXPECTED_FAILURE_LIMIT,
    QueueConsumer,
    RedeliverLater,
    RetrySchedule,
)
from scheduler_worker.stripe_events import UNKNOWN_ACCOUNT_ATTEMPTS, StripeEventHandler, stripe_event_consumers
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
from tests.support.observe import event_applications, waiting_messages


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
    assert waiting_messages(queue) == 0


def test_a_handled_message_taken_over_before_its_delete_is_a_warning_not_an_error(caplog):
    from billing_core.errors import MessageReceiptStale

    class TakenOver(FakeQueue):
        def delete(self, receipt_handle: str) -> None:
            raise MessageReceiptStale("SQS ReceiptHandleIsInvalid on delete_message")

    queue = TakenOver()
    queue.send('{"job": 1}')
    caplog.set_level("WARNING")

    _consume_one_batch(queue, lambda message: None)

    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "scheduler_worker.consumer"] == [
        ("WARNING", "a handled message was taken over before it could be deleted")
    ]


def _consume_until_idle(
    queue: FakeQueue, handle, now: list[float], *, until: float, step: float = 5.0, **kwargs
) -> None:
    """Deliver every message due up to ``until`` (fake seconds), moving the clock ``step`` at a time."""
    consumer = QueueConsumer("test", queue, handle, threading.Event(), **kwargs)
    while now[0] <= until:
        for message in queue.receive(max_messages=1):
            consumer._process(message)
        if not any(m.invisible_until <= now[0] for m in queue.messages):
            now[0] += step


def test_a_transiently_failed_message_comes_back_after_its_retry_delay_not_the_visibility_timeout():
    now = [0.0]
    queue = FakeQueue(visibility_timeout=300, clock=lambda: now[0])
    queue.send('{"job": 1}')

    def fail(message):
        raise StripeUnavailable("Stripe answered 503")

    _consume_one_batch(queue, fail, retry_delay=RetrySchedule())
    now[0] = 14.0
    assert queue.receive() == []
    now[0] = 15.0
    assert [message.receive_count for message in queue.receive()] == [2]


def test_retry_delays_double_from_15_seconds_up_to_two_hours():
    schedule = RetrySchedule()
    assert [schedule(attempt) for attempt in range(1, 11)] == [15, 30, 60, 120, 240, 480, 960, 1920, 3840, 7200]
    assert schedule(1000) == 7200
    assert [RetrySchedule(1, 60)(count) for count in range(1, 5)] == [1, 2, 4, 8]
    assert retry_schedule(Settings.from_env({"RETRY_BASE_SECONDS": "5", "RETRY_MAX_SECONDS": "60"}))(9) == 60


@pytest.mark.parametrize(
    "error",
    [
        StripeUnavailable("Stripe answered 500"),
        StripeRateLimited("429"),
        StorageUnavailable("DynamoDB throttled"),
        TimeoutError("read timed out"),
        CostSourceUnavailable("Cost Explorer did not answer"),
        CostSourceThrottled("Cost Explorer still throttling"),
    ],
)
def test_transient_failures_back_off_for_hours_and_never_dead_letter(error):
    now = [0.0]
    queue = FakeQueue(max_receive_count=resources.STRIPE_EVENTS.max_receive_count, clock=lambda: now[0])
    queue.send('{"id": "evt_1"}', {"claimCheck": "stripe"})
    attempts: list[tuple[float, int]] = []

    def fail_for_a_day(message):
        attempts.append((now[0], message.attempt))
        if now[0] < 24 * 3600:
            raise error

    _consume_until_idle(queue, fail_for_a_day, now, until=30 * 3600, step=60.0, retry_delay=RetrySchedule())

    assert queue.dead_lettered == [] and queue.messages == []  # handled in the end, and deleted
    assert [attempt for _, attempt in attempts] == list(range(1, len(attempts) + 1))
    gaps = [later - earlier for (earlier, _), (later, _) in zip(attempts, attempts[1:], strict=False)]
    assert max(gaps) >= 2 * 3600 - 60 and len(attempts) < 30  # hours apart at the end, not minutes
    # Every copy stayed far below the queue's maxReceiveCount: SQS would never have dead-lettered it.
    assert all(message.receive_count <= RENEW_AFTER_RECEIVES for message in queue.messages)


def test_a_poison_message_is_dead_lettered_at_once_with_its_reason(caplog):
    queue = FakeQueue()
    queue.send("this is not json")
    handler = StripeEventHandler(_event_ports())

    with caplog.at_level(logging.ERROR, logger="scheduler_worker.consumer"):
        _consume_one_batch(queue, handler)

    assert queue.messages == []
    (letter,) = queue.dead_letters()
    assert (letter.body, letter.reason) == ("this is not json", "InvalidStripeEvent: the message body is not JSON")
    assert [r.reason for r in caplog.records if r.message == "message dead-lettered"] == [letter.reason]


def test_a_claim_check_for_an_event_stripe_does_not_have_is_poison():
    queue = FakeQueue()
    queue.send(claim_check("evt_unknown", "invoice.paid"), {"claimCheck": "stripe"})
    _consume_one_batch(queue, StripeEventHandler(_event_ports()))

    (letter,) = queue.dead_letters()
    assert letter.reason == "PoisonMessage: Stripe has no event evt_unknown"


def test_an_event_naming_an_unknown_account_is_looked_at_again_then_dead_lettered_with_its_reason(caplog):
    now = [0.0]
    queue = FakeQueue(max_receive_count=10, clock=lambda: now[0])
    body = json.dumps(
        {
            "id": "evt_orphan",
            "object": "event",
            "type": "setup_intent.succeeded",
            "created": 1,
            "data": {
                "object": {
                    "id": "seti_1",
                    "object": "setup_intent",
                    "customer": "cus_1",
                    "payment_method": "pm_card_visa",
                    "metadata": {"userId": "gone"},
                }
            },
        }
    )
    queue.send(body)
    ports = _event_ports()
    handler = StripeEventHandler(ports, retry_delay=RetrySchedule())
    seen: list[tuple[float, int]] = []

    def handle(message):
        seen.append((now[0], message.attempt))
        handler(message)

    with caplog.at_level(logging.ERROR, logger="scheduler_worker.consumer"):
        _consume_until_idle(queue, handle, now, until=3600, retry_delay=RetrySchedule())

    assert [attempt for _, attempt in seen] == list(range(1, UNKNOWN_ACCOUNT_ATTEMPTS + 1))
    # On the retry schedule: the account had 15 + 30 + 60 + 120 + 240 s to appear.
    assert seen[-1][0] - seen[0][0] >= 465
    (letter,) = queue.dead_letters()
    assert letter.body == body and letter.reason.startswith("PoisonMessage: unknown account 'gone'")
    assert "evt_orphan" in letter.reason and "seti_1" in letter.reason
    assert [r.reason for r in caplog.records if r.message == "message dead-lettered"] == [letter.reason]
    assert event_applications(ports.events, "evt_orphan") == 0  # never marked done: a redrive applies it


def test_an_event_whose_account_appears_while_it_waits_is_applied():
    now = [0.0]
    queue = FakeQueue(max_receive_count=10, clock=lambda: now[0])
    queue.send(
        json.dumps(
            {
                "id": "evt_early",
                "object": "event",
                "type": "customer.updated",
                "created": 1,
                "data": {
                    "object": {
                        "id": "cus_1",
                        "object": "customer",
                        "email": "new@example.com",
                        "metadata": {"userId": "late"},
                    }
                },
            }
        )
    )
    ports = _event_ports()
    handler = StripeEventHandler(ports, retry_delay=RetrySchedule())

    def handle(message):
        if message.attempt == 3:
            ports.accounts.put(Account("late", stripe_customer_id="cus_1", email="old@example.com"))
        handler(message)

    _consume_until_idle(queue, handle, now, until=3600, retry_delay=RetrySchedule())

    assert queue.dead_lettered == [] and queue.messages == []
    assert ports.accounts.get("late").email == "new@example.com"


def test_an_unexpected_failure_is_retried_then_dead_lettered_with_its_reason():
    now = [0.0]
    queue = FakeQueue(max_receive_count=10, clock=lambda: now[0])
    queue.send('{"job": 1}')
    seen = []

    def bug(message):
        seen.append(message.receive_count)
        raise KeyError("amount")

    _consume_until_idle(queue, bug, now, until=3600, retry_delay=RetrySchedule())

    assert seen == list(range(1, UNEXPECTED_FAILURE_LIMIT + 1))
    assert [letter.reason for letter in queue.dead_letters()] == ["KeyError: 'amount'"]


def test_waiting_for_another_workers_claim_never_dead_letters():
    now = [0.0]
    queue = FakeQueue(max_receive_count=10, clock=lambda: now[0])
    queue.send('{"id": "evt_1"}')
    seen = []

    def claimed_elsewhere(message):
        seen.append(message.attempt)
        if len(seen) < 40:
            raise RedeliverLater(15, "another worker is applying this event")

    _consume_until_idle(queue, claimed_elsewhere, now, until=3600)

    assert len(seen) == 40 and queue.dead_lettered == [] and queue.messages == []


class VisibilityRecordingQueue(FakeQueue):
    """Records every receive's batch size and every visibility change."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.batch_sizes: list[int] = []
        self.visibility_changes: list[int] = []

    def receive(self, *, max_messages=10, wait_seconds=0, visibility_timeout=None):
        self.batch_sizes.append(max_messages)
        return super().receive(
            max_messages=max_messages, wait_seconds=wait_seconds, visibility_timeout=visibility_timeout
        )

    def change_visibility(self, receipt_handle, timeout_seconds):
        self.visibility_changes.append(timeout_seconds)
        super().change_visibility(receipt_handle, timeout_seconds)


def test_a_message_is_kept_hidden_while_it_is_handled_and_only_one_is_taken_at_a_time():
    queue = VisibilityRecordingQueue()
    for n in range(3):
        queue.send(f'{{"job": {n}}}')
    handled = []

    def slow(message):
        handled.append(message.body)
        if len(handled) == 1:
            time.sleep(0.35)

    stopping = threading.Event()
    consumer = QueueConsumer(
        "test", queue, slow, stopping, wait_seconds=1, visibility_seconds=1, extend_every_seconds=0.1
    )
    consumer.start()
    assert wait_until(lambda: len(handled) == 3)
    stopping.set()
    consumer.join(timeout=5)

    assert set(queue.batch_sizes) == {1}
    # Extended (to the short visibility) while the slow message was handled, and no longer after.
    assert 2 <= len(queue.visibility_changes) <= 4 and set(queue.visibility_changes) == {1}
    assert queue.messages == []


class RecordingQueue(FakeQueue):
    """Records the long-poll length of every receive."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[int] = []

    def receive(self, *, max_messages=10, wait_seconds=0, visibility_timeout=None):
        self.waits.append(wait_seconds)
        return super().receive(
            max_messages=max_messages, wait_seconds=wait_seconds, visibility_timeout=visibility_timeout
        )


def _worker_services(environ: dict[str, str]) -> WorkerPorts:
    return WorkerPorts(
        settings=Settings.from_env(environ),
        invoices=FakeInvoiceRepository(),
        accounts=FakeAccountRepository(),
        events=FakeProcessedEvents(),
        leases=FakeLeases(),
        runs=FakeRunRecords(),
        costs=FakeCostSource(),
        payments=FakePaymentGateway(),
        secrets=FakeSecretsProvider(),
        billing_jobs=RecordingQueue(),
        stripe_events=RecordingQueue(),
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

    consumers = worker_consumers(WorkerUseCases(services), threading.Event())

    assert [consumer.name for consumer in consumers] == [
        "billing-jobs-1",
        "billing-jobs-2",
        "billing-jobs-3",
        "stripe-events-1",
        "stripe-events-2",
        "stripe-events-3",
        "stripe-events-4",
    ]
    assert {consumer.wait_seconds for consumer in consumers} == {5}


def test_the_worker_consumers_poll_20_seconds_unless_told_otherwise():
    consumers = worker_consumers(WorkerUseCases(_worker_services({})), threading.Event())

    assert {consumer.wait_seconds for consumer in consumers} == {20}


def test_a_stripe_event_that_failed_on_a_stripe_outage_comes_back_after_15_seconds():
    now = [0.0]
    queue = FakeQueue(visibility_timeout=300, clock=lambda: now[0])
    ports = _event_ports()
    customer = ports.payments.create_customer(account_id="u1", idempotency_key="setup:u1")
    ports.accounts.put(Account("u1", stripe_customer_id=customer.id))
    ports.payments.fail_next("set_default_payment_method", StripeUnavailable("Stripe answered 503"))
    queue.send(
        json.dumps(
            {
                "id": "evt_1",
                "object": "event",
                "type": "setup_intent.succeeded",
                "created": 1_733_000_000,
                "data": {
                    "object": {
                        "id": "seti_1",
                        "object": "setup_intent",
                        "customer": customer.id,
                        "payment_method": "pm_card_visa",
                        "status": "succeeded",
                        "metadata": {},
                    }
                },
            }
        )
    )
    stopping = threading.Event()
    (consumer,) = stripe_event_consumers(queue, ports, stopping, count=1, wait_seconds=1)
    consumer.start()
    try:
        rescheduled = wait_until(lambda: 0 <= queue.messages[0].invisible_until < 300)
    finally:
        stopping.set()
        consumer.join(timeout=10)

    assert rescheduled and queue.dead_lettered == []
    now[0] = 14.0
    assert queue.receive() == []
    now[0] = 15.0
    assert [message.receive_count for message in queue.receive()] == [2]


def _event_ports() -> EventPorts:
    return EventPorts(
        invoices=FakeInvoiceRepository(),
        accounts=FakeAccountRepository(),
        payments=FakePaymentGateway(),
        events=FakeProcessedEvents(),
    )


def test_both_queues_of_a_worker_call_stripe_through_one_rate_limited_gateway():
    services = _worker_services({"WORKER_THREADS": "1"})
    shared = FakePaymentGateway()  # stands in for the one rate-limited gateway of the process
    use_cases = WorkerUseCases(services)
    use_cases.__dict__["rate_limited_payments"] = shared  # the cached gateway every consumer takes
    customer = shared.create_customer(account_id="u1", idempotency_key="setup:u1")
    services.accounts.put(Account("u1", stripe_customer_id=customer.id))
    period = Period(2024, 11)
    report = CostReport(period.start, period.end, "USD", False, (CostLine("AWS Lambda", Decimal("5.23")),))
    policy = BillingPolicy(fx=FxRate(Decimal("1.0"), "test", date(2024, 11, 30)))
    services.billing_jobs.send(plan_to_message(plan_invoice(period, report, Account("u1"), policy), "run_1"))
    services.stripe_events.send(
        json.dumps(
            {
                "id": "evt_1",
                "object": "event",
                "type": "setup_intent.succeeded",
                "created": 1_733_000_000,
                "data": {
                    "object": {
                        "id": "seti_1",
                        "object": "setup_intent",
                        "customer": customer.id,
                        "payment_method": "pm_card_visa",
                        "status": "succeeded",
                        "metadata": {},
                    }
                },
            }
        )
    )
    stopping = threading.Event()
    consumers = worker_consumers(use_cases, stopping)
    for consumer in consumers:
        consumer.start()
    try:
        both_called = wait_until(
            lambda: shared.calls_to("finalize_invoice") and shared.calls_to("set_default_payment_method")
        )
    finally:
        stopping.set()
        for consumer in consumers:
            consumer.join(timeout=10)

    assert both_called
    assert services.payments.calls == []


def test_a_claim_check_message_is_applied_from_the_event_stripe_keeps():
    from billing_core.ports import ReceivedMessage
    from billing_core.use_cases.event_support import EventPorts
    from billing_core.use_cases.receive_webhook import claim_check
    from scheduler_worker.stripe_events import StripeEventHandler
    from tests.support.fakes import FakeAccountRepository, FakeInvoiceRepository, FakePaymentGateway
    from tests.support.storage_fakes import FakeProcessedEvents

    payments = FakePaymentGateway()
    payments.events.append(
        {
            "id": "evt_big",
            "object": "event",
            "type": "customer.updated",
            "created": 1_700_000_000,
            "data": {"object": {"id": "cus_nobody", "object": "customer", "metadata": {}}},
        }
    )
    events = FakeProcessedEvents()
    ports = EventPorts(
        invoices=FakeInvoiceRepository(), accounts=FakeAccountRepository(), payments=payments, events=events
    )
    message = ReceivedMessage(message_id="m1", body=claim_check("evt_big", "customer.updated"), receipt_handle="r")

    StripeEventHandler(ports)(message)
    StripeEventHandler(ports)(message)  # redelivered: read again, applied once

    assert [call.method for call in payments.calls] == ["retrieve_event", "retrieve_event"]
    assert events.claims["evt_big"]["state"] == "done" and events.claims["evt_big"]["applications"] == 1
