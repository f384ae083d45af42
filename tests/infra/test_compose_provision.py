"""The compose stack's one-shot provisioning writes settings the services accept."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
import yaml

from billing_core.bootstrap import policy_from_settings
from billing_core.settings import Settings
from local_stack import compose_provision
from tests.infra.conftest import REPO, moto_server

COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture
def aws_endpoint() -> Iterator[str]:
    """A moto server of this test's own, on a free port."""
    with moto_server() as endpoint:
        yield endpoint


def _sourced(env_file: Path) -> dict[str, str]:
    """The environment a service container gets after ``set -a && . env_file`` (as compose runs it)."""
    output = subprocess.run(
        ["sh", "-c", f"set -a && . '{env_file}' && env -0"], env={}, capture_output=True, check=True
    ).stdout.decode()
    return dict(entry.split("=", 1) for entry in output.split("\0") if "=" in entry)


def test_stripe_test_mode_provisions_aws_and_writes_settings_every_service_accepts(
    aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("STRIPE_TEST_SECRET_KEY", "sk_test_compose")
    monkeypatch.setenv("STRIPE_TEST_PUBLISHABLE_KEY", "pk_test_compose")
    monkeypatch.setenv("STRIPE_TEST_WEBHOOK_SECRET", "whsec_compose")
    env_file = tmp_path / "run" / "stack.env"

    exit_code = compose_provision.main(
        [
            "--aws-endpoint",
            aws_endpoint,
            "--region",
            "eu-central-1",
            "--stripe-mode",
            "test",
            "--env-file",
            str(env_file),
        ]
    )

    assert exit_code == 0
    environ = _sourced(env_file)
    settings = Settings.from_env(
        environ,
        require=("billing_jobs_queue_url", "stripe_events_queue_url", "cognito_user_pool_id", "cognito_client_id"),
    )
    assert settings.stripe_api_base is None  # real Stripe test mode
    assert settings.stripe_js_url == "https://js.stripe.com/v3/"  # test-mode keys need the real Stripe.js
    assert (settings.auth_mode, settings.queue_wait_seconds) == ("local", 2)
    assert policy_from_settings(settings).fx is not None  # the worker bills the seeded USD costs
    session = boto3.session.Session(region_name="eu-central-1")
    sqs = session.client("sqs", endpoint_url=aws_endpoint)
    assert sqs.get_queue_attributes(QueueUrl=settings.billing_jobs_queue_url, AttributeNames=["QueueArn"])
    dynamodb = session.client("dynamodb", endpoint_url=aws_endpoint)
    assert dynamodb.describe_table(TableName=settings.billing_table)["Table"]["TableStatus"] == "ACTIVE"
    secret = session.client("secretsmanager", endpoint_url=aws_endpoint).get_secret_value(
        SecretId=settings.stripe_secret_id
    )
    assert '"whsec_compose"' in secret["SecretString"]


def test_stripe_test_mode_refuses_a_live_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("STRIPE_TEST_SECRET_KEY", "sk_live_oops")
    monkeypatch.setenv("STRIPE_TEST_PUBLISHABLE_KEY", "pk_live_oops")
    monkeypatch.setenv("STRIPE_TEST_WEBHOOK_SECRET", "whsec_x")

    exit_code = compose_provision.main(
        ["--aws-endpoint", "http://127.0.0.1:9", "--stripe-mode", "test", "--env-file", str(tmp_path / "stack.env")]
    )

    assert exit_code == 1
    assert "test-mode key" in capsys.readouterr().err
    assert not (tmp_path / "stack.env").exists()


def test_emulator_mode_settings_load_stripe_js_from_the_emulator_as_the_browser_reaches_it() -> None:
    args = compose_provision.parse_args([])
    settings = Settings.from_env(
        compose_provision.service_settings(
            region="eu-central-1",
            aws_endpoint="http://moto:5000",
            tables={"billing": "billing", "payment-methods": "payment-methods", "events": "events"},
            queues={
                "billing-jobs": "http://moto:5000/000000000000/billing-jobs",
                "stripe-events": "http://moto:5000/000000000000/stripe-events",
            },
            user_pool_id="eu-central-1_pool",
            client_id="client",
            stripe_api_base=args.stripe_api_base,
            stripe_js_url=compose_provision.emulator_stripe_js_url(args.stripe_public_url),
            aws_public_url=args.aws_public_url,
            today=date(2024, 12, 1),
        )
    )

    # The browser reaches the emulator at its --public-url (published port); the services reach it by name.
    command = yaml.safe_load(COMPOSE.read_text())["services"]["stripe-emulator"]["command"]
    public_url = command[command.index("--public-url") + 1]
    assert settings.stripe_js_url == f"{public_url}/v3/"
    assert settings.stripe_api_base == "http://stripe-emulator:12111"
    # Password sign-in goes from the browser to moto's published port, not the compose-network name.
    moto_ports = yaml.safe_load(COMPOSE.read_text())["services"]["moto"]["ports"]
    assert any(port.split(":")[1] == settings.cognito_signin_endpoint.rsplit(":", 1)[1] for port in moto_ports)
    assert (settings.auth_mode, settings.queue_wait_seconds) == ("local", 2)
    assert (settings.fx_rate, settings.fx_source, settings.fx_date) == (
        Decimal("1.0"),
        "local-stack",
        date(2024, 12, 1),
    )
