"""Renewals on a timer (a message's visibility, an event's claim): on time, never after their block, isolated."""

from __future__ import annotations

import threading
import time

from billing_core.renewal import Renewals, RenewedWhile
from tests.support.waiting import wait_for


def test_a_renewal_is_called_on_its_timer_while_its_block_runs():
    calls = []
    with RenewedWhile(lambda: calls.append(time.monotonic()) or True, 0.02, "test", Renewals()):
        wait_for(lambda: len(calls) >= 3, timeout=5, what="three renewals")

    assert all(later - earlier >= 0.015 for earlier, later in zip(calls, calls[1:], strict=False))


def test_after_its_block_a_renewal_is_not_running_and_never_called_again():
    """Leaving the block waits for a renewal under way: a retry's delay set next is not overwritten by it."""
    started, events = threading.Event(), []

    def slow_renew() -> bool:
        started.set()
        events.append("renew began")
        time.sleep(0.2)
        events.append("renew ended")
        return True

    with RenewedWhile(slow_renew, 0.01, "test", Renewals()):
        assert started.wait(5)
    events.append("block left")
    time.sleep(0.1)

    assert events[-1] == "block left" and events.count("renew began") == events.count("renew ended")


def test_a_renewal_that_gives_up_is_not_called_again():
    calls = []
    with RenewedWhile(lambda: calls.append(1) and False, 0.01, "test", Renewals()) as renewal:
        wait_for(lambda: renewal.closed, timeout=5, what="the renewal to give up")
        time.sleep(0.1)

    assert calls == [1]


def test_a_renewal_stalled_on_its_call_does_not_hold_up_the_others():
    renewals, release, counted = Renewals(callers=2), threading.Event(), []
    stalled = RenewedWhile(lambda: release.wait(10) or True, 0.01, "stalled", renewals)
    steady = RenewedWhile(lambda: counted.append(1) or True, 0.01, "steady", renewals)
    try:
        with stalled, steady:
            wait_for(lambda: len(counted) >= 10, timeout=5, what="the steady renewal going on")
            release.set()
    finally:
        release.set()


def test_a_renewal_that_fails_unexpectedly_is_logged_and_tried_again(caplog):
    calls = []

    def broken() -> bool:
        calls.append(1)
        raise RuntimeError("a bug")

    with RenewedWhile(broken, 0.01, "broken", Renewals()):
        wait_for(lambda: len(calls) >= 2, timeout=5, what="a second try")

    assert "a renewal failed unexpectedly" in caplog.text
