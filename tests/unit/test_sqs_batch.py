"""SendMessageBatch as AWS answers it: ten entries a request, refused entries sent again, none dropped."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from billing_core.adapters.sqs import SqsMessageQueue
from billing_core.errors import StorageUnavailable
from billing_core.ports import OutgoingMessage

URL = "https://sqs.eu-central-1.amazonaws.com/123456789012/billing-jobs"


@pytest.fixture
def client():
    return boto3.client("sqs", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")


def entries(ids):
    return [{"Id": str(i), "MessageBody": f"m{i}"} for i in ids]


def test_twenty_five_messages_take_three_requests(client):
    queue = SqsMessageQueue(client, URL, sleep=lambda _: None)
    with Stubber(client) as stub:
        for chunk in (range(10), range(10), range(5)):
            stub.add_response(
                "send_message_batch",
                {
                    "Successful": [{"Id": str(i), "MessageId": f"id-{i}", "MD5OfMessageBody": "x"} for i in chunk],
                    "Failed": [],
                },
                {"QueueUrl": URL, "Entries": ANY},
            )

        ids = queue.send_batch([OutgoingMessage(f"m{i}") for i in range(25)])

    assert len(ids) == 25 and queue.requests_made == 3


def test_an_entry_sqs_refused_for_its_own_reasons_is_sent_again(client):
    sleeps = []
    queue = SqsMessageQueue(client, URL, sleep=sleeps.append)
    with Stubber(client) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": "0", "MessageId": "id-0", "MD5OfMessageBody": "x"}],
                "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}],
            },
            {"QueueUrl": URL, "Entries": entries([0, 1])},
        )
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": "1", "MessageId": "id-1", "MD5OfMessageBody": "x"}],
                "Failed": [],
            },
            {"QueueUrl": URL, "Entries": entries([1])},
        )

        ids = queue.send_batch([OutgoingMessage("m0"), OutgoingMessage("m1")])

    assert ids == ["id-0", "id-1"] and len(sleeps) == 1


def test_an_entry_still_refused_after_the_attempts_raises(client):
    queue = SqsMessageQueue(client, URL, sleep=lambda _: None)
    with Stubber(client) as stub:
        for _ in range(4):
            stub.add_response(
                "send_message_batch",
                {
                    "Successful": [],
                    "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError"}],
                },
                {"QueueUrl": URL, "Entries": entries([0])},
            )

        with pytest.raises(StorageUnavailable, match="kept refusing 1"):
            queue.send_batch([OutgoingMessage("m0")])


def test_a_malformed_entry_is_an_error_not_a_retry(client):
    queue = SqsMessageQueue(client, URL, sleep=lambda _: None)
    with Stubber(client) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [],
                "Failed": [{"Id": "0", "SenderFault": True, "Code": "InvalidMessageContents"}],
            },
            {"QueueUrl": URL, "Entries": entries([0])},
        )

        with pytest.raises(ValueError, match="InvalidMessageContents"):
            queue.send_batch([OutgoingMessage("m0")])


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ReceiptHandleIsInvalid", "The input receipt handle is invalid."),
        (
            "InvalidParameterValue",
            "Value r-1 for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.",
        ),
    ],
)
def test_a_receipt_sqs_no_longer_knows_is_stale_not_an_outage(client, code, message):
    from billing_core.errors import MessageReceiptStale

    queue = SqsMessageQueue(client, URL)
    with Stubber(client) as stub:
        stub.add_client_error("delete_message", code, message, http_status_code=400)
        stub.add_client_error(
            "delete_message", "InternalError", "We encountered an internal error.", http_status_code=500
        )
        with pytest.raises(MessageReceiptStale):
            queue.delete("r-1")
        with pytest.raises(StorageUnavailable) as outage:
            queue.delete("r-1")

    assert not isinstance(outage.value, MessageReceiptStale)
