"""The worker's mail consumers: SES's events raw or in SNS's envelope, poison refused, throttling transient."""

from __future__ import annotations

import json

import pytest

from billing_core.errors import MailThrottled
from billing_core.ports import ReceivedMessage
from billing_core.use_cases.document_mail import DeliveryInProgress, InvalidMailMessage
from scheduler_worker.consumer import FailureKind, PoisonMessage, failure_kind
from scheduler_worker.document_mail import document_mail_handler, mail_event_handler, ses_notification

EVENT = {"eventType": "Delivery", "mail": {"messageId": "0100-a"}, "delivery": {"recipients": ["a@kunde.de"]}}


class Recorder:
    def __init__(self) -> None:
        self.events: list = []
        self.delivered: list = []

    def apply_event(self, event):
        self.events.append(event)
        return True

    def deliver(self, document_id, round_number):
        self.delivered.append((document_id, round_number))
        return []


def message(body: str) -> ReceivedMessage:
    return ReceivedMessage("m1", body, "r1")


def test_an_ses_event_is_read_raw_and_from_snss_envelope_alike():
    enveloped = json.dumps({"Type": "Notification", "MessageId": "x", "Message": json.dumps(EVENT)})

    assert ses_notification(json.dumps(EVENT)) == EVENT == ses_notification(enveloped)


@pytest.mark.parametrize("body", ["not json", "[1, 2]", json.dumps({"eventType": "Bounce"})])
def test_a_mail_event_that_is_no_ses_event_is_poison(body):
    with pytest.raises(PoisonMessage):
        mail_event_handler(Recorder())(message(body))


def test_a_delivery_event_reaches_the_mailer_and_a_soft_bounce_does_not():
    recorder = Recorder()
    handle = mail_event_handler(recorder)
    soft = {"eventType": "Bounce", "mail": {"messageId": "0100-b"}, "bounce": {"bounceType": "Transient"}}

    handle(message(json.dumps(EVENT)))
    handle(message(json.dumps(soft)))

    assert [event.message_id for event in recorder.events] == ["0100-a"]


def test_a_document_mail_message_is_delivered_and_a_broken_one_is_poison():
    recorder = Recorder()
    handle = document_mail_handler(recorder)

    handle(message(json.dumps({"documentId": "inv_2026-10_acme", "round": 2})))

    assert recorder.delivered == [("inv_2026-10_acme", 2)]
    with pytest.raises(PoisonMessage):
        handle(message("{"))
    with pytest.raises(InvalidMailMessage):
        handle(message(json.dumps({"documentId": "other", "round": 1})))
    assert failure_kind(InvalidMailMessage("x")) is FailureKind.POISON


def test_ses_throttling_and_a_busy_delivery_are_transient_never_dead_lettered():
    assert failure_kind(MailThrottled("TooManyRequestsException")) is FailureKind.TRANSIENT
    assert failure_kind(DeliveryInProgress("claimed moments ago")) is FailureKind.TRANSIENT
