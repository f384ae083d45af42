"""The worker's liveness file: touched while every part of the worker lives, so its age tells a health check.

The container health check (``deploy/healthcheck.py --heartbeat PATH --max-age 120``) fails
once the file is older than its limit. The worker's threads can die on their own (an unexpected error
ends a consumer thread while the process runs on), so the file is touched only while every watched
part is alive: a dead consumer or scheduler stops the heartbeat, and the orchestrator replaces the task.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

# Four beats fit into the health check's 120 s, so one late beat does not fail it.
HEARTBEAT_INTERVAL_SECONDS = 30.0

LivenessCheck = Callable[[], bool]


class Heartbeat:
    """Touches ``path`` on each beat while every check in ``parts`` (name -> "is it alive?") says yes.

    ``clock`` gives the time written as the file's modification time (seconds since the epoch).
    ``path=None`` is a heartbeat that writes nothing (``WORKER_HEARTBEAT_FILE`` unset).
    """

    def __init__(
        self,
        path: Path | str | None,
        parts: Mapping[str, LivenessCheck],
        *,
        clock: Callable[[], float] = time.time,
        interval_seconds: float = HEARTBEAT_INTERVAL_SECONDS,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._parts = dict(parts)
        self._clock = clock
        self.interval_seconds = interval_seconds
        self._reported_dead: list[str] = []

    def dead_parts(self) -> list[str]:
        """Names of the watched parts that are not alive."""
        return [name for name, alive in self._parts.items() if not alive()]

    def beat(self) -> bool:
        """Touch the file if every part lives; returns whether the file now says "alive"."""
        dead = self.dead_parts()
        if dead:
            if dead != self._reported_dead:
                # Once per change, not every beat: the health check will now fail and the task be replaced.
                log.error("worker part stopped; heartbeat withheld", extra={"deadParts": dead})
                self._reported_dead = dead
            return False
        self._reported_dead = []
        if self.path is None:
            return True
        now = self._clock()
        try:
            self.path.touch(exist_ok=True)
            os.utime(self.path, (now, now))
        except OSError as error:
            log.error("could not write the heartbeat file", extra={"path": str(self.path), "error": str(error)})
            return False
        return True

    def run_until(self, stopping: threading.Event) -> None:
        """Beat now and every ``interval_seconds`` until ``stopping`` is set."""
        while True:
            self.beat()
            if stopping.wait(self.interval_seconds):
                return

    def remove(self) -> None:
        """Delete the file (a clean stop), so nothing reads a stopped worker as alive."""
        if self.path is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("could not remove the heartbeat file", extra={"path": str(self.path), "error": str(error)})
