"""A queue consumer: receive, handle, delete; a message whose handling fails comes back later."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from billing_core.errors import StorageUnavailable
from billing_core.logging import correlation
from billing_core.ports import MessageQueue, ReceivedMessage

log = logging.getLogger(__name__)

MessageHandler = Callable[[ReceivedMessage], None]

# Long-poll length: also the longest a stop request waits for a consumer to notice it.
RECEIVE_WAIT_SECONDS = 2
RETRY_AFTER_QUEUE_ERROR_SECONDS = 5


class QueueConsumer:
    """Takes messages from one queue in a thread and hands each to ``handle``; deletes it once handled.

    A message is deleted only after ``handle`` returned, so a crash or an error leaves it on the
    queue: SQS shows it again after its visibility timeout, and after maxReceiveCount attempts
    moves it to the dead-letter queue. Handlers must therefore be idempotent.
    """

    def __init__(self, name: str, queue: MessageQueue, handle: MessageHandler, stopping: threading.Event) -> None:
        self.name = name
        self._queue = queue
        self._handle = handle
        self._stopping = stopping
        self._thread = threading.Thread(target=self._run, name=f"consumer-{name}", daemon=True)

    def start(self) -> None:
        """Start consuming in a background thread."""
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the consumer to finish the batch in hand after ``stopping`` was set."""
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._queue.receive(max_messages=10, wait_seconds=RECEIVE_WAIT_SECONDS)
            except StorageUnavailable:
                log.exception("queue unavailable; retrying", extra={"queue": self.name})
                self._stopping.wait(RETRY_AFTER_QUEUE_ERROR_SECONDS)
                continue
            for message in messages:
                self._process(message)

    def _process(self, message: ReceivedMessage) -> None:
        with correlation(message.message_id):
            try:
                self._handle(message)
            except Exception:
                log.exception(
                    "message handling failed; it will be redelivered",
                    extra={"queue": self.name, "messageId": message.message_id, "receiveCount": message.receive_count},
                )
                return
            try:
                self._queue.delete(message.receipt_handle)
            except StorageUnavailable:
                # Handled but not deleted: it comes back, and the idempotent handler skips it.
                log.exception("could not delete a handled message", extra={"queue": self.name})
