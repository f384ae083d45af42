"""Poison messages on stripe-events: after a bounded number of receives they land in the DLQ,
and the depth is logged."""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import pytest

from billing_core.adapters.dynamodb import DynamoAccountRepository
from billing_core.adapters.sqs import SqsMessageQueue
from billing_core.bootstrap import event_ports_for
from local_stack.demo import worker_services
from scheduler_worker.consumer import QueueConsumer
from scheduler_worker.dead_letters import DeadLetterMonitor
from scheduler_worker.stripe_events import StripeEventHandler
from tests.support.stripe_events import (
    account_item,
    aws_client,
    create_queue_pair,
    wait_for,
)


@pytest.fixture
def poison_queue(stack):
    """A fresh queue shaped like stripe-events (maxReceiveCount 5) and its DLQ."""
    sqs = aws_client(stack, "sqs")
    url = create_queue_pair(stack, f"stripe-events-poison-{uuid.uuid4().hex[:8]}")
    yield SqsMessageQueue(sqs, url)
    for queue_url in (url, url + "-dlq"):
        sqs.delete_queue(QueueUrl=queue_url)


@pytest.fixture
def consumer(stack, poison_queue):
    """The worker's stripe-events handler consuming the poison queue, retrying a failure immediately."""
    stopping = threading.Event()
    services = worker_services(stack)
    consumer = QueueConsumer("stripe-events", poison_queue, StripeEventHandler(event_ports_for(services)), stopping,
                             retry_delay=lambda receive_count: 0, wait_seconds=services.settings.queue_wait_seconds)
    consumer.start()
    yield services
    stopping.set()
    consumer.join(timeout=10)


def _stripe_event(event_type: str, obj: dict) -> str:
    return json.dumps({"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": event_type,
                       "created": int(time.time()), "data": {"object": obj}})


@pytest.mark.parametrize("body", ["this is not json", json.dumps({"hello": "world"}), json.dumps([1, 2, 3])])
def test_body_that_is_not_a_stripe_event_lands_in_the_dlq_after_five_receives(poison_queue, consumer, body):
    poison_queue.send(body)

    wait_for(lambda: poison_queue.dead_letter_depth() == 1, timeout=30, what="the poison message in the DLQ")
    assert poison_queue.approximate_depth() == 0


def test_event_whose_application_keeps_failing_lands_in_the_dlq(stack, poison_queue, consumer):
    # A known customer whose set-up payment method Stripe has never heard of: every attempt raises.
    account_id = f"user-{uuid.uuid4().hex[:8]}"
    customer_id = f"cus_{uuid.uuid4().hex[:14]}"
    dynamodb = aws_client(stack, "dynamodb")
    accounts = DynamoAccountRepository(dynamodb, stack.info["tables"]["payment_methods"])
    accounts.put(account_item(account_id, customer_id))
    body = _stripe_event("setup_intent.succeeded", {"id": f"seti_{uuid.uuid4().hex[:14]}", "object": "setup_intent",
                                                    "customer": customer_id, "payment_method": "pm_does_not_exist"})
    poison_queue.send(body)
    try:
        wait_for(lambda: poison_queue.dead_letter_depth() == 1, timeout=30, what="the failing event in the DLQ")
    finally:
        # The stack is shared by the session: a stray account would join later billing runs.
        dynamodb.delete_item(TableName=stack.info["tables"]["payment_methods"], Key={"userId": {"S": account_id}})
    event_id = json.loads(body)["id"]
    # Every failed attempt released its claim: nothing is stuck "processing", nothing counted as applied.
    assert consumer.events.event_applications(event_id) == 0
    stored = aws_client(stack, "dynamodb").get_item(TableName=stack.info["tables"]["events"],
                                                     Key={"pk": {"S": f"event#{event_id}"}}).get("Item")
    assert stored is None


def test_dead_letter_monitor_logs_the_dlq_depth(poison_queue, consumer, caplog):
    poison_queue.send("poison")
    wait_for(lambda: poison_queue.dead_letter_depth() == 1, timeout=30, what="the poison message in the DLQ")
    monitor = DeadLetterMonitor({"stripe-events": poison_queue}, threading.Event())

    with caplog.at_level(logging.INFO, logger="scheduler_worker.dead_letters"):
        assert monitor.check_once() == {"stripe-events": 1}

    [line] = [r for r in caplog.records if r.getMessage() == "dlq_depth"]
    assert (line.queue, line.dlqDepth, line.levelname) == ("stripe-events", 1, "WARNING")

