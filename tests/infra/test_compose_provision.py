"""The compose stack's one-shot provisioning writes settings the services accept."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from billing_core.settings import Settings
from local_stack import compose_provision


@pytest.fixture
def aws_endpoint() -> Iterator[str]:
    """A moto server of this test's own, on a free port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # In-process moto servers share one state; start from, and leave, an empty account.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    try:
        yield endpoint
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        server.stop()


def _sourced(env_file: Path) -> dict[str, str]:
    """The environment a service container gets after ``set -a && . env_file`` (as compose runs it)."""
    output = subprocess.run(["sh", "-c", f"set -a && . '{env_file}' && env -0"], env={}, capture_output=True,
                            check=True).stdout.decode()
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

    exit_code = compose_provision.main(["--aws-endpoint", aws_endpoint, "--region", "eu-central-1",
                                        "--stripe-mode", "test", "--env-file", str(env_file)])

    assert exit_code == 0
    environ = _sourced(env_file)
    settings = Settings.from_env(environ, require=(
        "billing_jobs_queue_url", "stripe_events_queue_url", "cognito_user_pool_id", "cognito_client_id"))
    assert settings.stripe_api_base is None  # real Stripe test mode
    session = boto3.session.Session(region_name="eu-central-1")
    sqs = session.client("sqs", endpoint_url=aws_endpoint)
    assert sqs.get_queue_attributes(QueueUrl=settings.billing_jobs_queue_url, AttributeNames=["QueueArn"])
    dynamodb = session.client("dynamodb", endpoint_url=aws_endpoint)
    assert dynamodb.describe_table(TableName=settings.billing_table)["Table"]["TableStatus"] == "ACTIVE"
    secret = session.client("secretsmanager", endpoint_url=aws_endpoint).get_secret_value(
        SecretId=settings.stripe_secret_id)
    assert '"whsec_compose"' in secret["SecretString"]


def test_stripe_test_mode_refuses_a_live_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("STRIPE_TEST_SECRET_KEY", "sk_live_oops")
    monkeypatch.setenv("STRIPE_TEST_PUBLISHABLE_KEY", "pk_live_oops")
    monkeypatch.setenv("STRIPE_TEST_WEBHOOK_SECRET", "whsec_x")

    exit_code = compose_provision.main(["--aws-endpoint", "http://127.0.0.1:9", "--stripe-mode", "test",
                                        "--env-file", str(tmp_path / "stack.env")])

    assert exit_code == 1
    assert "test-mode key" in capsys.readouterr().err
    assert not (tmp_path / "stack.env").exists()
