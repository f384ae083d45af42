"""Helpers for the webhook and event tests on the local stack: wiring, servers, a switchable proxy, Stripe data."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import requests
import stripe
from botocore.config import Config

from billing_core import resources
from billing_core.bootstrap import REQUEST_PATH_AWS_CONFIG

if TYPE_CHECKING:
    from billing_core.domain.records import Account, Invoice
from tests.support.waiting import wait_for  # noqa: F401 - re-exported for the tests using this module


def aws_client(stack, service: str, *, endpoint: str | None = None, config: Config | None = None) -> Any:
    """A boto3 client on the stack's moto (or on ``endpoint``, e.g. a proxy in front of it)."""
    from local_stack.environment import aws_session

    return aws_session(stack.info["region"]).client(
        service, endpoint_url=endpoint or stack.info["aws_endpoint"], config=config
    )


def create_queue_pair(stack, name: str, definition: resources.Queue = resources.STRIPE_EVENTS) -> str:
    """A queue with its DLQ and redrive policy shaped like ``definition``, for one test; returns its URL."""
    sqs = aws_client(stack, "sqs")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(definition.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(definition.max_receive_count)}
            ),
        },
    )["QueueUrl"]


def store_webhook_secret(stack, webhook_secrets: list[str]) -> str:
    """A fresh Secrets Manager secret in the shape billing_core reads; returns its id."""
    secret_id = f"webhook-tests/{uuid.uuid4().hex}"
    aws_client(stack, "secretsmanager").create_secret(
        Name=secret_id,
        SecretString=json.dumps(
            {"secret_key": stack.stripe_secret_key, "publishable_key": "pk_test_x", "webhook_secrets": webhook_secrets}
        ),
    )
    return secret_id


def receiver_sqs_client(stack, endpoint: str | None = None) -> Any:
    """An SQS client configured as the webhook receiver's own (fast failure)."""
    return aws_client(stack, "sqs", endpoint=endpoint, config=REQUEST_PATH_AWS_CONFIG)


class SwitchableProxy:
    """A TCP proxy to ``target``; while down, it accepts and drops every connection (the service is "gone")."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self._target = (host, int(port.rstrip("/")))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.up = True
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of the proxy."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        """Stop accepting."""
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.up:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # RST: the caller sees a dropped connection
                continue
            threading.Thread(target=self._pipe_pair, args=(client,), daemon=True).start()

    def _pipe_pair(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._target)
        except OSError:
            client.close()
            return
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


# --- the emulator ----------------------------------------------------------------------------------


@contextlib.contextmanager
def emulator_knobs(stack, **changes: Any) -> Iterator[dict[str, Any]]:
    """Set emulator knobs for the ``with`` block and put the previous values back afterwards."""
    base = stack.info["stripe_api_base"] + "/_emulator/config"
    before = requests.get(base, timeout=5).json()
    requests.post(base, json=changes, timeout=5).raise_for_status()
    try:
        yield changes
    finally:
        requests.post(base, json={name: before[name] for name in changes}, timeout=5).raise_for_status()


def deliveries(stack, **filters: str) -> list[dict[str, Any]]:
    """The emulator's webhook delivery attempts."""
    return requests.get(stack.info["stripe_api_base"] + "/_emulator/deliveries", params=filters, timeout=10).json()[
        "deliveries"
    ]


@contextlib.contextmanager
def stack_endpoint_disabled(stack) -> Iterator[None]:
    """The stack's own webhook endpoint disabled for the ``with`` block (its events are not delivered)."""
    client = stack.stripe_client()
    [endpoint] = [e for e in client.v1.webhook_endpoints.list().data if e.url == stack.info["webhook_url"]]
    client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    try:
        yield
    finally:
        client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": False})


@contextlib.contextmanager
def stack_endpoint_subscribed_to(stack, event_types: list[str]) -> Iterator[None]:
    """The stack's webhook endpoint subscribed to ``event_types`` only (as a production endpoint is) for the block."""
    client = stack.stripe_client()
    [endpoint] = [e for e in client.v1.webhook_endpoints.list().data if e.url == stack.info["webhook_url"]]
    client.v1.webhook_endpoints.update(endpoint.id, params={"enabled_events": event_types})
    try:
        yield
    finally:
        client.v1.webhook_endpoints.update(endpoint.id, params={"enabled_events": list(endpoint.enabled_events)})


def _key() -> dict[str, str]:
    return {"idempotency_key": uuid.uuid4().hex}


def customer_with_card(client: stripe.StripeClient, account_id: str, payment_method: str = "pm_card_visa") -> Any:
    """A Stripe customer of ``account_id`` whose default payment method is one of Stripe's test cards."""
    customer = client.v1.customers.create(
        params={"email": f"{account_id}@example.com", "metadata": {"userId": account_id}}, options=_key()
    )
    attached = client.v1.payment_methods.attach(payment_method, params={"customer": customer.id}, options=_key())
    return client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": attached.id}}, options=_key()
    )


def draft_invoice(client: stripe.StripeClient, customer_id: str, account_id: str, invoice_id: str) -> Any:
    """A two-line EUR draft (20.00 + 17.74) carrying the record's keys in its metadata."""
    invoice = client.v1.invoices.create(
        params={
            "customer": customer_id,
            "currency": "eur",
            "collection_method": "charge_automatically",
            "auto_advance": True,
            "metadata": {"userId": account_id, "invoiceId": invoice_id},
        },
        options=_key(),
    )
    client.v1.invoices.add_lines(
        invoice.id,
        params={
            "lines": [
                {"amount": 2000, "description": "Monatliche Grundgebühr"},
                {"amount": 1774, "description": "AWS Infrastruktur"},
            ]
        },
        options=_key(),
    )
    return invoice


def billing_record(account_id: str, invoice_id: str, stripe_invoice_id: str, status: str = "draft") -> Invoice:
    """The billing run's record of an invoice whose Stripe draft exists."""
    from billing_core.domain.costs import Period
    from billing_core.domain.lifecycle import InvoiceStatus
    from tests.support.records import an_invoice

    now_ms = int(time.time() * 1000)
    return an_invoice(
        account_id=account_id,
        invoice_id=invoice_id,
        period=Period.parse(invoice_id.split("_")[1]),
        stripe_invoice_id=stripe_invoice_id,
        status=InvoiceStatus(status),
        created_at=now_ms,
        updated_at=now_ms,
    )


def account_item(account_id: str, customer_id: str) -> Account:
    """The account of ``account_id``, linked to its Stripe customer."""
    from billing_core.domain.records import Account

    return Account(
        account_id,
        stripe_customer_id=customer_id,
        email=f"{account_id}@example.com",
        created_at=int(time.time() * 1000),
    )
