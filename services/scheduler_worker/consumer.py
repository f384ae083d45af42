"""A queue consumer: receive, handle, delete; a message whose handling fails comes back later."""
from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

from billing_core.errors import StorageUnavailable
from billing_core.logging import correlation
from billing_core.ports import MessageQueue, ReceivedMessage

log = logging.getLogger(__name__)

MessageHandler = Callable[[ReceivedMessage], None]
RetryDelay = Callable[[int], int]  # receive count -> seconds until the failed message is shown again


class RedeliverLater(Exception):
    """Raised by a handler that cannot handle a message yet: keep it and show it again after ``seconds``."""

    def __init__(self, seconds: int, reason: str = "") -> None:
        super().__init__(reason or f"redeliver in {seconds} s")
        self.seconds = seconds


def exponential_backoff(receive_count: int, *, base_seconds: int = 1, cap_seconds: int = 60) -> int:
    """``base_seconds`` doubled per receive (1, 2, 4, 8 ... by default), at most ``cap_seconds``."""
    factor: int = 2 ** max(0, receive_count - 1)  # int ** int is typed Any: the exponent is never negative
    return min(cap_seconds, base_seconds * factor)


# A failed message (Stripe or DynamoDB unavailable) comes back after 15, 30, 60, 120 s, then goes to the
# dead-letter queue (maxReceiveCount 5): long enough to ride out a short outage, short enough that a
# broken message does not wait maxReceiveCount x the visibility timeout. Both worker queues use it.
FAILED_MESSAGE_RETRY_DELAY: RetryDelay = functools.partial(exponential_backoff, base_seconds=15, cap_seconds=300)

# The longest long poll SQS allows, and the cheapest: an idle consumer makes 3 requests a minute.
# A consumer notices a stop request only when its receive returns, so a stop takes up to this long.
MAX_RECEIVE_WAIT_SECONDS = 20
RETRY_AFTER_QUEUE_ERROR_SECONDS = 5


class QueueConsumer:
    """Takes messages from one queue in a thread and hands each to ``handle``; deletes it once handled.

    A message is deleted only after ``handle`` returned, so a crash or an error leaves it on the
    queue: SQS shows it again after its visibility timeout, and after maxReceiveCount attempts
    moves it to the dead-letter queue. Handlers must therefore be idempotent.
    """

    def __init__(
        self, name: str, queue: MessageQueue, handle: MessageHandler, stopping: threading.Event,
        *, retry_delay: RetryDelay | None = None, wait_seconds: int = MAX_RECEIVE_WAIT_SECONDS,
    ) -> None:
        if not 1 <= wait_seconds <= MAX_RECEIVE_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be 1..{MAX_RECEIVE_WAIT_SECONDS}")
        self.name = name
        self.wait_seconds = wait_seconds
        self._queue = queue
        self._handle = handle
        self._stopping = stopping
        # None: a failed message waits out the queue's visibility timeout.
        self._retry_delay = retry_delay
        self._thread = threading.Thread(target=self._run, name=f"consumer-{name}", daemon=True)

    def start(self) -> None:
        """Start consuming in a background thread."""
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the consumer to finish the batch in hand after ``stopping`` was set."""
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        """Whether the consumer thread still runs (an unexpected error ends it)."""
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._consume()
        except Exception:
            # The thread ends here; the worker's heartbeat stops, so the health check replaces the task.
            log.exception("consumer stopped by an unexpected error", extra={"queue": self.name})

    def _consume(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._queue.receive(max_messages=10, wait_seconds=self.wait_seconds)
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
            except RedeliverLater as later:
                log.info("message left for redelivery", extra={"queue": self.name, "messageId": message.message_id,
                                                               "reason": str(later), "retryInSeconds": later.seconds})
                self._show_again(message, later.seconds)
                return
            except Exception:
                log.exception(
                    "message handling failed; it will be redelivered",
                    extra={"queue": self.name, "messageId": message.message_id, "receiveCount": message.receive_count},
                )
                if self._retry_delay is not None:
                    self._show_again(message, self._retry_delay(message.receive_count))
                return
            try:
                self._queue.delete(message.receipt_handle)
            except StorageUnavailable:
                # Handled but not deleted: it comes back, and the idempotent handler skips it.
                log.exception("could not delete a handled message", extra={"queue": self.name})

    def _show_again(self, message: ReceivedMessage, seconds: int) -> None:
        try:
            self._queue.change_visibility(message.receipt_handle, seconds)
        except StorageUnavailable:
            # The visibility timeout still brings it back, only later.
            log.warning("could not reschedule a message", extra={"queue": self.name, "messageId": message.message_id})
