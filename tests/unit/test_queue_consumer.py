"""The queue consumer: delete after success, show a failed message again after its retry delay."""
from __future__ import annotations

import threading

from scheduler_worker.billing_jobs import JOB_RETRY_DELAY
from scheduler_worker.consumer import QueueConsumer, exponential_backoff
from tests.fakes import FakeQueue


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
    queue.send({"job": 1})
    _consume_one_batch(queue, lambda message: None)
    assert queue.approximate_depth() == 0


def test_a_failed_billing_job_comes_back_after_the_job_retry_delay_not_the_visibility_timeout():
    now = [0.0]
    queue = FakeQueue(visibility_timeout=300, clock=lambda: now[0])
    queue.send({"job": 1})

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
    queue.send({"job": 1})

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
