"""Composition roots: each process gets its ports and its use cases over them; none starts without its settings."""

from __future__ import annotations

import boto3
import pytest

from billing_core.adapters.cost_explorer import CostExplorerCostSource
from billing_core.adapters.dynamodb import DynamoAccountRepository, DynamoInvoiceRepository
from billing_core.adapters.dynamodb_events import DynamoProcessedEvents
from billing_core.adapters.secrets_manager import SecretsManagerSecretsProvider
from billing_core.adapters.sqs import SqsMessageQueue
from billing_core.adapters.stripe_gateway import StripePaymentGateway
from billing_core.bootstrap import (
    ApiUseCases,
    WebhookReceiverUseCases,
    WorkerUseCases,
    api_ports,
    bootstrap_api,
    bootstrap_webhook_receiver,
    bootstrap_worker,
    webhook_receiver_ports,
    worker_ports,
)
from billing_core.settings import Settings, SettingsError
from billing_core.use_cases.operator_invoices import OperatorInvoices
from billing_core.use_cases.receive_webhook import WebhookIntake
from tests.support.fakes import FakeSecretsProvider

JOBS = "http://127.0.0.1:1/000000000000/billing-jobs"
EVENTS = "http://127.0.0.1:1/000000000000/stripe-events"


@pytest.fixture
def session():
    # Credentials are never used: nothing here makes a request.
    return boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-central-1")


def test_the_webhook_receiver_gets_only_the_secrets_and_the_stripe_events_queue(session):
    services = webhook_receiver_ports(Settings.from_env({"STRIPE_EVENTS_QUEUE_URL": EVENTS}), session=session)

    assert isinstance(services.secrets, SecretsManagerSecretsProvider)
    assert isinstance(services.stripe_events, SqsMessageQueue) and services.stripe_events.queue_url == EVENTS
    assert set(vars(services)) == {"settings", "secrets", "stripe_events"}


def test_the_worker_gets_every_adapter_on_the_configured_resources(session):
    settings = Settings.from_env(
        {"BILLING_JOBS_QUEUE_URL": JOBS, "STRIPE_EVENTS_QUEUE_URL": EVENTS, "BILLING_TABLE": "billing-x"}
    )

    services = worker_ports(settings, session=session)

    assert isinstance(services.invoices, DynamoInvoiceRepository) and services.invoices._table == "billing-x"
    assert isinstance(services.accounts, DynamoAccountRepository)
    assert isinstance(services.events, DynamoProcessedEvents)
    assert isinstance(services.costs, CostExplorerCostSource)
    assert isinstance(services.payments, StripePaymentGateway)
    assert (services.billing_jobs.queue_url, services.stripe_events.queue_url) == (JOBS, EVENTS)


def test_the_api_gets_repositories_costs_and_stripe_and_the_jobs_queue_only_if_configured(session):
    base = {"COGNITO_USER_POOL_ID": "eu-central-1_pool", "COGNITO_CLIENT_ID": "client"}

    without_queue = api_ports(Settings.from_env(base), session=session)
    with_queue = api_ports(Settings.from_env({**base, "BILLING_JOBS_QUEUE_URL": JOBS}), session=session)

    assert without_queue.billing_jobs is None
    assert with_queue.billing_jobs.queue_url == JOBS
    assert isinstance(with_queue.payments, StripePaymentGateway)
    # A page waits for the feed at most 2 s to connect and 3 s per read (the worker's feed: 10 s).
    assert with_queue.rate_feed._timeout == (2.0, 3.0)


@pytest.mark.parametrize(
    ("role", "environ", "missing"),
    [
        ("webhook-receiver", {}, "STRIPE_EVENTS_QUEUE_URL"),
        ("scheduler-worker", {"STRIPE_EVENTS_QUEUE_URL": EVENTS}, "BILLING_JOBS_QUEUE_URL"),
        ("scheduler-worker", {"BILLING_JOBS_QUEUE_URL": JOBS}, "STRIPE_EVENTS_QUEUE_URL"),
        ("billing-api", {"COGNITO_CLIENT_ID": "client"}, "COGNITO_USER_POOL_ID"),
        ("billing-api", {"COGNITO_USER_POOL_ID": "pool"}, "COGNITO_CLIENT_ID"),
    ],
)
def test_a_process_without_its_required_settings_does_not_start(session, role, environ, missing):
    builders = {"webhook-receiver": bootstrap_webhook_receiver, "scheduler-worker": bootstrap_worker}
    with pytest.raises(SettingsError, match=f"{role}.*{missing}"):
        builders.get(role, bootstrap_api)(Settings.from_env(environ), session=session)


def test_each_process_gets_its_use_cases_ready_to_call(session):
    api = bootstrap_api(Settings.from_env({"COGNITO_USER_POOL_ID": "pool", "COGNITO_CLIENT_ID": "c"}), session=session)
    receiver = bootstrap_webhook_receiver(Settings.from_env({"STRIPE_EVENTS_QUEUE_URL": EVENTS}), session=session)
    worker = bootstrap_worker(
        Settings.from_env({"BILLING_JOBS_QUEUE_URL": JOBS, "STRIPE_EVENTS_QUEUE_URL": EVENTS}), session=session
    )

    assert (type(api), type(receiver), type(worker)) == (ApiUseCases, WebhookReceiverUseCases, WorkerUseCases)
    assert isinstance(receiver.webhook_intake, WebhookIntake)
    assert isinstance(worker.operator_invoices, OperatorInvoices) and isinstance(
        api.operator_invoices, OperatorInvoices
    )
    assert worker.stripe_events.queue_url == EVENTS


def test_injected_clients_and_secrets_are_used_as_given(session):
    sqs = session.client("sqs", region_name="eu-central-1")
    secrets = FakeSecretsProvider()

    services = webhook_receiver_ports(
        Settings.from_env({"STRIPE_EVENTS_QUEUE_URL": EVENTS}), clients={"sqs": sqs}, secrets=secrets
    )

    assert services.secrets is secrets
    assert services.stripe_events._client is sqs


def test_the_stripe_client_is_built_from_the_secret_key_and_the_configured_base(session):
    built = []

    def factory(api_key, **kwargs):
        built.append((api_key, kwargs))
        return object()

    settings = Settings.from_env(
        {"BILLING_JOBS_QUEUE_URL": JOBS, "STRIPE_EVENTS_QUEUE_URL": EVENTS, "STRIPE_API_BASE": "http://127.0.0.1:12111"}
    )
    services = worker_ports(
        settings, session=session, secrets=FakeSecretsProvider("sk_test_k"), stripe_client_factory=factory
    )
    services.payments._client_for(services.secrets.get().secret_key)

    [(key, options)] = built
    http_client = options.pop("http_client")
    assert (key, options) == (
        "sk_test_k",
        {"max_network_retries": 2, "base_addresses": {"api": "http://127.0.0.1:12111"}},
    )
    assert http_client._timeout == (5, 20)  # the worker's; billing-api's is (2, 5)


def test_a_web_process_waiting_out_two_stalled_aws_calls_still_answers_before_gunicorn_kills_it():
    """Every attempt of two calls (secrets, then the queue or a table) timing out fits in gunicorn's timeout."""
    import runpy
    from pathlib import Path

    from billing_core.bootstrap import REQUEST_PATH_AWS_CONFIG as config

    gunicorn = runpy.run_path(str(Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"))
    attempts = config.retries["total_max_attempts"]
    backoff = 2 * (attempts - 1)  # botocore's standard mode waits at most about this long between attempts

    worst = 2 * (attempts * (config.connect_timeout + config.read_timeout) + backoff)

    assert worst < gunicorn["timeout"], worst
