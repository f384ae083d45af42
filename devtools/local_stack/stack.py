"""Start the whole system on 127.0.0.1: moto, the Stripe emulator, provisioning, the three services.

``start_stack()`` is the one code path behind both ``make dev`` and the tests' ``stack`` fixture.
Order, and why:

    ports free? ── no ──> PortInUse, nothing started
    moto + emulator start together (independent)
    moto up ──> tables, queues, Cognito pool and users
    emulator up ──> keys known; webhook endpoint registered ──> whsec_...
    both ──> Stripe secret in Secrets Manager (the services read it at start) ──> Cost Explorer seeded
    billing-api, webhook-receiver, scheduler-worker start together ──> all healthy
    .local/stack.json written last, so a reader never sees a stack that is not up yet
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
import stripe

from billing_core.adapters.dynamodb_events import DynamoPeriodRates
from billing_core.domain.costs import Period
from billing_core.domain.fx import FxRate, PeriodRate
from billing_core.settings import Settings
from local_stack.cost_seed import SeededCosts, seed_cost_explorer
from local_stack.environment import aws_session, child_environment, service_environment
from local_stack.errors import StackError
from local_stack.focus_seed import seed_focus_export
from local_stack.processes import HOST, ChildProcess, ensure_ports_free, free_ports, stop_together
from local_stack.provision import (
    UserLogin,
    create_cognito_pool,
    create_einvoice_bucket,
    create_mail_delivery,
    create_queues,
    create_tables,
    random_key,
    register_webhook_endpoint,
    rotate_webhook_secret,
    store_stripe_secret,
)
from local_stack.worker_settings import command_environment

DEFAULT_REGION = "eu-central-1"
GUNICORN_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"
WEBHOOK_PATH = "/billing/webhook"
ADMIN_PAGE_PATH = "/admin/billing"
# Tests reset the stack between tests by purging queues; real SQS allows one purge a minute.
# Nothing in the system purges, so relaxing this hides no behaviour the code relies on.
MOTO_SETTINGS = {"MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false"}
READY_TIMEOUT_SECONDS = 60.0
WORKER_READY_MESSAGE = '"worker ready"'
BACKENDS = ("moto", "stripe-emulator")
# Stripe retries a failed delivery for three days; the emulator's compressed schedule (up to 8 s
# apart) with 16 attempts keeps retrying for about 80 s, so a receiver that briefly rejects
# signatures while the webhook secret rotates (the stack's reset) loses nothing.
EMULATOR_WEBHOOK_MAX_ATTEMPTS = 16
# The ECB rates the local stack serves (ecb_usd_2026.xml) end on 2026-10-30, so last month, the one
# `make demo` bills, has no ECB rate offline. The stack pins it the way an operator pins a rate: a
# manual 1.0 stored for that period, so the seed example stays 17.74 EUR. Every month the feed
# covers is billed at the ECB's rate.
PINNED_RATE = Decimal("1.0")
PINNED_RATE_SOURCE = "local-stack"


@dataclass(frozen=True)
class StackPorts:
    """The four ports the stack listens on, all on 127.0.0.1."""

    moto: int = 4566
    emulator: int = 12111
    api: int = 8000
    webhook: int = 8001

    @classmethod
    def free(cls) -> StackPorts:
        """Four ports that are free right now (tests, and stacks running side by side)."""
        return cls(*free_ports(4))

    def by_name(self) -> dict[str, int]:
        """Port per component, for messages."""
        return {
            "moto": self.moto,
            "stripe-emulator": self.emulator,
            "billing-api": self.api,
            "webhook-receiver": self.webhook,
        }


@dataclass
class Stack:
    """A running local stack: what ``stack.json`` says, plus what only tests may know."""

    info: dict[str, Any]  # exactly the contents of .local/stack.json
    admin: UserLogin
    non_admin: UserLogin  # signs in fine, but is not in the admin group
    operator: UserLogin  # in the operator group: /operator for every account
    stripe_secret_key: str
    seeded_costs: SeededCosts
    root: Path
    processes: dict[str, ChildProcess] = field(repr=False)
    startup_seconds: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    @property
    def stack_file(self) -> Path:
        """Where ``info`` is written: ``<root>/.local/stack.json``."""
        return self.root / ".local" / "stack.json"

    @property
    def logs_dir(self) -> Path:
        """The directory with one log file per child process."""
        return self.root / ".local" / "logs"

    def log_path(self, name: str) -> Path:
        """The log file of child ``name`` (moto, stripe-emulator, billing-api, ...)."""
        return self.processes[name].log_path

    def aws_client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the stack's moto, with the local fake credentials."""
        return aws_session(self.info["region"]).client(service, endpoint_url=self.info["aws_endpoint"])

    def settings(self, **environment: str) -> Settings:
        """The ``Settings`` the stack's services run with; ``environment`` overrides variables by name."""
        return Settings.from_env(
            {
                "AWS_REGION": self.info["region"],
                "AWS_ENDPOINT_URL": self.info["aws_endpoint"],
                **service_environment(self.info),
                **environment,
            }
        )

    def stripe_client(self) -> stripe.StripeClient:
        """The official Stripe SDK pointed at the stack's emulator."""
        return stripe.StripeClient(
            self.stripe_secret_key, base_addresses={"api": self.info["stripe_api_base"]}, max_network_retries=0
        )

    def reset(self) -> None:
        """Empty queues, tables and the Stripe emulator; users, seeded costs and keys stay."""
        self.reset_aws()
        self.reset_stripe()

    @property
    def seeded_period(self) -> Period:
        """The month the stack seeded with the seed example (last month when it started)."""
        return Period.containing(self.seeded_costs.previous_month.start)

    def pin_rate(self, period: Period, rate: Decimal = PINNED_RATE) -> PeriodRate:
        """Store ``rate`` (EUR per USD, manual) as ``period``'s rate, unless the period has one; returns the stored."""
        return pin_rate(self.aws_client("dynamodb"), self.info["tables"]["events"], period, rate)

    def reset_aws(self) -> None:
        """Empty every queue (and its dead-letter queue) and every table; pin last month's rate again."""
        sqs = self.aws_client("sqs")
        for url in self.info["queues"].values():
            for queue_url in (url, url + "-dlq"):
                sqs.purge_queue(QueueUrl=queue_url)
        dynamodb = self.aws_client("dynamodb")
        for table in self.info["tables"].values():
            _empty_table(dynamodb, table)
        s3 = self.aws_client("s3")
        for bucket in self.info.get("buckets", {}).values():
            _empty_bucket(s3, bucket)
        self.pin_rate(self.seeded_period)

    def reset_stripe(self) -> None:
        """Forget every Stripe object, then register the webhook endpoint again.

        The emulator's reset drops the webhook endpoint too, and a new endpoint gets a new signing
        secret, so the secret is rotated the way a real one is: the new one first in Secrets
        Manager, the previous one kept, so services that still cache the old list verify again
        after their next refresh. ``info`` and stack.json follow.
        """
        requests.post(f"{self.info['stripe_api_base']}/_emulator/reset", timeout=10).raise_for_status()
        new_secret = register_webhook_endpoint(
            self.stripe_secret_key, self.info["stripe_api_base"], self.info["webhook_url"]
        )
        rotate_webhook_secret(self.aws_client("secretsmanager"), new_secret)
        self.info["stripe_webhook_secret"] = new_secret
        _write_json_atomically(self.stack_file, self.info)

    def stop(self) -> None:
        """Stop every process the stack started (services first, then moto and the emulator); remove stack.json."""
        if self._stopped:
            return
        self._stopped = True
        _stop_all(self.processes)
        self.stack_file.unlink(missing_ok=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_stack(
    ports: StackPorts | None = None,
    root: Path | str | None = None,
    *,
    region: str = DEFAULT_REGION,
    today: date | None = None,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
) -> Stack:
    """Start moto, the Stripe emulator and the three services, provision them and write stack.json.

    ``root`` is where ``.local/`` goes (default: the current directory). Raises ``PortInUse``
    before starting anything if a port is taken, and ``StackError`` (after stopping whatever it
    had started) if a part fails to come up. Children are tied to the calling thread's life
    (they get SIGTERM if it dies), so call this from the main thread or another long-lived one.
    """
    began = time.monotonic()
    ports = ports or StackPorts()
    root = Path(root or Path.cwd()).resolve()
    today = today or datetime.now(UTC).date()
    local_dir = root / ".local"
    logs_dir = local_dir / "logs"
    ensure_ports_free(ports.by_name())
    logs_dir.mkdir(parents=True, exist_ok=True)
    (local_dir / "stack.json").unlink(missing_ok=True)

    aws_endpoint = f"http://{HOST}:{ports.moto}"
    stripe_api_base = f"http://{HOST}:{ports.emulator}"
    api_url = f"http://{HOST}:{ports.api}"
    webhook_url = f"http://{HOST}:{ports.webhook}{WEBHOOK_PATH}"
    secret_key, publishable_key = random_key("sk_test_"), random_key("pk_test_")
    base_env = child_environment(region, aws_endpoint)

    processes: dict[str, ChildProcess] = {}

    def launch(name: str, argv: list[str], env: dict[str, str]) -> ChildProcess:
        log_path = logs_dir / f"{name}.log"
        log_path.write_bytes(b"")  # each start begins a fresh log, so readers see only this run
        process = ChildProcess(name, argv, env, log_path)
        processes[name] = process
        process.start()
        return process

    try:
        moto = launch(
            "moto",
            [sys.executable, "-m", "local_stack.moto_server", "-H", HOST, "-p", str(ports.moto)],
            {**base_env, **MOTO_SETTINGS},
        )
        emulator = launch(
            "stripe-emulator",
            [
                sys.executable,
                "-m",
                "stripe_emulator",
                "--host",
                HOST,
                "--port",
                str(ports.emulator),
                "--secret-key",
                secret_key,
                "--publishable-key",
                publishable_key,
                "--webhook-max-attempts",
                str(EMULATOR_WEBHOOK_MAX_ATTEMPTS),
            ],
            base_env,
        )
        moto.wait_until_ready(lambda: _answers(f"{aws_endpoint}/moto-api/data.json"), ready_timeout)
        session = aws_session(region)
        tables = create_tables(session.client("dynamodb", endpoint_url=aws_endpoint))
        queues = create_queues(session.client("sqs", endpoint_url=aws_endpoint))
        bucket = create_einvoice_bucket(session.client("s3", endpoint_url=aws_endpoint))
        mail = create_mail_delivery(
            session.client("sesv2", endpoint_url=aws_endpoint),
            session.client("sns", endpoint_url=aws_endpoint),
            session.client("sqs", endpoint_url=aws_endpoint),
            queues["mail-events"],
        )
        pool = create_cognito_pool(session.client("cognito-idp", endpoint_url=aws_endpoint))
        pin_rate(session.client("dynamodb", endpoint_url=aws_endpoint), tables["events"], Period.previous(today))

        emulator.wait_until_ready(lambda: _answers(f"{stripe_api_base}/healthz"), ready_timeout)
        webhook_secret = register_webhook_endpoint(secret_key, stripe_api_base, webhook_url)
        store_stripe_secret(
            session.client("secretsmanager", endpoint_url=aws_endpoint),
            secret_key=secret_key,
            publishable_key=publishable_key,
            webhook_secret=webhook_secret,
        )
        seeded = seed_cost_explorer(aws_endpoint, session.client("ce", endpoint_url=aws_endpoint), today)
        focus_export = seed_focus_export(session.client("s3", endpoint_url=aws_endpoint), today)

        info = {
            "aws_endpoint": aws_endpoint,
            "region": region,
            "stripe_api_base": stripe_api_base,
            "stripe_webhook_secret": webhook_secret,
            "stripe_publishable_key": publishable_key,
            "api_url": api_url,
            "webhook_url": webhook_url,
            "cognito": {
                "user_pool_id": pool.user_pool_id,
                "client_id": pool.client_id,
                "jwks_url": f"{aws_endpoint}/{pool.user_pool_id}/.well-known/jwks.json",
                # moto signs tokens with the issuer real Cognito uses, whatever its own address is.
                "issuer": f"https://cognito-idp.{region}.amazonaws.com/{pool.user_pool_id}",
            },
            "admin": {"username": pool.admin.username, "password": pool.admin.password},
            # Beyond the design's fields: the operator's login, and a user in no group (signs in, may do nothing).
            "operator": {"username": pool.operator.username, "password": pool.operator.password},
            "member": {"username": pool.non_admin.username, "password": pool.non_admin.password},
            "tables": {
                "billing": tables["billing"],
                "payment_methods": tables["payment-methods"],
                "events": tables["events"],
            },
            "queues": {
                "billing_jobs": queues["billing-jobs"],
                "stripe_events": queues["stripe-events"],
                "document_mail": queues["document-mail"],
                "mail_events": queues["mail-events"],
            },
            "buckets": {"einvoices": bucket},
            "mail": {**mail, "billing_page_url": f"{api_url}/admin/billing"},
            # Both cost sources are there; COST_SOURCE (cost-explorer by default) says which one bills.
            "focus_export": {
                "uri": focus_export,
                "cost_source": os.environ.get("COST_SOURCE") or "cost-explorer",
                "cache_dir": str(local_dir / "focus-cache"),
            },
        }
        info["worker_environment"] = command_environment(info)  # what `billing --stack` reads
        service_env = {**base_env, **service_environment(info)}
        api = launch(
            "billing-api",
            _gunicorn("billing_api:create_app()", "billing-api"),
            {**service_env, "GUNICORN_BIND": f"{HOST}:{ports.api}"},
        )
        receiver = launch(
            "webhook-receiver",
            _gunicorn("webhook_receiver:create_app()", "webhook-receiver"),
            {**service_env, "GUNICORN_BIND": f"{HOST}:{ports.webhook}"},
        )
        worker = launch("scheduler-worker", [sys.executable, "-m", "scheduler_worker"], service_env)
        api.wait_until_ready(lambda: _answers(f"{api_url}/healthz"), ready_timeout)
        receiver.wait_until_ready(lambda: _answers(f"http://{HOST}:{ports.webhook}/healthz"), ready_timeout)
        worker.wait_until_ready(lambda: WORKER_READY_MESSAGE in _read(worker.log_path), ready_timeout)

        _write_json_atomically(local_dir / "stack.json", info)
    except BaseException as error:
        # Whatever failed (or a Ctrl-C during start-up), leave nothing running.
        _stop_all(processes)
        if isinstance(error, Exception) and not isinstance(error, StackError):
            raise StackError(f"provisioning failed: {type(error).__name__}: {error}") from error
        raise

    return Stack(
        info=info,
        admin=pool.admin,
        non_admin=pool.non_admin,
        operator=pool.operator,
        stripe_secret_key=secret_key,
        seeded_costs=seeded,
        root=root,
        processes=processes,
        startup_seconds=time.monotonic() - began,
    )


def pin_rate(dynamodb: Any, events_table: str, period: Period, rate: Decimal = PINNED_RATE) -> PeriodRate:
    """Store a manual ``rate`` for ``period`` in the stack's rate store unless one is stored; returns the stored."""
    fx = FxRate(rate, PINNED_RATE_SOURCE, datetime.now(UTC).date())
    return DynamoPeriodRates(dynamodb, events_table).put_if_absent(PeriodRate(period, fx))


def _gunicorn(app: str, name: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG), "--name", name, app]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _write_json_atomically(path: Path, content: dict[str, Any]) -> None:
    # Readers poll for this file; they must never see half of it. It holds a password: owner only.
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(json.dumps(content, indent=2) + "\n")
    partial.replace(path)


def _stop_all(processes: dict[str, ChildProcess]) -> None:
    # Services first, so nothing they still do hits a backend that is already gone.
    services = [p for name, p in processes.items() if name not in BACKENDS]
    stop_together(services)
    stop_together([p for name, p in processes.items() if name in BACKENDS])


def _empty_bucket(s3: Any, bucket: str) -> None:
    """Delete every version of every file (the bucket is versioned, as in AWS)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions = page.get("Versions", []) + page.get("DeleteMarkers", [])
        if versions:
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]}
            )


def _empty_table(dynamodb: Any, table: str) -> None:
    key_names = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
    placeholders = {f"#key{i}": name for i, name in enumerate(key_names)}
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table, ProjectionExpression=", ".join(placeholders), ExpressionAttributeNames=placeholders
    )
    for page in pages:
        for item in page["Items"]:
            dynamodb.delete_item(TableName=table, Key={name: item[name] for name in key_names})
