"""Poison messages on stripe-events land in the DLQ with their reason (at once, or after repeated
unexpected failures), the depth is logged, and ``billing events dlq`` / ``redrive`` act on the stack's
real queues and worker."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid

import pytest

from billing_core.adapters.dynamodb import DynamoAccountRepository
from billing_core.adapters.sqs import SqsMessageQueue
from billing_core.bootstrap import WorkerUseCases
from local_stack.demo import worker_services
from scheduler_worker.consumer import UNEXPECTED_FAILURE_LIMIT, QueueConsumer
from scheduler_worker.dead_letters import DeadLetterMonitor
from scheduler_worker.stripe_events import StripeEventHandler
from tests.support.observe import event_applications, waiting_messages
from tests.support.stripe_events import (
    account_item,
    aws_client,
    create_queue_pair,
    wait_for,
)


@pytest.fixture
def poison_queue(stack):
    """A fresh queue shaped like stripe-events and its DLQ."""
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
    consumer = QueueConsumer(
        "stripe-events",
        poison_queue,
        StripeEventHandler(WorkerUseCases(services).event_ports(rate_limited=False)),
        stopping,
        retry_delay=lambda receive_count: 0,
        wait_seconds=services.settings.queue_wait_seconds,
    )
    consumer.start()
    yield services
    stopping.set()
    consumer.join(timeout=10)


def _stripe_event(event_type: str, obj: dict) -> str:
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    )


@pytest.mark.parametrize("body", ["this is not json", json.dumps({"hello": "world"}), json.dumps([1, 2, 3])])
def test_body_that_is_not_a_stripe_event_lands_in_the_dlq_at_once_with_its_reason(poison_queue, consumer, body):
    poison_queue.send(body)

    wait_for(lambda: poison_queue.dead_letter_depth() == 1, timeout=30, what="the poison message in the DLQ")
    assert waiting_messages(poison_queue) == 0
    (letter,) = poison_queue.dead_letters()
    assert letter.body == body and letter.attempts == 1
    assert letter.reason and letter.reason.startswith("InvalidStripeEvent: ")


def test_event_whose_application_keeps_failing_lands_in_the_dlq(stack, poison_queue, consumer):
    # A known customer whose set-up payment method Stripe has never heard of: every attempt raises.
    account_id = f"user-{uuid.uuid4().hex[:8]}"
    customer_id = f"cus_{uuid.uuid4().hex[:14]}"
    dynamodb = aws_client(stack, "dynamodb")
    accounts = DynamoAccountRepository(dynamodb, stack.info["tables"]["payment_methods"])
    accounts.put(account_item(account_id, customer_id))
    body = _stripe_event(
        "setup_intent.succeeded",
        {
            "id": f"seti_{uuid.uuid4().hex[:14]}",
            "object": "setup_intent",
            "customer": customer_id,
            "payment_method": "pm_does_not_exist",
        },
    )
    poison_queue.send(body)
    try:
        wait_for(lambda: poison_queue.dead_letter_depth() == 1, timeout=60, what="the failing event in the DLQ")
        (letter,) = poison_queue.dead_letters()
        assert letter.attempts == UNEXPECTED_FAILURE_LIMIT
        assert letter.reason and letter.reason.startswith("StripeObjectNotFound: ")
    finally:
        # The stack is shared by the session: a stray account would join later billing runs.
        dynamodb.delete_item(TableName=stack.info["tables"]["payment_methods"], Key={"userId": {"S": account_id}})
    event_id = json.loads(body)["id"]
    # Every failed attempt released its claim: nothing is stuck "processing", nothing counted as applied.
    assert event_applications(consumer.events, event_id) == 0
    stored = (
        aws_client(stack, "dynamodb")
        .get_item(TableName=stack.info["tables"]["events"], Key={"pk": {"S": f"event#{event_id}"}})
        .get("Item")
    )
    assert stored is None


def test_dead_letter_monitor_logs_the_dlq_depth(poison_queue, consumer, caplog):
    poison_queue.send("poison")
    wait_for(lambda: poison_queue.dead_letter_depth() == 1, timeout=30, what="the poison message in the DLQ")
    monitor = DeadLetterMonitor({"stripe-events": poison_queue}, threading.Event())

    with caplog.at_level(logging.INFO, logger="scheduler_worker.dead_letters"):
        assert monitor.check_once() == {"stripe-events": 1}

    [line] = [r for r in caplog.records if r.getMessage() == "dlq_depth"]
    assert (line.queue, line.dlqDepth, line.levelname) == ("stripe-events", 1, "WARNING")


def test_billing_events_dlq_lists_what_the_stacks_worker_dead_lettered_and_redrive_brings_it_back(stack):
    """On the stack's own stripe-events queue, consumed by its scheduler-worker process."""
    from billing_cli import cli
    from billing_core.adapters.dynamodb_events import DynamoProcessedEvents

    services = worker_services(stack)
    queue = services.stripe_events
    sqs = aws_client(stack, "sqs")
    dlq_url = queue._dead_letter_queue_url()
    sqs.purge_queue(QueueUrl=dlq_url)  # the stack is shared: earlier tests may have left dead letters

    def billing(*argv: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        assert cli.main(["--stack", str(stack.stack_file), *argv], out=out, err=err) == 0, err.getvalue()
        return out.getvalue()

    queue.send("this is not json")
    wait_for(lambda: queue.dead_letter_depth() == 1, timeout=60, what="the worker to dead-letter the poison message")
    listing = billing("events", "dlq")
    assert "InvalidStripeEvent: the message body is not JSON" in listing and "this is not json" in listing
    assert "1 dead letter(s)" in listing

    # A valid event dead-lettered earlier (say, by a bug since fixed): the redrive has the worker apply it.
    sqs.purge_queue(QueueUrl=dlq_url)
    event = json.loads(
        _stripe_event("customer.updated", {"id": "cus_nobody_here", "object": "customer", "metadata": {}})
    )
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=json.dumps(event),
        MessageAttributes={"deadLetterReason": {"DataType": "String", "StringValue": "KeyError: 'name'"}},
    )
    assert "KeyError: 'name'" in billing("events", "dlq")

    assert "1 message(s) moved back" in billing("events", "redrive", "--reason", "bug fixed")

    ledger = DynamoProcessedEvents(aws_client(stack, "dynamodb"), stack.info["tables"]["events"])
    wait_for(lambda: event_applications(ledger, event["id"]) == 1, timeout=60, what="the redriven event applied")
    assert "no dead letters" in billing("events", "dlq")
    [entry] = [e for e in services.audit.entries(limit=20) if e.action == "queue.redrive"][:1]
    assert (entry.after["queue"], entry.after["moved"], entry.reason) == ("stripe-events", "1", "bug fixed")


def test_an_event_naming_an_unknown_account_is_dead_lettered_with_that_reason_and_applies_once_redriven(stack):
    """The stack's worker looks again for UNKNOWN_ACCOUNT_ATTEMPTS attempts (here the message arrives
    on its last one), dead-letters it with the reason, and a redrive after the account exists applies it."""
    from billing_cli import cli
    from billing_core.adapters.dynamodb_events import DynamoProcessedEvents
    from billing_core.ports.infrastructure import RETRY_ATTEMPTS
    from scheduler_worker.stripe_events import UNKNOWN_ACCOUNT_ATTEMPTS

    services = worker_services(stack)
    queue = services.stripe_events
    sqs = aws_client(stack, "sqs")
    sqs.purge_queue(QueueUrl=queue._dead_letter_queue_url())
    account_id = f"user-{uuid.uuid4().hex[:8]}"
    customer_id = f"cus_{uuid.uuid4().hex[:14]}"
    body = _stripe_event(
        "customer.updated",
        {"id": customer_id, "object": "customer", "email": "neu@example.com", "metadata": {"userId": account_id}},
    )
    event_id = json.loads(body)["id"]

    def billing(*argv: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        assert cli.main(["--stack", str(stack.stack_file), *argv], out=out, err=err) == 0, err.getvalue()
        return out.getvalue()

    queue.send(body, {RETRY_ATTEMPTS: str(UNKNOWN_ACCOUNT_ATTEMPTS - 1)})
    wait_for(lambda: queue.dead_letter_depth() == 1, timeout=60, what="the worker to dead-letter the event")
    listing = billing("events", "dlq")
    assert f"PoisonMessage: unknown account '{account_id}'" in listing and event_id in listing
    ledger = DynamoProcessedEvents(aws_client(stack, "dynamodb"), stack.info["tables"]["events"])
    assert event_applications(ledger, event_id) == 0

    accounts = DynamoAccountRepository(aws_client(stack, "dynamodb"), stack.info["tables"]["payment_methods"])
    accounts.put(account_item(account_id, customer_id))
    try:
        assert "1 message(s) moved back" in billing("events", "redrive", "--reason", "account restored")
        wait_for(lambda: event_applications(ledger, event_id) == 1, timeout=60, what="the redriven event applied")
        restored = accounts.get(account_id)
        assert restored is not None and restored.email == "neu@example.com"
    finally:
        aws_client(stack, "dynamodb").delete_item(
            TableName=stack.info["tables"]["payment_methods"], Key={"userId": {"S": account_id}}
        )
