"""A signed webhook body is read as an event only if it is one, and only if it nests shallowly."""

from __future__ import annotations

import pytest

from billing_core.adapters.stripe_webhooks import MAX_NESTING, event_envelope, nesting_depth
from billing_core.errors import InvalidStripeEvent


def test_nesting_is_counted_outside_strings_only():
    assert nesting_depth('{"a": [1, {"b": "[[[{{{"}]}') == 3
    assert nesting_depth('"\\"[[[["') == 0
    assert nesting_depth("[" * 100 + "]" * 100) == 100


def test_an_unterminated_string_hides_what_follows_it_and_is_read_once():
    assert nesting_depth('[[["abc') == 3
    assert nesting_depth('[["a\\"]"]') == 2  # an escaped quote does not end the string
    assert nesting_depth("[" * 5 + '"' + '\\"' * 20_000 + "[" * 100) == 5
    assert nesting_depth('["\\') == 1  # a lone backslash at the very end


def test_a_real_event_envelope_is_read():
    body = '{"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1", "lines": {"data": [{}]}}}}'

    assert event_envelope(body)["id"] == "evt_1"


@pytest.mark.parametrize("body", ["[]", "1", "null", '"x"', "{", "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1)])
def test_anything_else_is_an_invalid_event_not_an_error(body):
    with pytest.raises(InvalidStripeEvent):
        event_envelope(body)


def test_the_largest_event_queued_whole_still_fits_the_queue_and_its_dlq_with_the_longest_reason():
    """SQS counts a message's attributes (name, type, value) toward its size; a dead letter adds its reason."""
    from billing_core import resources
    from billing_core.ports.infrastructure import DEAD_LETTER_REASON, DEAD_LETTERED_AT, MAX_REASON_CHARS, RETRY_ATTEMPTS
    from billing_core.use_cases.receive_webhook import MAX_QUEUED_EVENT_BYTES

    attributes = {
        "eventId": "evt_" + "x" * 60,
        "eventType": "customer.subscription.pending_update_expired",
        DEAD_LETTER_REASON: "\U0001f4a5" * MAX_REASON_CHARS,  # four bytes each in UTF-8, the most there is
        DEAD_LETTERED_AT: "2026-12-06T09:00:00+00:00",
        RETRY_ATTEMPTS: "9999",
    }
    attribute_bytes = sum(
        len(name.encode()) + len(b"String") + len(value.encode()) for name, value in attributes.items()
    )

    assert MAX_QUEUED_EVENT_BYTES + attribute_bytes <= resources.STRIPE_EVENTS.max_message_bytes
