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
