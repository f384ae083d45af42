"""A queue consumer: receive, handle, delete; what a failure means decides when, or whether, a message comes back.

Three kinds of failure, three outcomes:

- **transient** (Stripe 5xx/429/timeouts, AWS throttling or unreachable): the message is shown again
  after a back-off that doubles up to ``RETRY_MAX_SECONDS`` (hours). It is never dead-lettered for
  it: SQS counts every receive toward the queue's ``maxReceiveCount``, so from its
  ``RENEW_AFTER_RECEIVES``-th receive on a retried message is sent anew (a fresh receive count,
  carrying its attempt number in ``retryAttempts``) and the old copy deleted.
- **poison** (a body that is no Stripe event or invoice job, an event Stripe does not know, an event
  whose account is still unknown after its handler looked again a few times): it can never succeed,
  so it goes to the dead-letter queue at once with its reason.
- **unexpected** (anything else: a bug, a refusal): retried like a transient one, and dead-lettered
  with its reason once a copy has failed ``UNEXPECTED_FAILURE_LIMIT`` receives.

The queue's own redrive policy stays as the backstop for a message whose handling kills the worker:
it never reaches an ``except`` here, and SQS moves it after ``maxReceiveCount`` receives (no reason).

A message is hidden only briefly (``VISIBILITY_SECONDS``) and its visibility is extended while it is
handled, and each thread takes only the one message it can start now: a dead worker's message is
back within seconds, not minutes.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from billing_core.errors import (
    CostSourceUnavailable,
    ExchangeRateUnavailable,
    InvalidStripeObject,
    MailThrottled,
    MessageReceiptStale,
    SecretsUnavailable,
    StorageUnavailable,
    StripeAuthenticationFailed,
    StripeUnavailable,
    UpdateConflict,
)
from billing_core.logging import correlation
from billing_core.ports import MessageQueue, ReceivedMessage
from billing_core.ports.infrastructure import RETRY_ATTEMPTS
from billing_core.renewal import RenewedWhile
from billing_core.use_cases.document_mail import InvalidMailMessage
from billing_core.use_cases.invoice_messages import InvoiceMessageInvalid

log = logging.getLogger(__name__)

MessageHandler = Callable[[ReceivedMessage], None]
RetryDelay = Callable[[int], int]  # attempt number -> seconds until the failed message is shown again


class RedeliverLater(Exception):
    """Raised by a handler that cannot handle a message yet: keep it and show it again after ``seconds``."""

    def __init__(self, seconds: int, reason: str = "") -> None:
        super().__init__(reason or f"redeliver in {seconds} s")
        self.seconds = seconds


class PoisonMessage(Exception):
    """Raised by a handler for a message that can never be handled: it is dead-lettered with ``reason``."""


class FailureKind(enum.Enum):
    TRANSIENT = "transient"
    POISON = "poison"
    UNEXPECTED = "unexpected"


# A dependency that is down, busy or being rotated: it comes back, and so does the message.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    StorageUnavailable,
    StripeUnavailable,
    StripeAuthenticationFailed,
    SecretsUnavailable,
    UpdateConflict,
    CostSourceUnavailable,
    ExchangeRateUnavailable,
    MailThrottled,  # SES's sending rate, or a delivery another worker is sending right now
    TimeoutError,
    ConnectionError,
)
# A message that is not what its queue carries.
POISON_ERRORS: tuple[type[Exception], ...] = (
    PoisonMessage,
    InvalidStripeObject,
    InvoiceMessageInvalid,
    InvalidMailMessage,
)


def failure_kind(error: BaseException) -> FailureKind:
    """What a handler's error says about its message."""
    if isinstance(error, POISON_ERRORS):
        return FailureKind.POISON
    if isinstance(error, TRANSIENT_ERRORS):
        return FailureKind.TRANSIENT
    return FailureKind.UNEXPECTED


@dataclass(frozen=True)
class RetrySchedule:
    """``base_seconds`` doubled per attempt (15, 30, 60 ... by default), at most ``cap_seconds``."""

    base_seconds: int = 15
    cap_seconds: int = 2 * 3600

    def __call__(self, attempt: int) -> int:
        factor: int = 2 ** min(max(0, attempt - 1), 32)  # bounded: the cap is reached long before
        return min(self.cap_seconds, self.base_seconds * factor)


# Both worker queues retry on this schedule unless settings give another (RETRY_BASE_SECONDS, RETRY_MAX_SECONDS).
FAILED_MESSAGE_RETRY_DELAY: RetryDelay = RetrySchedule()

# The longest long poll SQS allows, and the cheapest: an idle consumer makes 3 requests a minute.
# A consumer notices a stop request only when its receive returns, so a stop takes up to this long.
MAX_RECEIVE_WAIT_SECONDS = 20
RETRY_AFTER_QUEUE_ERROR_SECONDS = 5
# A received message is hidden this long, and extended by as much every EXTEND_EVERY_SECONDS while
# it is handled: a worker that dies (or freezes) loses its message to another one within this time.
VISIBILITY_SECONDS = 30
EXTEND_EVERY_SECONDS = 10
# A handler still busy after this long is presumed stuck: its message is no longer kept hidden.
MAX_HOLD_SECONDS = 30 * 60
# A retried message is renewed from this receive on, well under the queues' maxReceiveCount (10).
RENEW_AFTER_RECEIVES = 3
# SendMessage delays a message by at most 15 minutes; a renewed copy waits at most that long.
MAX_SEND_DELAY_SECONDS = 900
UNEXPECTED_FAILURE_LIMIT = 5


class QueueConsumer:
    """Takes messages from one queue in a thread and hands each to ``handle``; deletes it once handled.

    A message is deleted only after ``handle`` returned, so a crash or an error leaves it on the
    queue until its retry (see the module docstring). Handlers must therefore be idempotent.
    """

    def __init__(
        self,
        name: str,
        queue: MessageQueue,
        handle: MessageHandler,
        stopping: threading.Event,
        *,
        retry_delay: RetryDelay = FAILED_MESSAGE_RETRY_DELAY,
        wait_seconds: int = MAX_RECEIVE_WAIT_SECONDS,
        visibility_seconds: int = VISIBILITY_SECONDS,
        extend_every_seconds: float = EXTEND_EVERY_SECONDS,
    ) -> None:
        if not 1 <= wait_seconds <= MAX_RECEIVE_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be 1..{MAX_RECEIVE_WAIT_SECONDS}")
        if not 0 < extend_every_seconds < visibility_seconds:
            raise ValueError("the visibility must be extended more often than it lasts")
        self.name = name
        self.wait_seconds = wait_seconds
        self._queue = queue
        self._handle = handle
        self._stopping = stopping
        self._retry_delay = retry_delay
        self._visibility = visibility_seconds
        self._extend_every = extend_every_seconds
        self._thread = threading.Thread(target=self._run, name=f"consumer-{name}", daemon=True)

    def start(self) -> None:
        """Start consuming in a background thread."""
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the consumer to finish the message in hand after ``stopping`` was set."""
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
                # One message: the one this thread can start now. More would wait hidden behind it.
                messages = self._queue.receive(
                    max_messages=1, wait_seconds=self.wait_seconds, visibility_timeout=self._visibility
                )
            except StorageUnavailable:
                log.exception("queue unavailable; retrying", extra={"queue": self.name})
                self._stopping.wait(RETRY_AFTER_QUEUE_ERROR_SECONDS)
                continue
            for message in messages:
                self._process(message)

    def _process(self, message: ReceivedMessage) -> None:
        with correlation(message.message_id):
            failure: Exception | None = None
            with _kept_hidden(self._queue, message, self._visibility, self._extend_every):
                try:
                    self._handle(message)
                except Exception as error:
                    failure = error
            # The visibility is no longer extended from here: a retry's delay is not cut short by it.
            if isinstance(failure, RedeliverLater):
                log.info(
                    "message left for redelivery",
                    extra={
                        "queue": self.name,
                        "messageId": message.message_id,
                        "reason": str(failure),
                        "retryInSeconds": failure.seconds,
                    },
                )
                self._retry(message, failure.seconds)
            elif failure is not None:
                self._failed(message, failure)
            else:
                self._delete(message)

    def _delete(self, message: ReceivedMessage) -> None:
        try:
            self._queue.delete(message.receipt_handle)
        except MessageReceiptStale:
            # This worker was away past the visibility; another receive holds the message (or deleted it).
            log.warning(
                "a handled message was taken over before it could be deleted",
                extra={"queue": self.name, "messageId": message.message_id},
            )
        except StorageUnavailable:
            # Handled but not deleted: it comes back, and the idempotent handler skips it.
            log.exception("could not delete a handled message", extra={"queue": self.name})

    def _failed(self, message: ReceivedMessage, error: Exception) -> None:
        kind = failure_kind(error)
        context = {
            "queue": self.name,
            "messageId": message.message_id,
            "receiveCount": message.receive_count,
            "attempt": message.attempt,
            "failure": kind.value,
        }
        if kind is FailureKind.POISON or (
            kind is FailureKind.UNEXPECTED and message.receive_count >= UNEXPECTED_FAILURE_LIMIT
        ):
            reason = f"{type(error).__name__}: {error}"
            log.error("message dead-lettered", exc_info=error, extra={**context, "reason": reason})
            try:
                self._queue.dead_letter(message, reason)
            except StorageUnavailable:
                log.exception("could not dead-letter a message; it will come back", extra=context)
            return
        seconds = self._retry_delay(message.attempt)
        if kind is FailureKind.TRANSIENT:
            log.warning(
                "a dependency failed; the message will be retried",
                extra={**context, "error": f"{type(error).__name__}: {error}", "retryInSeconds": seconds},
            )
            self._retry(message, seconds)
        else:
            log.error(
                "message handling failed; it will be retried",
                exc_info=error,
                extra={**context, "retryInSeconds": seconds},
            )
            # Not renewed: its receive count is what brings it to UNEXPECTED_FAILURE_LIMIT.
            self._retry(message, seconds, renew=False)

    def _retry(self, message: ReceivedMessage, seconds: int, *, renew: bool = True) -> None:
        """Show the message again in ``seconds``; from ``RENEW_AFTER_RECEIVES`` on, as a fresh copy."""
        try:
            if not renew or message.receive_count < RENEW_AFTER_RECEIVES:
                self._queue.change_visibility(message.receipt_handle, seconds)
                return
            self._queue.send(
                message.body,
                {**message.attributes, RETRY_ATTEMPTS: str(message.attempt)},
                delay_seconds=min(seconds, MAX_SEND_DELAY_SECONDS),
            )
            self._queue.delete(message.receipt_handle)
        except StorageUnavailable:
            # The visibility timeout still brings it back, only sooner; a sent copy without the delete is a
            # duplicate the idempotent handler skips.
            log.warning("could not reschedule a message", extra={"queue": self.name, "messageId": message.message_id})


def _kept_hidden(queue: MessageQueue, message: ReceivedMessage, visibility: int, every: float) -> RenewedWhile:
    """Extends the message's visibility every ``every`` seconds while it is handled (up to a limit)."""
    held = 0.0

    def extend() -> bool:
        nonlocal held
        held += every
        if held > MAX_HOLD_SECONDS:
            log.error(
                "a message is taking too long; it is no longer kept hidden",
                extra={"messageId": message.message_id, "heldSeconds": int(held)},
            )
            return False
        try:
            queue.change_visibility(message.receipt_handle, visibility)
        except StorageUnavailable:
            log.warning("could not extend a message's visibility", extra={"messageId": message.message_id})
        return True

    return RenewedWhile(extend, every, "keep-hidden")
