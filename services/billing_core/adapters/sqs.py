"""SQS adapter: one ``SqsMessageQueue`` per queue URL, over an injected boto3 SQS client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_core.errors import MessageReceiptStale, StorageUnavailable
from billing_core.ports import DeadLetter, MessageQueue, OutgoingMessage, ReceivedMessage
from billing_core.ports.infrastructure import DEAD_LETTER_REASON, DEAD_LETTERED_AT, MAX_REASON_CHARS, RETRY_ATTEMPTS

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any


# SendMessageBatch takes at most 10 entries, and at most 256 KiB for the whole request.
BATCH_ENTRIES = 10
BATCH_BYTES = 256 * 1024
# Entries SQS refused for a reason of its own (not the sender's) are sent again this often.
BATCH_ATTEMPTS = 4
# Dead letters being listed or moved are hidden this long from anyone else reading the DLQ; a listing
# shows them again at once when it is done.
DLQ_READ_VISIBILITY_SECONDS = 30
DLQ_READ_WAIT_SECONDS = 1
# The system's own attributes that describe a failed delivery; a redriven message starts without them.
_DELIVERY_ATTRIBUTES = frozenset({DEAD_LETTER_REASON, DEAD_LETTERED_AT, RETRY_ATTEMPTS})


def _attributes(attributes: Mapping[str, str]) -> dict[str, Any]:
    return {key: {"DataType": "String", "StringValue": str(value)} for key, value in attributes.items()}


class SqsMessageQueue(MessageQueue):
    """An SQS queue whose dead-letter queue is found through its ``RedrivePolicy``."""

    def __init__(self, client: SQSClient, queue_url: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self.queue_url = queue_url
        self._dlq_url: str | None = None
        self._sleep = sleep
        self.requests_made = 0  # SendMessageBatch/SendMessage calls, for the benchmark

    def __repr__(self) -> str:
        return f"SqsMessageQueue({self.queue_url!r})"

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
            return response
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            text = str(error.response.get("Error", {}).get("Message", "")).lower()
            if code == "ReceiptHandleIsInvalid" or (code == "InvalidParameterValue" and "receipt" in text):
                raise MessageReceiptStale(f"SQS {code} on {operation}") from error
            raise StorageUnavailable(f"SQS {code} on {operation}") from error
        except BotoCoreError as error:
            # Unreachable endpoint, connection reset, timeout: as transient as a 5xx.
            raise StorageUnavailable(f"SQS unreachable on {operation}: {type(error).__name__}") from error

    def send(
        self,
        body: str,
        attributes: Mapping[str, str] | None = None,
        *,
        group_id: str | None = None,
        dedupe_id: str | None = None,
        delay_seconds: int = 0,
    ) -> str:
        """Send one message; attributes travel as SQS string message attributes."""
        if not isinstance(body, str):
            raise TypeError("a message body is text (the sender encodes it)")
        kwargs: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": body}
        if attributes:
            kwargs["MessageAttributes"] = {
                key: {"DataType": "String", "StringValue": str(value)} for key, value in attributes.items()
            }
        if group_id:
            kwargs["MessageGroupId"] = group_id
        if dedupe_id:
            kwargs["MessageDeduplicationId"] = dedupe_id
        if delay_seconds:
            kwargs["DelaySeconds"] = delay_seconds
        message_id: str = self._call("send_message", **kwargs)["MessageId"]
        return message_id

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """``SendMessageBatch`` in requests of up to 10 entries and 256 KiB; refused entries sent again."""
        ids: list[str] = []
        for chunk in _chunks(messages):
            ids.extend(self._send_chunk(chunk))
        return ids

    def _send_chunk(self, chunk: Sequence[OutgoingMessage]) -> list[str]:
        pending = {str(index): message for index, message in enumerate(chunk)}
        sent: dict[str, str] = {}
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            entries = []
            for entry_id, message in pending.items():
                if not isinstance(message.body, str):
                    raise TypeError("a message body is text (the sender encodes it)")
                entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message.body}
                if message.attributes:
                    entry["MessageAttributes"] = _attributes(message.attributes)
                entries.append(entry)
            self.requests_made += 1
            response = self._call("send_message_batch", QueueUrl=self.queue_url, Entries=entries)
            for success in response.get("Successful", []):
                sent[success["Id"]] = success["MessageId"]
                pending.pop(success["Id"], None)
            failed = response.get("Failed", [])
            if any(failure.get("SenderFault") for failure in failed):
                codes = sorted({str(failure.get("Code")) for failure in failed if failure.get("SenderFault")})
                raise ValueError(f"SQS refused messages as malformed: {', '.join(codes)}")
            if not pending:
                break
            if attempt < BATCH_ATTEMPTS:
                self._sleep(0.1 * 2 ** (attempt - 1))
        if pending:
            raise StorageUnavailable(f"SQS kept refusing {len(pending)} message(s) of a batch")
        return [sent[str(index)] for index in range(len(chunk))]

    def receive(
        self, *, max_messages: int = 10, wait_seconds: int = 0, visibility_timeout: int | None = None
    ) -> list[ReceivedMessage]:
        """Long-poll for up to ``max_messages`` (SQS caps it at 10)."""
        kwargs: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": max(1, min(max_messages, 10)),
            "WaitTimeSeconds": wait_seconds,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout
        response = self._call("receive_message", **kwargs)
        return [_received(message) for message in response.get("Messages", [])]

    def delete(self, receipt_handle: str) -> None:
        """Delete a handled message."""
        self._call("delete_message", QueueUrl=self.queue_url, ReceiptHandle=receipt_handle)

    def change_visibility(self, receipt_handle: str, timeout_seconds: int) -> None:
        """Extend (or end, with 0) a message's invisibility."""
        self._call(
            "change_message_visibility",
            QueueUrl=self.queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=timeout_seconds,
        )

    def dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        """Send a copy with ``deadLetterReason`` to the DLQ, then delete the message here.

        A crash between the two leaves the message here too; it is dead-lettered again (a duplicate
        in the DLQ, which a redrive applies once, as every handler is idempotent).
        """
        attributes = {
            **message.attributes,
            DEAD_LETTER_REASON: reason[:MAX_REASON_CHARS] or "no reason given",
            DEAD_LETTERED_AT: _now_iso(),
            RETRY_ATTEMPTS: str(message.attempt),
        }
        self._call(
            "send_message",
            QueueUrl=self._dead_letter_queue_url(),
            MessageBody=message.body,
            MessageAttributes=_attributes(attributes),
        )
        self.delete(message.receipt_handle)

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Read up to ``limit`` dead letters, then make them visible again (they stay in the DLQ)."""
        received = self._drain(self._dead_letter_queue_url(), limit)
        self._show_again_now(self._dead_letter_queue_url(), [message.receipt_handle for message in received])
        return [
            DeadLetter(
                message_id=message.message_id,
                body=message.body,
                reason=message.attributes.get(DEAD_LETTER_REASON),
                dead_lettered_at=message.attributes.get(DEAD_LETTERED_AT),
                attempts=_attempts(message),
            )
            for message in received
        ]

    def redrive(self, *, limit: int | None = None) -> int:
        """Send each dead letter back here as a new message (without its failure attributes), then delete it.

        Only what was dead-lettered before the redrive began moves: a message the worker dead-letters
        again while the redrive runs stays in the DLQ, so the two cannot pass it back and forth forever.
        """
        dlq_url = self._dead_letter_queue_url()
        began = _now_iso()
        moved = 0
        left: list[str] = []  # dead-lettered again since the redrive began: shown again at the end
        while limit is None or moved < limit:
            batch = self.receive_from(dlq_url, max_messages=10 if limit is None else min(10, limit - moved))
            # Later than the second the redrive began (so what was dead-lettered just before still moves).
            again = [message for message in batch if message.attributes.get(DEAD_LETTERED_AT, "") > began]
            left.extend(message.receipt_handle for message in again)
            earlier = [message for message in batch if message not in again]
            if not earlier:
                break
            for message in earlier:
                kept = {k: v for k, v in message.attributes.items() if k not in _DELIVERY_ATTRIBUTES}
                self.send(message.body, kept)
                self._call("delete_message", QueueUrl=dlq_url, ReceiptHandle=message.receipt_handle)
                moved += 1
        self._show_again_now(dlq_url, left)
        return moved

    def receive_from(self, queue_url: str, *, max_messages: int) -> list[ReceivedMessage]:
        """One receive from ``queue_url`` (this queue's DLQ), hiding what it returns for a while.

        It waits up to a second: a receive that waits asks every SQS server, where one that does not
        asks only some and may answer empty while messages are there.
        """
        response = self._call(
            "receive_message",
            QueueUrl=queue_url,
            MaxNumberOfMessages=max(1, min(max_messages, 10)),
            WaitTimeSeconds=DLQ_READ_WAIT_SECONDS,
            VisibilityTimeout=DLQ_READ_VISIBILITY_SECONDS,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        return [_received(message) for message in response.get("Messages", [])]

    def _drain(self, queue_url: str, limit: int) -> list[ReceivedMessage]:
        received: dict[str, ReceivedMessage] = {}
        while len(received) < limit:
            batch = self.receive_from(queue_url, max_messages=limit - len(received))
            fresh = [message for message in batch if message.message_id not in received]
            if not fresh:
                break
            received.update((message.message_id, message) for message in fresh)
        return list(received.values())[:limit]

    def _show_again_now(self, queue_url: str, receipt_handles: Sequence[str]) -> None:
        for start in range(0, len(receipt_handles), BATCH_ENTRIES):
            entries = [
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, handle in enumerate(receipt_handles[start : start + BATCH_ENTRIES])
            ]
            self._call("change_message_visibility_batch", QueueUrl=queue_url, Entries=entries)

    def dead_letter_depth(self) -> int:
        """``ApproximateNumberOfMessages`` of the DLQ named in this queue's ``RedrivePolicy``."""
        return self._depth(self._dead_letter_queue_url())

    def _depth(self, queue_url: str) -> int:
        response = self._call(
            "get_queue_attributes", QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(response["Attributes"]["ApproximateNumberOfMessages"])

    def _dead_letter_queue_url(self) -> str:
        if self._dlq_url is None:
            response = self._call("get_queue_attributes", QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"])
            policy = response.get("Attributes", {}).get("RedrivePolicy")
            if not policy:
                raise StorageUnavailable(f"queue {self.queue_url} has no dead-letter queue")
            arn = json.loads(policy)["deadLetterTargetArn"]
            _, _, _, _, account_id, name = arn.split(":", 5)
            self._dlq_url = self._call("get_queue_url", QueueName=name, QueueOwnerAWSAccountId=account_id)["QueueUrl"]
        return self._dlq_url


def _now_iso() -> str:
    """Now in UTC to the second, as ``deadLetteredAt`` records it (such strings sort by time)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _attempts(message: ReceivedMessage) -> int:
    recorded = message.attributes.get(RETRY_ATTEMPTS, "")
    return int(recorded) if recorded.isdigit() else message.receive_count


def _received(message: Mapping[str, Any]) -> ReceivedMessage:
    return ReceivedMessage(
        message_id=message["MessageId"],
        body=message["Body"],
        receipt_handle=message["ReceiptHandle"],
        receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        attributes={key: value.get("StringValue", "") for key, value in message.get("MessageAttributes", {}).items()},
    )


def _chunks(messages: Sequence[OutgoingMessage]) -> list[list[OutgoingMessage]]:
    """Groups of at most ``BATCH_ENTRIES`` messages whose bodies stay under ``BATCH_BYTES`` together."""
    chunks: list[list[OutgoingMessage]] = []
    current: list[OutgoingMessage] = []
    size = 0
    for message in messages:
        message_size = len(message.body.encode()) + sum(
            len(key.encode()) + len(str(value).encode()) + len("String") for key, value in message.attributes.items()
        )
        if current and (len(current) == BATCH_ENTRIES or size + message_size > BATCH_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(message)
        size += message_size
    if current:
        chunks.append(current)
    return chunks
