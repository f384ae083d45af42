"""SQS adapter: one ``SqsMessageQueue`` per queue URL, over an injected boto3 SQS client."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_core.errors import StorageUnavailable
from billing_core.ports import MessageQueue, ReceivedMessage

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any


class SqsMessageQueue(MessageQueue):
    """An SQS queue whose dead-letter queue is found through its ``RedrivePolicy``."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url
        self._dlq_url: str | None = None

    def __repr__(self) -> str:
        return f"SqsMessageQueue({self.queue_url!r})"

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
            return response
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
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
        return [
            ReceivedMessage(
                message_id=message["MessageId"],
                body=message["Body"],
                receipt_handle=message["ReceiptHandle"],
                receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                attributes={
                    key: value.get("StringValue", "")
                    for key, value in message.get("MessageAttributes", {}).items()
                },
            )
            for message in response.get("Messages", [])
        ]

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

    def approximate_depth(self) -> int:
        """``ApproximateNumberOfMessages`` of this queue."""
        return self._depth(self.queue_url)

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
