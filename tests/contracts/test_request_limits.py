"""The request-limit contract: the in-memory fake and DynamoDB count alike, per key and fixed window."""

from __future__ import annotations


def test_requests_within_the_limit_pass_and_the_next_one_waits_until_the_window_ends(request_limits, clock):
    clock.now = 1_700_000_040.0
    start = int(clock.now) - int(clock.now) % 60

    passed = [request_limits.take("acct-1:setup-intent", limit=3, window_seconds=60) for _ in range(3)]
    refused = request_limits.take("acct-1:setup-intent", limit=3, window_seconds=60)

    assert passed == [None, None, None]
    assert refused == start + 60 - int(clock.now)
    # Another key (another account, another endpoint) has a count of its own.
    assert request_limits.take("acct-2:setup-intent", limit=3, window_seconds=60) is None
    assert request_limits.take("acct-1:pay", limit=3, window_seconds=60) is None


def test_a_refused_request_is_not_counted_and_the_next_window_starts_again(request_limits, clock):
    for _ in range(2):
        request_limits.take("operator:sub-1", limit=2, window_seconds=10)
    for _ in range(5):
        assert request_limits.take("operator:sub-1", limit=2, window_seconds=10) is not None

    clock.now += 10

    assert request_limits.take("operator:sub-1", limit=2, window_seconds=10) is None
    assert request_limits.take("operator:sub-1", limit=2, window_seconds=10) is None
    assert request_limits.take("operator:sub-1", limit=2, window_seconds=10) is not None
