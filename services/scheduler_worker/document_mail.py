"""The ``document-mail`` and ``mail-events`` consumers: e-mail each issued document, follow what SES reports.

One ``document-mail`` consumer per worker: SES's sending rate is per account, and the paced sender
(``SES_MAX_SEND_RATE``) keeps this process under its share. Throttling by SES is transient: the message
comes back after a back-off and the deliveries still waiting are sent then; it is never dead-lettered.
"""

from __future__ import annotations

import json
import logging
import threading

from billing_core.bootstrap import WorkerUseCases
from billing_core.domain.deliveries import InvalidMailEvent, mail_event_from
from billing_core.logging import correlation
from billing_core.ports import MessageQueue, ReceivedMessage
from billing_core.use_cases.document_mail import DocumentMailer, mailing_of_message
from scheduler_worker.billing_jobs import retry_schedule
from scheduler_worker.consumer import MessageHandler, PoisonMessage, QueueConsumer

log = logging.getLogger(__name__)


def document_mail_handler(mailer: DocumentMailer) -> MessageHandler:
    """Send one mailing (a document to its recipients); each recipient once, whatever the redeliveries."""

    def handle(message: ReceivedMessage) -> None:
        try:
            document_id, round_number = mailing_of_message(json.loads(message.body))
        except ValueError as error:
            raise PoisonMessage(f"not a document-mail message: {error}") from None
        with correlation(document_id):
            deliveries = mailer.deliver(document_id, round_number)
            log.info(
                "mailing done",
                extra={
                    "documentId": document_id,
                    "round": round_number,
                    "states": {delivery.recipient: delivery.state.value for delivery in deliveries},
                },
            )

    return handle


def ses_notification(body: str) -> dict[str, object]:
    """The SES event of a ``mail-events`` message: raw (SNS raw message delivery) or in SNS's envelope."""
    try:
        payload = json.loads(body)
        enveloped = isinstance(payload, dict) and payload.get("Type") == "Notification"
        if enveloped and isinstance(payload.get("Message"), str):
            payload = json.loads(payload["Message"])
    except ValueError as error:
        raise PoisonMessage(f"a mail event that is no JSON: {error}") from None
    if not isinstance(payload, dict):
        raise PoisonMessage("a mail event that is no JSON object")
    return payload


def mail_event_handler(mailer: DocumentMailer) -> MessageHandler:
    """Apply one SES event (bounce, complaint, delivery, reject) to its delivery."""

    def handle(message: ReceivedMessage) -> None:
        try:
            event = mail_event_from(ses_notification(message.body))
        except InvalidMailEvent as error:
            raise PoisonMessage(str(error)) from None
        if event is not None:
            mailer.apply_event(event)

    return handle


def document_mail_consumers(use_cases: WorkerUseCases, stopping: threading.Event) -> list[QueueConsumer]:
    """The consumers of both mail queues, where they are configured (none when e-mail is off)."""
    mailer = use_cases.document_mailer
    settings = use_cases.settings
    if mailer is None:
        return []
    handlers: list[tuple[str, MessageQueue, MessageHandler]] = []
    if use_cases.document_mail is not None and settings.invoice_mail_from:
        handlers.append(("document-mail", use_cases.document_mail, document_mail_handler(mailer)))
    if use_cases.mail_events is not None:
        handlers.append(("mail-events", use_cases.mail_events, mail_event_handler(mailer)))
    return [
        QueueConsumer(
            name,
            queue,
            handler,
            stopping,
            retry_delay=retry_schedule(settings),
            wait_seconds=settings.queue_wait_seconds,
        )
        for name, queue, handler in handlers
    ]
