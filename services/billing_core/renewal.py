"""Keep something alive while work runs: a message's visibility, an event's claim, renewed on a timer."""
from __future__ import annotations

import threading
from collections.abc import Callable


class RenewedWhile:
    """While the ``with`` block runs, calls ``renew`` every ``every`` seconds until it returns ``False``.

    ``renew`` runs in a thread of its own and must handle its own errors: what it cannot renew, it
    says so (a log line) and returns ``True`` to try again, or ``False`` to give up.
    """

    def __init__(self, renew: Callable[[], bool], every: float, name: str) -> None:
        self._renew = renew
        self._every = every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> RenewedWhile:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self._every):
            if not self._renew():
                return
