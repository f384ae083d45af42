"""The deliveries port: the DynamoDB adapter and its in-memory twin keep mailings and deliveries alike."""

from __future__ import annotations

import pytest

from billing_core.domain.deliveries import (
    Delivery,
    DeliveryState,
    DocumentKind,
    Mailing,
    delivery_id_for,
)
from billing_core.errors import ConditionFailed, NotFound
from billing_core.ports import FieldIs


def a_mailing(document_id="inv_2026-10_acme", round_number=1, recipients=("a@acme.de", "b@acme.de")):
    return Mailing(
        document_id=document_id,
        kind=DocumentKind.INVOICE,
        account_id="acme",
        round_number=round_number,
        recipients=recipients,
        requested_at=1_000,
        actor="system",
    )


def a_delivery(recipient="a@acme.de", round_number=1, **changes):
    values = dict(
        delivery_id=delivery_id_for("inv_2026-10_acme", round_number, recipient),
        document_id="inv_2026-10_acme",
        account_id="acme",
        round_number=round_number,
        recipient=recipient,
        state=DeliveryState.SENDING,
        attempts=1,
        claimed_at=1_000,
        updated_at=1_000,
    )
    values.update(changes)
    return Delivery(**values)


def test_a_mailing_is_claimed_once_and_its_rounds_are_listed_in_order(deliveries):
    assert deliveries.create_mailing_if_absent(a_mailing()) is True
    assert deliveries.create_mailing_if_absent(a_mailing(recipients=("c@acme.de",))) is False
    deliveries.create_mailing_if_absent(a_mailing(round_number=2, recipients=("c@acme.de",)))

    first, second = deliveries.mailings_of("inv_2026-10_acme")

    assert first == a_mailing() and first.recipients == ("a@acme.de", "b@acme.de")
    assert (second.round_number, second.recipients) == (2, ("c@acme.de",))
    assert deliveries.mailings_of("inv_2026-10_other") == []


def test_a_mailing_without_recipients_is_kept_as_such_and_can_be_marked_queued(deliveries):
    deliveries.create_mailing_if_absent(a_mailing(recipients=()))

    queued = deliveries.update_mailing("inv_2026-10_acme", 1, {"queued_at": 2_000})

    assert queued.recipients == () and queued.queued_at == 2_000
    assert deliveries.get_mailing("inv_2026-10_acme", 1) == queued
    with pytest.raises(NotFound):
        deliveries.update_mailing("inv_2026-10_acme", 9, {"queued_at": 2_000})


def test_every_mailing_is_listed(deliveries):
    deliveries.create_mailing_if_absent(a_mailing())
    deliveries.create_mailing_if_absent(a_mailing("cn_2026-10_acme_1"))

    assert {m.document_id for m in deliveries.all_mailings()} == {"inv_2026-10_acme", "cn_2026-10_acme_1"}


def test_a_delivery_is_claimed_once_and_moves_under_its_guard(deliveries):
    claimed = a_delivery()
    assert deliveries.create_if_absent(claimed) is True
    assert deliveries.create_if_absent(a_delivery(attempts=2)) is False
    assert deliveries.get(claimed.delivery_id) == claimed

    sent = deliveries.update(
        claimed.delivery_id,
        {"state": DeliveryState.SENT, "message_id": "0100-abc", "sent_at": 1_500, "updated_at": 1_500},
        conditions=[FieldIs.one_of("state", DeliveryState.SENDING), FieldIs.one_of("attempts", 1)],
    )

    assert (sent.state, sent.message_id, sent.sent_at) == (DeliveryState.SENT, "0100-abc", 1_500)
    with pytest.raises(ConditionFailed) as refused:
        deliveries.update(
            claimed.delivery_id,
            {"state": DeliveryState.SENDING, "attempts": 2},
            conditions=[FieldIs.one_of("state", DeliveryState.SENDING)],
        )
    assert refused.value.current == sent
    with pytest.raises(NotFound):
        deliveries.update("inv_x#1#nobody@acme.de", {"updated_at": 1})


def test_a_delivery_is_found_by_the_message_id_ses_gave_it(deliveries):
    deliveries.create_if_absent(a_delivery())
    deliveries.create_if_absent(a_delivery("b@acme.de"))
    deliveries.update(delivery_id_for("inv_2026-10_acme", 1, "b@acme.de"), {"message_id": "0100-b"})

    found = deliveries.find_by_message_id("0100-b")

    assert found is not None and found.recipient == "b@acme.de"
    assert deliveries.find_by_message_id("0100-unknown") is None


def test_a_possible_duplicate_and_a_reason_are_kept(deliveries):
    deliveries.create_if_absent(a_delivery(attempts=2, possible_duplicate=True, reason="sender died mid-send"))

    stored = deliveries.get(delivery_id_for("inv_2026-10_acme", 1, "a@acme.de"))

    assert stored.possible_duplicate is True and stored.attempts == 2 and stored.reason == "sender died mid-send"
