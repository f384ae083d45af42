"""The message queue's contract, kept by the in-memory fake and the SQS adapter alike."""

from __future__ import annotations

import pytest

from tests.support.observe import waiting_messages


def test_a_message_is_received_with_its_attributes_until_deleted(jobs_queue):
    queue = jobs_queue.queue
    queue.send('{"invoiceId":"inv_2024-11_u1"}', {"runId": "run-1"})

    (message,) = queue.receive(max_messages=10, wait_seconds=1)

    assert (message.body, message.attributes, message.receive_count) == (
        '{"invoiceId":"inv_2024-11_u1"}',
        {"runId": "run-1"},
        1,
    )
    queue.delete(message.receipt_handle)
    assert queue.receive(wait_seconds=0) == []


def test_a_message_made_visible_again_is_received_again_with_a_higher_count(jobs_queue):
    queue = jobs_queue.queue
    queue.send("plain text")
    (first,) = queue.receive(wait_seconds=1)
    assert queue.receive(wait_seconds=0) == []  # invisible while being handled
    queue.change_visibility(first.receipt_handle, 0)

    (second,) = queue.receive(wait_seconds=1)

    assert second.body == "plain text" and second.receive_count == 2


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(jobs_queue):
    queue = jobs_queue.queue
    queue.send('{"id":"poison"}')
    assert queue.dead_letter_depth() == 0

    for _ in range(jobs_queue.max_receive_count):
        (message,) = queue.receive(wait_seconds=1, visibility_timeout=0)
    assert queue.receive(wait_seconds=0) == []

    assert (waiting_messages(queue), queue.dead_letter_depth()) == (0, 1)


def test_a_body_that_is_not_text_is_refused(jobs_queue):
    with pytest.raises((TypeError, ValueError)):
        jobs_queue.queue.send({"id": "not text"})


def test_a_batch_of_messages_is_enqueued_whole_with_each_ones_attributes(jobs_queue):
    from billing_core.ports import OutgoingMessage

    queue = jobs_queue.queue
    outgoing = [OutgoingMessage(f'{{"n":{n}}}', {"invoiceId": f"inv_{n}"}) for n in range(25)]

    ids = queue.send_batch(outgoing)

    received = []
    while batch := queue.receive(max_messages=10, wait_seconds=1):
        received.extend(batch)
    assert len(ids) == len(set(ids)) == 25
    assert sorted((m.body, m.attributes["invoiceId"]) for m in received) == sorted(
        (m.body, m.attributes["invoiceId"]) for m in outgoing
    )


def test_a_message_dead_lettered_on_purpose_keeps_its_body_attributes_and_reason(jobs_queue):
    queue = jobs_queue.queue
    queue.send('{"id":"evt_1"}', {"claimCheck": "stripe"})
    (message,) = queue.receive(wait_seconds=1)

    queue.dead_letter(message, "InvalidStripeEvent: the message body is not JSON")

    assert queue.receive(wait_seconds=0) == [] and waiting_messages(queue) == 0
    (letter,) = queue.dead_letters()
    assert (letter.body, letter.reason, letter.attempts) == (
        '{"id":"evt_1"}',
        "InvalidStripeEvent: the message body is not JSON",
        1,
    )
    assert letter.dead_lettered_at and letter.dead_lettered_at.startswith(("19", "20"))
    # Listing leaves them where they are: a second listing shows the same letter.
    assert [other.message_id for other in queue.dead_letters()] == [letter.message_id]


def test_a_redrive_sends_every_dead_letter_back_once_without_its_failure_attributes(jobs_queue):
    queue = jobs_queue.queue
    for n in range(12):
        queue.send(f'{{"n":{n}}}', {"claimCheck": "stripe", "retryAttempts": "7"})
    while batch := queue.receive(max_messages=10, wait_seconds=1):
        for message in batch:
            queue.dead_letter(message, f"poison {message.body}")
    assert len(queue.dead_letters(limit=100)) == 12

    assert queue.redrive() == 12

    assert queue.dead_letters() == [] and queue.dead_letter_depth() == 0
    received = []
    while batch := queue.receive(max_messages=10, wait_seconds=1):
        received.extend(batch)
    assert sorted(m.body for m in received) == sorted(f'{{"n":{n}}}' for n in range(12))
    assert {tuple(sorted(m.attributes.items())) for m in received} == {(("claimCheck", "stripe"),)}
    assert {m.attempt for m in received} == {1}


def _dead_lettered(queue, bodies: list[str]) -> None:
    for body in bodies:
        queue.send(body)
    while batch := queue.receive(max_messages=10, wait_seconds=1):
        for message in batch:
            queue.dead_letter(message, "poison")


def test_a_redrive_moves_at_most_its_limit(jobs_queue):
    queue = jobs_queue.queue
    _dead_lettered(queue, [f"m{n}" for n in range(3)])

    assert queue.redrive(limit=2) == 2
    assert len(queue.dead_letters()) == 1


def test_a_redrive_leaves_what_the_worker_dead_letters_again_while_it_runs(jobs_queue):
    """Poison redriven too early fails again at once: the redrive must end, not pass it back and forth."""
    import time

    queue = jobs_queue.queue
    _dead_lettered(queue, [f"poison-{n}" for n in range(3)])
    time.sleep(1.1)  # the redrive begins in a later second than those dead letters
    real_send, sent = queue.send, []

    def send_then_fail_again(body, attributes=None, **options):
        sent.append(body)
        assert len(sent) <= 3, "the redrive took back a message dead-lettered again while it ran"
        real_send(body, attributes, **options)
        time.sleep(1.1)  # the worker fails it a moment later
        for message in queue.receive(max_messages=10, wait_seconds=1):
            queue.dead_letter(message, "poison again")

    queue.send = send_then_fail_again

    assert queue.redrive() == 3

    assert sorted(sent) == ["poison-0", "poison-1", "poison-2"]
    assert sorted(letter.reason for letter in queue.dead_letters()) == ["poison again"] * 3
