"""The AWS adapters against real AWS APIs: moto in server mode, over HTTP, with real boto3 clients.

The module's ``aws`` fixture starts its own moto server on a free port and provisions the tables and
queues from ``billing_core.resources``. The storage and queue adapters are covered by the contract
tests they share with their fakes (``tests/contracts``); here are Cost Explorer, Secrets Manager
and the wiring.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import requests

from billing_core import resources
from billing_core.adapters.cost_explorer import CostExplorerCostSource
from billing_core.adapters.secrets_manager import SecretsManagerSecretsProvider
from billing_core.bootstrap import webhook_receiver_ports, worker_ports
from billing_core.ports import EventClaim
from billing_core.settings import Settings
from tests.support.aws import REGION, running_aws

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "aws" / "ce_get_cost_and_usage_by_service.json"


@pytest.fixture(scope="module")
def aws():
    yield from running_aws()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


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
            "STRIPE_EVENTS_QUEUE_URL": aws.create_queue(resources.STRIPE_EVENTS),
            "STRIPE_SECRET_ID": secret_id,
        }
    )
    clients = {name: aws.client(name) for name in ("dynamodb", "sqs", "ce", "secretsmanager")}

    receiver = webhook_receiver_ports(settings, clients=clients)
    worker = worker_ports(settings, clients=clients)
    receiver.stripe_events.send('{"id": "evt_1"}')

    (message,) = worker.stripe_events.receive(wait_seconds=1)
    assert json.loads(message.body) == {"id": "evt_1"}
    assert receiver.secrets.get().webhook_secrets == ("whsec_b",)
    assert worker.events.claim_event("evt_1", owner="w", lease_seconds=60, retention_seconds=60) is EventClaim.CLAIMED


# --- DynamoDB records written by earlier versions ---------------------------------------------------


@pytest.mark.parametrize("written_before", [["base-fee"], []], ids=["a list", "an empty list"])
def test_lines_added_that_an_earlier_version_stored_as_a_list_grows_as_a_set(aws, written_before):
    """An invoice job under way at an upgrade: its record holds linesAdded as a list, which ADD refuses."""
    from billing_core.adapters.dynamodb import DynamoInvoiceRepository, to_attribute_values
    from billing_core.adapters.dynamodb_items import invoice_item
    from tests.support.records import an_invoice

    dynamodb, table = aws.client("dynamodb"), aws.info["tables"]["billing"]
    invoice = an_invoice(account_id=f"user-{uuid.uuid4().hex[:8]}")
    item = {**invoice_item(invoice), "linesAdded": written_before}
    dynamodb.put_item(TableName=table, Item=to_attribute_values(item))
    invoices = DynamoInvoiceRepository(dynamodb, table)

    updated = invoices.update(invoice.account_id, invoice.invoice_id, {"lines_added": frozenset({"aws"})})

    assert updated.stripe.lines_added == frozenset(written_before) | {"aws"}
    stored = dynamodb.get_item(
        TableName=table, Key={"userId": {"S": invoice.account_id}, "invoiceId": {"S": invoice.invoice_id}}
    )["Item"]
    assert sorted(stored["linesAdded"]["SS"]) == sorted({*written_before, "aws"})
