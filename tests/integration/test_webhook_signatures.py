"""The webhook receiver over HTTP, with the real Secrets Manager and SQS of the local stack.

The receiver runs in this process (its own secret and queue, so each case can be checked on the
queue); the request path is the production one: ``create_app`` over ``webhook_receiver_ports``.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from billing_core.bootstrap import WebhookReceiverUseCases, webhook_receiver_ports
from stripe_emulator import sign_payload
from tests.support.servers import WsgiServer
from tests.support.stripe_events import (
    aws_client,
    create_queue_pair,
    receiver_sqs_client,
    store_webhook_secret,
)
from webhook_receiver import create_app

CURRENT = "whsec_current_" + uuid.uuid4().hex
PREVIOUS = "whsec_previous_" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def receiver(stack):
    """A webhook receiver whose secret lists CURRENT then PREVIOUS (mid-rotation), and its queue."""
    queue_url = create_queue_pair(stack, f"webhook-signatures-{uuid.uuid4().hex[:8]}")
    settings = stack.settings(
        STRIPE_EVENTS_QUEUE_URL=queue_url, STRIPE_SECRET_ID=store_webhook_secret(stack, [CURRENT, PREVIOUS])
    )
    services = webhook_receiver_ports(
        settings, clients={"sqs": receiver_sqs_client(stack), "secretsmanager": aws_client(stack, "secretsmanager")}
    )
    with WsgiServer(create_app(settings, WebhookReceiverUseCases(services))) as server:
        server.webhook_url = server.base_url + "/billing/webhook"
        server.queue_url = queue_url
        server.sqs = aws_client(stack, "sqs")
        yield server


def stripe_event(event_type: str = "invoice.paid") -> tuple[str, str]:
    """A Stripe-shaped event as Stripe serialises it; returns (event id, raw body)."""
    event_id = f"evt_{uuid.uuid4().hex[:24]}"
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": {"id": "in_x", "object": "invoice", "metadata": {}}},
        },
        indent=2,
    )
    return event_id, body


def post(receiver, body: str | bytes, signature: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return requests.post(
        receiver.webhook_url, data=body if isinstance(body, bytes) else body.encode(), headers=headers, timeout=10
    )


def queued(receiver) -> dict[str, dict]:
    """Every message now on the receiver's queue, by event id attribute (read and left visible again)."""
    sqs = receiver.sqs
    found = {}
    while True:
        batch = sqs.receive_message(
            QueueUrl=receiver.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=30,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
            found[attributes.get("eventId", "")] = {"body": message["Body"], "attributes": attributes}
            sqs.delete_message(QueueUrl=receiver.queue_url, ReceiptHandle=message["ReceiptHandle"])


# --- accepted --------------------------------------------------------------------------------------


def test_valid_signature_is_accepted_and_the_raw_event_is_queued_with_its_id_and_type(receiver):
    event_id, body = stripe_event()

    response = post(receiver, body, sign_payload(body, CURRENT, int(time.time())))

    assert response.status_code == 200
    message = queued(receiver)[event_id]
    assert message["body"] == body
    assert message["attributes"] == {"eventId": event_id, "eventType": "invoice.paid"}


def test_signature_with_the_previous_secret_is_accepted_during_rotation(receiver):
    event_id, body = stripe_event()

    assert post(receiver, body, sign_payload(body, PREVIOUS, int(time.time()))).status_code == 200
    assert event_id in queued(receiver)


def test_several_v1_signatures_of_which_one_is_valid_are_accepted(receiver):
    event_id, body = stripe_event()
    now = int(time.time())
    valid = sign_payload(body, CURRENT, now).split(",v1=")[1]
    header = f"t={now},v1={'0' * 64},v1={valid},v1={'f' * 64}"

    assert post(receiver, body, header).status_code == 200
    assert event_id in queued(receiver)


def test_event_type_the_system_does_not_use_is_acknowledged_and_not_queued(receiver):
    event_id, body = stripe_event("customer.created")

    response = post(receiver, body, sign_payload(body, CURRENT, int(time.time())))

    assert response.status_code == 200
    assert response.json() == {"received": True, "enqueued": False}
    assert event_id not in queued(receiver)


def test_a_webhook_secret_removed_from_secrets_manager_is_refused_once_the_receiver_reads_it_again(stack):
    """Revoking a leaked secret: remove it from the secret; the receiver refuses it at its next read."""
    from tests.support.waiting import wait_for

    leaked, kept = "whsec_leaked_" + uuid.uuid4().hex, "whsec_kept_" + uuid.uuid4().hex
    secret_id = store_webhook_secret(stack, [kept, leaked])
    # A 2 s refresh keeps the test short; by default it is 10 s (tests/unit/test_secrets.py).
    settings = stack.settings(
        STRIPE_EVENTS_QUEUE_URL=create_queue_pair(stack, f"revoke-{uuid.uuid4().hex[:8]}"),
        STRIPE_SECRET_ID=secret_id,
        SECRETS_REFRESH_SECONDS="2",
    )
    services = webhook_receiver_ports(
        settings, clients={"sqs": receiver_sqs_client(stack), "secretsmanager": aws_client(stack, "secretsmanager")}
    )
    with WsgiServer(create_app(settings, WebhookReceiverUseCases(services))) as server:
        server.webhook_url = server.base_url + "/billing/webhook"

        def status_signed_with(secret: str) -> int:
            _, body = stripe_event()
            return post(server, body, sign_payload(body, secret, int(time.time()))).status_code

        assert status_signed_with(leaked) == 200
        aws_client(stack, "secretsmanager").put_secret_value(
            SecretId=secret_id,
            SecretString=json.dumps(
                {"secret_key": stack.stripe_secret_key, "publishable_key": "pk_test_x", "webhook_secrets": [kept]}
            ),
        )

        wait_for(
            lambda: status_signed_with(leaked) == 400, timeout=15, interval=0.5, what="the removed secret to be refused"
        )
        assert status_signed_with(kept) == 200
    assert services.secrets.reads <= 15  # a read per refresh interval, not one per refused request


# --- rejected: 400 and nothing queued -------------------------------------------------------------


def _tampered(body: str) -> str:
    return body.replace('"invoice.paid"', '"invoice.voided"')


@pytest.mark.parametrize(
    "case, make_header, make_body",
    [
        ("tampered body", lambda body, now: sign_payload(body, CURRENT, now), _tampered),
        ("wrong secret", lambda body, now: sign_payload(body, "whsec_someone_else", now), None),
        ("timestamp 301 s old", lambda body, now: sign_payload(body, CURRENT, now - 301), None),
        ("timestamp 301 s in the future", lambda body, now: sign_payload(body, CURRENT, now + 301), None),
        ("missing header", lambda body, now: None, None),
        ("empty header", lambda body, now: "", None),
        ("header garbage", lambda body, now: "garbage", None),
        ("timestamp not a number", lambda body, now: "t=yesterday,v1=" + "a" * 64, None),
        ("no v1 signature", lambda body, now: sign_payload(body, CURRENT, now).replace("v1=", "v0="), None),
        ("signature without timestamp", lambda body, now: sign_payload(body, CURRENT, now).split(",", 1)[1], None),
    ],
)
def test_bad_signature_is_rejected_with_400_and_nothing_is_queued(receiver, case, make_header, make_body):
    event_id, body = stripe_event()
    header = make_header(body, int(time.time()))
    sent = make_body(body) if make_body else body

    response = post(receiver, sent, header)

    assert response.status_code == 400, case
    assert response.json()["error"]["code"] == "invalid_signature"
    assert event_id not in queued(receiver)


def test_signed_body_that_is_not_json_is_rejected_with_400(receiver):
    body = "not json at all"

    response = post(receiver, body, sign_payload(body, CURRENT, int(time.time())))

    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        '"a string"',
        "42",
        "null",
        "true",
        "[" * 10_000 + "]" * 10_000,
        '{"a":' * 5_000 + "1" + "}" * 5_000,
        '{"id": "evt_1", "type": "invoice.paid"}',
        '{"id": "evt_1", "type": "invoice.paid", "data": {"object": []}}',
        '{"id": 7, "type": "invoice.paid", "data": {"object": {}}}',
        '{"id": "evt_1", "type": "invoice.paid", "data": {"object": {}}}',
        '{"id": "evt_1", "type": "setup_intent.succeeded", "data": {"object": {"object": "setup_intent", "id": 5}}}',
    ],
    ids=[
        "array",
        "string",
        "number",
        "null",
        "true",
        "deep-array",
        "deep-object",
        "no-data",
        "object-not-a-map",
        "id-not-text",
        "object-without-id",
        "object-id-not-text",
    ],
)
def test_a_signed_body_that_is_no_event_envelope_is_a_400_in_json_and_nothing_is_queued(receiver, body):
    queued(receiver)  # start from an empty queue

    response = post(receiver, body, sign_payload(body, CURRENT, int(time.time())))

    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_payload"
    assert queued(receiver) == {}


def test_a_chunked_body_over_one_mebibyte_is_a_413_from_gunicorn_too(stack):
    def chunks():
        for _ in range(32):
            yield b"x" * (64 * 1024)  # 2 MiB in all, without a Content-Length

    response = requests.post(
        stack.info["webhook_url"],
        data=chunks(),
        timeout=30,
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"},
    )

    assert response.status_code == 413 and response.json()["error"]


def test_body_over_one_mebibyte_is_refused_with_413(receiver):
    body = json.dumps({"id": "evt_big", "type": "invoice.paid", "padding": "x" * (1024 * 1024)})

    response = post(receiver, body, sign_payload(body, CURRENT, int(time.time())))

    assert response.status_code == 413


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_is_refused_with_405(receiver, method):
    response = requests.request(method, receiver.webhook_url, timeout=10)

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


def test_a_method_the_health_check_does_not_take_names_the_ones_it_does(receiver):
    response = requests.post(receiver.base_url + "/healthz", timeout=10)

    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_an_event_too_large_for_sqs_is_queued_as_a_claim_check_of_its_id(receiver):
    from billing_core.use_cases.receive_webhook import claimed_event_id

    queued(receiver)
    event_id = f"evt_{uuid.uuid4().hex[:24]}"
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "invoice.paid",
            "created": int(time.time()),
            "data": {"object": {"id": "in_x", "object": "invoice", "metadata": {"padding": "x" * (700 * 1024)}}},
        }
    )

    response = post(receiver, body, sign_payload(body, CURRENT, int(time.time())))

    assert response.status_code == 200 and response.json()["enqueued"] is True
    message = queued(receiver)[event_id]
    # Queued: the id (a few hundred bytes), not the 700 KiB a real SQS queue (256 KiB) would refuse.
    assert len(message["body"]) < 1024 and claimed_event_id(message["body"]) == event_id
    assert message["attributes"]["claimCheck"] == "stripe"
