"""Keep something alive while work runs: a message's visibility, an event's claim, renewed on a timer.

Every worker thread holds one or two such renewals per message, so they cost no thread of their own:
one scheduler thread per process keeps the timers and hands each due renewal to a small pool of
caller threads (so one renewal stalled on its network call does not hold up the others).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

# Renewals of one process that may wait on their network calls at once before others queue behind them.
RENEWAL_CALLERS = 16


class RenewedWhile:
    """While the ``with`` block runs, calls ``renew`` every ``every`` seconds until it returns ``False``.

    ``renew`` runs on another thread and must handle its own errors: what it cannot renew, it says so
    (a log line) and returns ``True`` to try again, or ``False`` to give up. Once the block has left,
    ``renew`` is not running and is never called again.
    """

    def __init__(self, renew: Callable[[], bool], every: float, name: str, renewals: Renewals | None = None) -> None:
        self.name = name
        self.every = every
        self._renew = renew
        self._renewals = renewals or _PROCESS_RENEWALS
        self._lock = threading.Lock()  # held while ``renew`` runs: leaving the block waits for it
        self._closed = False

    def __enter__(self) -> RenewedWhile:
        self._renewals.add(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._closed = True

    @property
    def closed(self) -> bool:
        """Whether the block has left (or ``renew`` gave up)."""
        return self._closed

    def renew_once(self) -> bool:
        """Call ``renew`` unless closed; whether to go on renewing."""
        with self._lock:
            if self._closed:
                return False
            try:
                going_on = self._renew()
            except Exception:  # a bug in ``renew``: said loudly, and the timer keeps going
                log.exception("a renewal failed unexpectedly", extra={"renewal": self.name})
                return True
            if not going_on:
                self._closed = True
            return going_on


class Renewals:
    """The timers of every open ``RenewedWhile`` of a process: one scheduler thread, a pool of callers."""

    def __init__(self, *, callers: int = RENEWAL_CALLERS, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._callers = ThreadPoolExecutor(max_workers=callers, thread_name_prefix="renewal")
        self._due: list[tuple[float, int, RenewedWhile]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._scheduler: threading.Thread | None = None

    def add(self, renewal: RenewedWhile) -> None:
        """Call ``renewal`` every ``renewal.every`` seconds from now until it is closed."""
        with self._changed:
            self._schedule(renewal)
            if self._scheduler is None:
                self._scheduler = threading.Thread(target=self._run, name="renewals", daemon=True)
                self._scheduler.start()

    def _schedule(self, renewal: RenewedWhile) -> None:
        """Put ``renewal`` on the timers; wake the scheduler only if it is now the first one due."""
        entry = (self._clock() + renewal.every, next(self._order), renewal)
        heapq.heappush(self._due, entry)
        if self._due[0] is entry:
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._due and self._due[0][2].closed:
                    heapq.heappop(self._due)  # left its block: forget it
                if not self._due:
                    self._changed.wait()
                    continue
                wait = self._due[0][0] - self._clock()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                _, _, renewal = heapq.heappop(self._due)
            self._callers.submit(self._call, renewal)

    def _call(self, renewal: RenewedWhile) -> None:
        if renewal.renew_once():
            with self._changed:
                self._schedule(renewal)


_PROCESS_RENEWALS = Renewals()
