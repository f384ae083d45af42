"""The local stack (``make dev``): what it provisions, how to reach it, and that it stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import jwt
import pytest
import requests

from billing_core import resources
from billing_core.adapters.cost_explorer import CostExplorerCostSource
from billing_core.domain.costs import PAYER, Period
from local_stack import PortInUse, StackPorts, start_stack
from local_stack.cost_seed import SEED_FILE, month_to_date
from local_stack.processes import pid_is_alive, port_is_free, process_group_members

DESIGN_FIELDS = {
    "aws_endpoint": None,
    "region": None,
    "stripe_api_base": None,
    "stripe_webhook_secret": None,
    "stripe_publishable_key": None,
    "api_url": None,
    "webhook_url": None,
    "cognito": {"user_pool_id", "client_id", "jwks_url", "issuer"},
    "admin": {"username", "password"},
    # The operator issue adds the operator's login and the no-group member's next to the admin's.
    "operator": {"username", "password"},
    "member": {"username", "password"},
    "tables": {"billing", "payment_methods", "events"},
    # The e-mail issue adds the document-mail and mail-events queues and the sender with its SES parts.
    "queues": {"billing_jobs", "stripe_events", "document_mail", "mail_events"},
    # The e-invoice issue adds the bucket of the e-invoice files.
    "buckets": {"einvoices"},
    "mail": {"sender", "configuration_set", "events_topic", "billing_page_url"},
    # The FOCUS issue adds the FOCUS export in S3 and which cost source the stack bills from.
    "focus_export": {"uri", "cost_source", "cache_dir"},
}
# What `billing --stack` runs with: the worker's settings, the example seller and moto's fake credentials.
WORKER_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "BILLING_TABLE",
    "PAYMENT_METHODS_TABLE",
    "EVENTS_TABLE",
    "BILLING_JOBS_QUEUE_URL",
    "STRIPE_EVENTS_QUEUE_URL",
    "STRIPE_API_BASE",
    "ECB_FEED_URL",
    "ECB_HISTORY_URL",
    "COGNITO_USER_POOL_ID",
    "EINVOICE_BUCKET",
    "SELLER_NAME",
    "SELLER_STREET",
    "SELLER_POSTAL_CODE",
    "SELLER_CITY",
    "SELLER_COUNTRY",
    "SELLER_VAT_ID",
    "SELLER_CONTACT_NAME",
    "SELLER_CONTACT_PHONE",
    "SELLER_CONTACT_EMAIL",
    "SEPA_CREDITOR_ID",
    "DOCUMENT_MAIL_QUEUE_URL",
    "MAIL_EVENTS_QUEUE_URL",
    "INVOICE_MAIL_FROM",
    "INVOICE_MAIL_CONFIGURATION_SET",
    "SES_MAX_SEND_RATE",
    "BILLING_PAGE_URL",
    "COST_SOURCE",
    "FOCUS_EXPORT_URI",
    "FOCUS_CACHE_DIR",
}
SHARED_SEED_FILE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "aws" / "ce_get_cost_and_usage_by_service.json"
)
CENT = Decimal("0.01")


def _sign_in(stack, username: str, password: str) -> dict:
    cognito = stack.aws_client("cognito-idp")
    result = cognito.initiate_auth(
        ClientId=stack.info["cognito"]["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    return result["AuthenticationResult"]


def _verified_id_token(stack, token: str) -> dict:
    cognito = stack.info["cognito"]
    signing_key = jwt.PyJWKClient(cognito["jwks_url"]).get_signing_key_from_jwt(token)
    return jwt.decode(
        token, signing_key.key, algorithms=["RS256"], audience=cognito["client_id"], issuer=cognito["issuer"]
    )


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- stack.json ---------------------------------------------------------------------------------


def test_stack_json_holds_exactly_the_fields_design_lists(stack):
    written = json.loads(stack.stack_file.read_text())

    assert written == stack.info
    assert set(written) == set(DESIGN_FIELDS) | {"worker_environment"}
    assert set(written["worker_environment"]) == WORKER_ENVIRONMENT
    assert written["worker_environment"]["BILLING_TABLE"] == written["tables"]["billing"]
    for name, nested in DESIGN_FIELDS.items():
        if nested is None:
            assert isinstance(written[name], str) and written[name], name
        else:
            assert set(written[name]) == nested, name
            assert all(isinstance(v, str) and v for v in written[name].values()), name


def test_stack_json_values_point_at_the_running_parts(stack):
    info = stack.info

    assert info["webhook_url"].startswith("http://127.0.0.1:") and info["webhook_url"].endswith("/billing/webhook")
    assert info["stripe_webhook_secret"].startswith("whsec_")
    assert info["stripe_publishable_key"].startswith("pk_test_")
    dynamodb = stack.aws_client("dynamodb")
    for table in info["tables"].values():
        assert dynamodb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    sqs = stack.aws_client("sqs")
    for url in info["queues"].values():
        policy = json.loads(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
        )
        assert policy["deadLetterTargetArn"].endswith("-dlq")
        assert int(policy["maxReceiveCount"]) == resources.STRIPE_EVENTS.max_receive_count == 10


def test_stripe_secret_in_secrets_manager_matches_the_emulator_keys(stack):
    secret = json.loads(stack.aws_client("secretsmanager").get_secret_value(SecretId="billing/stripe")["SecretString"])

    assert secret["secret_key"] == stack.stripe_secret_key
    assert secret["publishable_key"] == stack.info["stripe_publishable_key"]
    assert secret["webhook_secrets"][0] == stack.info["stripe_webhook_secret"]


def test_webhook_endpoint_is_registered_with_the_emulator(stack):
    endpoints = stack.stripe_client().v1.webhook_endpoints.list()

    assert [e.url for e in endpoints.data] == [stack.info["webhook_url"]]


def test_packaged_seed_month_is_the_shared_seed_month():
    assert SHARED_SEED_FILE.exists(), "../shared/aws must be beside this checkout (CI puts it there)"
    assert json.loads(SEED_FILE.read_text()) == json.loads(SHARED_SEED_FILE.read_text())


def test_reset_empties_tables_queues_and_stripe_and_rolls_the_webhook_secret(stack):
    billing_table = stack.info["tables"]["billing"]
    dead_letters = stack.info["queues"]["billing_jobs"] + "-dlq"
    dynamodb, sqs, stripe_client = stack.aws_client("dynamodb"), stack.aws_client("sqs"), stack.stripe_client()
    dynamodb.put_item(TableName=billing_table, Item={"userId": {"S": "u1"}, "invoiceId": {"S": "inv_2024-11_u1"}})
    sqs.send_message(QueueUrl=dead_letters, MessageBody="{}")
    stripe_client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": str(uuid.uuid4())})
    previous_secret = stack.info["stripe_webhook_secret"]

    stack.reset()

    assert dynamodb.scan(TableName=billing_table)["Items"] == []
    assert (
        sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )
    assert stripe_client.v1.customers.list().data == []
    assert [e.url for e in stripe_client.v1.webhook_endpoints.list().data] == [stack.info["webhook_url"]]
    secret = json.loads(stack.aws_client("secretsmanager").get_secret_value(SecretId="billing/stripe")["SecretString"])
    assert secret["webhook_secrets"] == [stack.info["stripe_webhook_secret"], previous_secret]
    assert stack.info["stripe_webhook_secret"] != previous_secret
    assert json.loads(stack.stack_file.read_text()) == stack.info


# --- services -----------------------------------------------------------------------------------


def test_billing_api_health_endpoint_answers_ok(stack):
    response = requests.get(f"{stack.info['api_url']}/healthz", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_webhook_receiver_health_endpoint_answers_ok(stack):
    base = stack.info["webhook_url"].removesuffix("/billing/webhook")
    response = requests.get(f"{base}/healthz", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_worker_handles_and_deletes_a_stripe_event_sent_to_its_queue(clean_stack):
    # The billing-jobs consumer is covered by the billing run's own tests.
    sqs = clean_stack.aws_client("sqs")
    url = clean_stack.info["queues"]["stripe_events"]
    event_id = f"evt_{uuid.uuid4().hex[:24]}"
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "invoice.paid",
            "created": int(time.time()),
            "data": {"object": {"id": "in_unknown", "object": "invoice", "metadata": {}}},
        }
    )
    sqs.send_message(QueueUrl=url, MessageBody=body)
    log_path = clean_stack.log_path("scheduler-worker")

    def handled_line():
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        return next(
            (
                line
                for line in lines
                if line.get("message") == "stripe event handled" and line.get("eventId") == event_id
            ),
            None,
        )

    line = _wait_for(handled_line, 20, "the worker to log the event")
    assert (line["eventType"], line["outcome"]) == ("invoice.paid", "unknown")

    def queue_empty():
        return sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    _wait_for(queue_empty, 20, "the worker to delete the message")


# --- Cognito ------------------------------------------------------------------------------------


def test_admin_signs_in_with_user_password_auth_using_stack_json(stack):
    admin = stack.info["admin"]

    tokens = _sign_in(stack, admin["username"], admin["password"])

    assert tokens["IdToken"] and tokens["AccessToken"] and tokens["RefreshToken"]


def test_admin_signs_in_with_admin_user_password_auth_using_stack_json(stack):
    info = stack.info
    result = stack.aws_client("cognito-idp").admin_initiate_auth(
        UserPoolId=info["cognito"]["user_pool_id"],
        ClientId=info["cognito"]["client_id"],
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": info["admin"]["username"], "PASSWORD": info["admin"]["password"]},
    )

    assert "ChallengeName" not in result
    assert result["AuthenticationResult"]["IdToken"]


def test_admin_id_token_verifies_against_jwks_url_and_issuer_and_carries_admin_group(stack):
    admin = stack.info["admin"]
    tokens = _sign_in(stack, admin["username"], admin["password"])

    claims = _verified_id_token(stack, tokens["IdToken"])

    assert jwt.get_unverified_header(tokens["IdToken"])["alg"] == "RS256"
    assert claims["token_use"] == "id"
    assert claims["sub"] == stack.admin.sub
    assert "admin" in claims["cognito:groups"]


def test_admin_access_token_verifies_and_names_the_app_client(stack):
    admin = stack.info["admin"]
    token = _sign_in(stack, admin["username"], admin["password"])["AccessToken"]
    cognito = stack.info["cognito"]
    key = jwt.PyJWKClient(cognito["jwks_url"]).get_signing_key_from_jwt(token).key

    claims = jwt.decode(token, key, algorithms=["RS256"], issuer=cognito["issuer"])

    assert claims["token_use"] == "access"
    assert claims["client_id"] == cognito["client_id"]
    assert "admin" in claims["cognito:groups"]


def test_token_signed_by_another_key_does_not_verify_against_jwks_url(stack):
    from cryptography.hazmat.primitives.asymmetric import rsa

    admin = stack.info["admin"]
    genuine = _sign_in(stack, admin["username"], admin["password"])["IdToken"]
    claims = _verified_id_token(stack, genuine)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # Same claims and key id as the genuine token, signed by a key that is not the pool's.
    forged = jwt.encode(
        claims, other_key, algorithm="RS256", headers={"kid": jwt.get_unverified_header(genuine)["kid"]}
    )

    with pytest.raises(jwt.InvalidSignatureError):
        _verified_id_token(stack, forged)


def test_non_admin_user_signs_in_but_is_not_in_admin_group(stack):
    user = stack.non_admin

    claims = _verified_id_token(stack, _sign_in(stack, user.username, user.password)["IdToken"])

    assert claims["sub"] == user.sub != stack.admin.sub
    assert "admin" not in claims.get("cognito:groups", [])


# --- Cost Explorer ------------------------------------------------------------------------------


def test_cost_explorer_returns_the_seed_month_as_previous_month_summing_to_17_74(stack):
    previous = Period.previous(datetime.now(UTC))
    source = CostExplorerCostSource(stack.aws_client("ce"))

    # The run's own query: the billed month and the CORRECTION_MONTHS before it, in one.
    (report,) = source.costs_by_month(previous.shifted(-3).start, previous.end, PAYER)

    by_service = {line.service: line.amount for line in report.lines}
    assert (report.start, report.end) == (previous.start, previous.end)
    assert by_service["AWS Lambda"] == Decimal("5.2312345678")
    assert set(by_service) == {
        "AWS Lambda",
        "Amazon Simple Storage Service",
        "Amazon CloudFront",
        "Amazon DynamoDB",
        "Tax",
    }
    assert sum(amount.quantize(CENT, ROUND_HALF_UP) for amount in by_service.values()) == Decimal("17.74")
    assert report.estimated is False
    assert report.currency == "USD"


def test_the_costs_command_revises_the_billing_query_of_a_month_as_aws_revises_a_month(stack, capsys):
    from local_stack import costs

    august = Period(2022, 8)
    source = CostExplorerCostSource(stack.aws_client("ce"))

    def answer() -> tuple[bool, dict[str, Decimal]]:
        (report,) = source.costs_by_month(august.shifted(-3).start, august.end, PAYER)
        return report.estimated, {line.service: line.amount for line in report.lines}

    assert (
        costs.main(
            [
                "--stack",
                str(stack.stack_file),
                "--period",
                "2022-08",
                "--cost",
                "2022-08:AWS Lambda=10",
                "--estimated",
                "2022-08",
            ]
        )
        == 0
    )
    assert answer() == (True, {"AWS Lambda": Decimal("10")})
    assert (
        costs.main(
            [
                "--stack",
                str(stack.stack_file),
                "--period",
                "2022-08",
                "--cost",
                "2022-08:AWS Lambda=12.50",
                "--cost",
                "2022-08:Amazon S3=-1",
            ]
        )
        == 0
    )
    assert answer() == (False, {"AWS Lambda": Decimal("12.50"), "Amazon S3": Decimal("-1")})
    assert "2022-08 (final): AWS Lambda 12.50 USD, Amazon S3 -1 USD" in capsys.readouterr().out


def test_cost_explorer_returns_an_estimated_month_to_date_prorated_from_the_seed_month(stack):
    today = datetime.now(UTC).date()
    start, end = month_to_date(today)
    share = Decimal((end - start).days) / Decimal(Period.containing(today).days)
    seed_month = {line.service: line.amount for line in stack.seeded_costs.previous_month.lines}

    report = CostExplorerCostSource(stack.aws_client("ce")).costs(start, end, PAYER)

    assert report.estimated is True
    assert {line.service: line.amount for line in report.lines} == {
        service: (amount * share).quantize(Decimal("1E-10")) for service, amount in seed_month.items()
    }


# --- ports and shutdown -------------------------------------------------------------------------


def test_port_in_use_is_a_clear_error_before_anything_starts(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = StackPorts.free()
        ports = StackPorts(moto=ports.moto, emulator=ports.emulator, api=taken, webhook=ports.webhook)

        with pytest.raises(PortInUse) as raised:
            start_stack(ports, tmp_path)

    assert raised.value.taken == {"billing-api": taken}
    assert f"{taken} (billing-api)" in str(raised.value) and "already in use" in str(raised.value)
    assert not (tmp_path / ".local").exists()


def test_make_dev_with_a_port_in_use_exits_with_code_2_and_names_the_port(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "local_stack", "--moto-port", str(taken), "--root", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 2
    assert f"port already in use on 127.0.0.1: {taken} (moto)" in result.stderr
    assert not (tmp_path / ".local").exists()


def _children_of(parent: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
                children.append(int(entry))
    return children


def test_sigterm_to_make_dev_stops_every_process_it_started(tmp_path):
    ports = StackPorts.free()
    command = [
        sys.executable,
        "-m",
        "local_stack",
        "--root",
        str(tmp_path),
        "--moto-port",
        str(ports.moto),
        "--emulator-port",
        str(ports.emulator),
        "--api-port",
        str(ports.api),
        "--webhook-port",
        str(ports.webhook),
    ]
    with open(tmp_path / "make-dev.out", "wb") as out:
        dev = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        stack_file = tmp_path / ".local" / "stack.json"
        _wait_for(lambda: stack_file.exists() or dev.poll() is not None, 90, "stack.json")
        assert dev.poll() is None, (tmp_path / "make-dev.out").read_text()
        # Every child runs in its own process group; gunicorn's workers are in their master's.
        groups = _children_of(dev.pid)
        started = sorted(pid for group in groups for pid in process_group_members(group))
        assert len(groups) == 5
        assert len(started) >= 5 + 2, "gunicorn workers should be among the processes"

        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=60) == 0
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()

    assert [pid for pid in started if pid_is_alive(pid)] == []
    assert not stack_file.exists()
    assert all(port_is_free(port) for port in ports.by_name().values())
    assert "ready in" in (tmp_path / "make-dev.out").read_text()
