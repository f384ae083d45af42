"""Makes dead-lettered messages visible: a ``dlq_depth`` log line per queue, periodically."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from billing_core.errors import StorageUnavailable
from billing_core.ports import MessageQueue

log = logging.getLogger(__name__)

DLQ_CHECK_SECONDS = 60


class DeadLetterMonitor:
    """Logs each queue's dead-letter depth every ``interval_seconds`` (WARNING when it is not zero).

    The line is the metric: ``{"message": "dlq_depth", "queue": ..., "dlqDepth": n}``; a log metric
    filter (or whatever reads the JSON logs) alarms on ``dlqDepth > 0``.
    """

    def __init__(
        self,
        queues: Mapping[str, MessageQueue],
        stopping: threading.Event,
        *,
        interval_seconds: float = DLQ_CHECK_SECONDS,
    ) -> None:
        self._queues = dict(queues)
        self._stopping = stopping
        self._interval = interval_seconds
        self._thread = threading.Thread(target=self._run, name="dlq-monitor", daemon=True)

    def start(self) -> None:
        """Check now and then every interval, in a background thread, until ``stopping`` is set."""
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the thread after ``stopping`` was set."""
        self._thread.join(timeout)

    def check_once(self) -> dict[str, int]:
        """Log and return the dead-letter depth of every queue (a queue that cannot be read is left out)."""
        depths = {}
        for name, queue in self._queues.items():
            try:
                depth = queue.dead_letter_depth()
            except StorageUnavailable:
                log.exception("could not read the dead-letter depth", extra={"queue": name})
                continue
            depths[name] = depth
            log.log(logging.WARNING if depth else logging.INFO, "dlq_depth", extra={"queue": name, "dlqDepth": depth})
        return depths

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.check_once()
            self._stopping.wait(self._interval)
