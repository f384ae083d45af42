"""The AWS adapters against real AWS APIs: moto in server mode, over HTTP, with real boto3 clients.

The module's ``aws`` fixture starts its own moto server on a free port and provisions the tables and
queues from ``billing_core.resources``; ``aws.info`` has the same keys as the local stack's
stack.json (``aws_endpoint``, ``region``, ``tables``, ``queues``), so these tests can move onto the
shared ``stack`` fixture by replacing the fixture alone.
"""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

from billing_core import resources
from billing_core.adapters.cost_explorer import CostExplorerCostSource
from billing_core.adapters.dynamodb import DynamoAccountRepository, DynamoEventLedger, DynamoInvoiceRepository
from billing_core.adapters.secrets_manager import SecretsManagerSecretsProvider
from billing_core.adapters.sqs import SqsMessageQueue
from billing_core.bootstrap import bootstrap_webhook_receiver, bootstrap_worker
from billing_core.errors import ConditionFailed, InvalidCursor, NotFound
from billing_core.ports import FieldIs
from billing_core.settings import Settings
from local_stack.moto_server import BackgroundMotoServer

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "aws" / "ce_get_cost_and_usage_by_service.json"
REGION = "eu-central-1"


@dataclass
class LocalAws:
    info: dict

    def client(self, service: str):
        return boto3.client(
            service,
            region_name=self.info["region"],
            endpoint_url=self.info["aws_endpoint"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "max_attempts": 2}),
        )


def _create_queue(aws: LocalAws, queue: resources.Queue, suffix: str) -> str:
    """The queue and its DLQ as ``resources`` defines them; returns the queue URL."""
    sqs = aws.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{queue.dlq_name}-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs.create_queue(
        QueueName=f"{queue.logical_name}-{suffix}",
        Attributes={
            "VisibilityTimeout": str(queue.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}),
        },
    )["QueueUrl"]


def _provision(aws: LocalAws, suffix: str) -> None:
    dynamodb = aws.client("dynamodb")
    for table in resources.TABLES:
        name = f"{table.logical_name}-{suffix}"
        dynamodb.create_table(**table.create_table_kwargs(name))
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute}
            )
        aws.info["tables"][table.logical_name.replace("-", "_")] = name
    for queue in resources.QUEUES:
        aws.info["queues"][queue.logical_name.replace("-", "_")] = _create_queue(aws, queue, suffix)


@pytest.fixture(scope="module")
def aws():
    server = BackgroundMotoServer().start()
    local = LocalAws({"aws_endpoint": server.endpoint, "region": REGION, "tables": {}, "queues": {}})
    try:
        _provision(local, uuid.uuid4().hex[:8])
        yield local
    finally:
        server.stop()


@pytest.fixture
def user_id() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def invoices(aws):
    return DynamoInvoiceRepository(aws.client("dynamodb"), aws.info["tables"]["billing"])


@pytest.fixture
def accounts(aws):
    return DynamoAccountRepository(aws.client("dynamodb"), aws.info["tables"]["payment_methods"])


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def ledger(aws, clock):
    return DynamoEventLedger(aws.client("dynamodb"), aws.info["tables"]["events"], clock=clock)


def new_invoice(user_id: str, period: str = "2024-11", **fields) -> dict:
    return {
        "userId": user_id, "invoiceId": f"inv_{period}_{user_id}", "status": "pending",
        "amount": Decimal("37.74"), "awsBreakdown": {"AWS Lambda": Decimal("5.23")},
        "period": {"start": f"{period}-01", "end": "next"}, "createdAt": 1732924800000, **fields,
    }


# --- billing table -------------------------------------------------------------------------------


def test_rerun_for_same_period_creates_no_second_invoice(invoices, user_id):
    assert invoices.create_if_absent(new_invoice(user_id)) is True
    assert invoices.create_if_absent(new_invoice(user_id, amount=Decimal("99.99"))) is False

    stored = invoices.get(user_id, f"inv_2024-11_{user_id}")
    assert stored["amount"] == Decimal("37.74")
    assert stored["awsBreakdown"] == {"AWS Lambda": Decimal("5.23")}


def test_money_is_stored_as_decimal_and_floats_are_refused(invoices, user_id):
    with pytest.raises(TypeError):
        invoices.create_if_absent(new_invoice(user_id, amount=37.74))
    assert invoices.get(user_id, f"inv_2024-11_{user_id}") is None


def test_update_with_a_status_guard_refuses_to_move_status_backward(invoices, user_id):
    invoice_id = f"inv_2024-11_{user_id}"
    invoices.create_if_absent(new_invoice(user_id))
    invoices.update(user_id, invoice_id, {"status": "paid", "paidAt": 1733000000000},
                    conditions=[FieldIs.one_of("status", "pending", "draft", "open")])

    with pytest.raises(ConditionFailed) as refused:
        invoices.update(
            user_id, invoice_id, {"status": "open"}, conditions=[FieldIs.one_of("status", "pending", "draft")]
        )

    assert refused.value.current["status"] == "paid"
    assert invoices.get(user_id, invoice_id)["status"] == "paid"


def test_update_returns_the_new_item_and_removes_fields(invoices, user_id):
    invoice_id = f"inv_2024-11_{user_id}"
    invoices.create_if_absent(new_invoice(user_id, lastError="timeout"))

    updated = invoices.update(
        user_id, invoice_id, {"stripeInvoiceId": "in_1"}, conditions=[FieldIs.absent("stripeInvoiceId")],
        remove=["lastError"],
    )

    assert updated["stripeInvoiceId"] == "in_1" and "lastError" not in updated
    with pytest.raises(ConditionFailed):
        invoices.update(
            user_id, invoice_id, {"stripeInvoiceId": "in_2"}, conditions=[FieldIs.absent("stripeInvoiceId")]
        )


def test_updating_a_missing_invoice_is_not_found_and_creates_nothing(invoices, user_id):
    with pytest.raises(NotFound):
        invoices.update(user_id, "inv_2024-11_nobody", {"status": "paid"})
    assert invoices.get(user_id, "inv_2024-11_nobody") is None


def test_an_invoice_is_found_by_its_stripe_invoice_id(invoices, user_id):
    stripe_id = f"in_{uuid.uuid4().hex[:10]}"
    invoices.create_if_absent(new_invoice(user_id, stripeInvoiceId=stripe_id))

    assert invoices.find_by_stripe_invoice_id(stripe_id)["userId"] == user_id
    assert invoices.find_by_stripe_invoice_id("in_unknown") is None


def test_invoices_are_listed_newest_first_page_by_page(invoices, user_id):
    periods = ["2024-09", "2024-11", "2024-10", "2025-01", "2024-12"]
    for period in periods:
        invoices.create_if_absent(new_invoice(user_id, period))
    invoices.create_if_absent(new_invoice("someone-else"))

    first = invoices.list_for_user(user_id, limit=2)
    second = invoices.list_for_user(user_id, limit=2, cursor=first.next_cursor)
    third = invoices.list_for_user(user_id, limit=2, cursor=second.next_cursor)

    listed = [item["invoiceId"] for page in (first, second, third) for item in page.items]
    assert listed == [f"inv_{p}_{user_id}" for p in sorted(periods, reverse=True)]
    assert third.next_cursor is None or invoices.list_for_user(user_id, cursor=third.next_cursor).items == []


def test_a_forged_or_foreign_cursor_is_refused(invoices, user_id):
    for period in ("2024-10", "2024-11"):
        invoices.create_if_absent(new_invoice(user_id, period))
    cursor = invoices.list_for_user(user_id, limit=1).next_cursor

    with pytest.raises(InvalidCursor):
        invoices.list_for_user("someone-else", cursor=cursor)
    with pytest.raises(InvalidCursor):
        invoices.list_for_user(user_id, cursor="not-a-cursor!")


# --- payment-methods table -----------------------------------------------------------------------


def test_concurrent_setup_requests_record_exactly_one_stripe_customer(accounts, user_id):
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def claim(n: int) -> None:
        barrier.wait(timeout=5)
        results.append(accounts.set_stripe_customer_id_if_absent(user_id, f"cus_{n}", {"email": "a@example.com"}))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(results) == [False] * 5 + [True]
    stored = accounts.get(user_id)
    winner = stored["stripeCustomerId"]
    assert accounts.find_by_stripe_customer_id(winner)["userId"] == user_id
    assert stored["email"] == "a@example.com"


def test_every_account_is_listed_across_scan_pages(aws):
    table = f"payment-methods-list-{uuid.uuid4().hex[:6]}"
    aws.client("dynamodb").create_table(**resources.PAYMENT_METHODS.create_table_kwargs(table))
    accounts = DynamoAccountRepository(aws.client("dynamodb"), table)
    for n in range(5):
        accounts.put({"userId": f"user-{n}", "costScope": {"type": "account"}, "baseFeeOverride": Decimal("15.00")})

    listed = list(accounts.list_accounts(page_size=2))

    assert sorted(a["userId"] for a in listed) == [f"user-{n}" for n in range(5)]
    assert all(a["baseFeeOverride"] == Decimal("15.00") for a in listed)


def test_account_update_sets_display_fields_only_on_an_existing_account(accounts, user_id):
    with pytest.raises(NotFound):
        accounts.update(user_id, {"brand": "visa"})
    accounts.set_stripe_customer_id_if_absent(user_id, "cus_x")

    updated = accounts.update(user_id, {"paymentMethod": "pm_1", "brand": "visa", "last4": "4242"})

    assert (updated["stripeCustomerId"], updated["brand"], updated["last4"]) == ("cus_x", "visa", "4242")


# --- events table --------------------------------------------------------------------------------


def test_a_stripe_event_is_recorded_once(ledger):
    event_id = f"evt_{uuid.uuid4().hex[:10]}"

    assert ledger.record_once(event_id, ttl_seconds=3600) is True
    assert ledger.record_once(event_id, ttl_seconds=3600) is False
    ledger.forget(event_id)
    assert ledger.record_once(event_id, ttl_seconds=3600) is True


def test_a_lease_is_exclusive_until_it_expires(ledger, clock):
    name = f"billing-run-{uuid.uuid4().hex[:6]}"

    assert ledger.acquire_lease(name, "worker-a", ttl_seconds=60) is True
    assert ledger.acquire_lease(name, "worker-b", ttl_seconds=60) is False
    assert ledger.acquire_lease(name, "worker-a", ttl_seconds=60) is True  # renewal
    clock.now += 61
    assert ledger.acquire_lease(name, "worker-b", ttl_seconds=60) is True
    assert ledger.release_lease(name, "worker-a") is False  # no longer a's
    assert ledger.release_lease(name, "worker-b") is True
    assert ledger.acquire_lease(name, "worker-c", ttl_seconds=60) is True


def test_run_records_are_stored_once_and_expire(ledger, clock):
    key = f"run#2024-11#{uuid.uuid4().hex[:6]}"

    assert ledger.put_record(key, {"status": "started", "accounts": 3}, ttl_seconds=100, only_if_absent=True)
    assert not ledger.put_record(key, {"status": "other"}, ttl_seconds=100, only_if_absent=True)
    assert ledger.get_record(key) == {"status": "started", "accounts": Decimal(3)}
    clock.now += 101
    assert ledger.get_record(key) is None
    assert ledger.put_record(key, {"status": "again"}, ttl_seconds=100, only_if_absent=True)


# --- queues --------------------------------------------------------------------------------------


@pytest.fixture
def jobs(aws):
    """A fresh billing-jobs queue per test, so tests never see each other's messages."""
    return SqsMessageQueue(aws.client("sqs"), _create_queue(aws, resources.BILLING_JOBS, uuid.uuid4().hex[:8]))


def test_a_job_round_trips_with_decimal_money_and_attributes(jobs):
    jobs.send({"userId": "user-1", "period": "2024-11", "baseFee": Decimal("20.00")}, {"runId": "run-1"})

    (message,) = jobs.receive(max_messages=10, wait_seconds=1)

    assert message.json() == {"userId": "user-1", "period": "2024-11", "baseFee": "20.00"}
    assert message.attributes == {"runId": "run-1"}
    assert message.receive_count == 1
    jobs.delete(message.receipt_handle)
    assert jobs.receive(wait_seconds=0) == []


def test_a_message_made_visible_again_is_received_again_with_a_higher_count(jobs):
    jobs.send("plain text")
    (first,) = jobs.receive(wait_seconds=1)
    jobs.change_visibility(first.receipt_handle, 0)

    (second,) = jobs.receive(wait_seconds=1)

    assert second.body == "plain text"
    assert second.receive_count == 2


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(aws):
    events = SqsMessageQueue(aws.client("sqs"), _create_queue(aws, resources.STRIPE_EVENTS, uuid.uuid4().hex[:8]))
    events.send({"id": "evt_poison"})
    assert events.dead_letter_depth() == 0

    for _ in range(resources.STRIPE_EVENTS.max_receive_count):
        (message,) = events.receive(wait_seconds=1, visibility_timeout=0)
    assert events.receive(wait_seconds=0) == []

    assert events.dead_letter_depth() == 1
    assert events.approximate_depth() == 0


# --- Cost Explorer -------------------------------------------------------------------------------


def test_the_seeded_month_costs_17_74_from_one_request(aws):
    seed = json.loads(SEED.read_text())
    start, end = date(2024, 11, 1), date(2024, 12, 1)
    requests.post(
        f"{aws.info['aws_endpoint']}/moto-api/static/ce/cost-and-usage-results", json={"results": [seed]}, timeout=10
    ).raise_for_status()
    source = CostExplorerCostSource(aws.client("ce"))

    report = source.costs(start, end)

    cents = Decimal("0.01")
    assert sum(line.amount.quantize(cents, ROUND_HALF_UP) for line in report.lines) == Decimal("17.74")
    assert report.estimated is False
    assert source.requests_made == 1
    assert source.costs(start, end) == report  # same query, same seeded answer


def test_moto_has_no_forecast_so_there_is_none(aws):
    source = CostExplorerCostSource(aws.client("ce"))
    assert source.forecast(date(2024, 11, 15), date(2024, 12, 1)) is None


# --- Secrets Manager and bootstrap ---------------------------------------------------------------


def _stripe_secret(secret_key: str, webhook: list[str]) -> str:
    return json.dumps({"secret_key": secret_key, "publishable_key": "pk_test_1", "webhook_secrets": webhook})


def test_secrets_are_read_from_secrets_manager_and_rotation_is_picked_up(aws, clock):
    client = aws.client("secretsmanager")
    secret_id = f"billing/stripe-{uuid.uuid4().hex[:6]}"
    client.create_secret(Name=secret_id, SecretString=_stripe_secret("sk_test_one", ["whsec_one"]))
    provider = SecretsManagerSecretsProvider(client, secret_id, refresh_seconds=300, clock=clock)

    assert provider.get().secret_key == "sk_test_one"
    client.put_secret_value(SecretId=secret_id, SecretString=_stripe_secret("sk_test_two", ["whsec_two", "whsec_one"]))
    assert provider.get().secret_key == "sk_test_one"  # cached
    clock.now += 300
    assert provider.get().webhook_secrets == ("whsec_two", "whsec_one")


def test_bootstrapped_worker_and_receiver_share_the_stripe_events_queue(aws):
    secret_id = f"billing/stripe-{uuid.uuid4().hex[:6]}"
    aws.client("secretsmanager").create_secret(Name=secret_id, SecretString=_stripe_secret("sk_test_b", ["whsec_b"]))
    settings = Settings.from_env(
        {
            "AWS_REGION": REGION,
            "BILLING_TABLE": aws.info["tables"]["billing"],
            "PAYMENT_METHODS_TABLE": aws.info["tables"]["payment_methods"],
            "EVENTS_TABLE": aws.info["tables"]["events"],
            "BILLING_JOBS_QUEUE_URL": aws.info["queues"]["billing_jobs"],
            "STRIPE_EVENTS_QUEUE_URL": _create_queue(aws, resources.STRIPE_EVENTS, uuid.uuid4().hex[:8]),
            "STRIPE_SECRET_ID": secret_id,
        }
    )
    clients = {name: aws.client(name) for name in ("dynamodb", "sqs", "ce", "secretsmanager")}

    receiver = bootstrap_webhook_receiver(settings, clients=clients)
    worker = bootstrap_worker(settings, clients=clients)
    receiver.stripe_events.send('{"id": "evt_1"}')

    (message,) = worker.stripe_events.receive(wait_seconds=1)
    assert message.json() == {"id": "evt_1"}
    assert receiver.secrets.get().webhook_secrets == ("whsec_b",)
    assert worker.ledger.record_once("evt_1", 60) is True
