"""The worker's heartbeat file: fresh while every consumer and the scheduler live, stale once one dies."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from billing_core.settings import Settings
from scheduler_worker.consumer import QueueConsumer
from scheduler_worker.heartbeat import Heartbeat
from scheduler_worker.worker import worker_heartbeat
from tests.support.fakes import FakeQueue

T0 = 1_700_000_000.0


class IdleQueue(FakeQueue):
    """A queue whose long poll lasts until the test stops the consumers (no busy loop)."""

    def __init__(self, stopping: threading.Event) -> None:
        super().__init__()
        self._stopping = stopping

    def receive(self, *, max_messages=10, wait_seconds=0, visibility_timeout=None):
        self._stopping.wait()
        return []


class BrokenQueue(FakeQueue):
    """A queue whose receive fails with an error the consumer does not expect."""

    def receive(self, *, max_messages=10, wait_seconds=0, visibility_timeout=None):
        raise RuntimeError("unexpected response")


def _mtime(path) -> float:
    return os.stat(path).st_mtime


def test_a_beat_while_every_part_lives_sets_the_file_time_to_the_clock(tmp_path):
    path = tmp_path / "worker.heartbeat"
    heartbeat = Heartbeat(path, {"consumer": lambda: True, "scheduler": lambda: True}, clock=lambda: T0)

    assert heartbeat.beat() is True
    assert _mtime(path) == T0


def test_no_beat_while_one_part_is_dead_so_the_file_ages(tmp_path):
    path = tmp_path / "worker.heartbeat"
    now = [T0]
    consumer_alive = [True]
    heartbeat = Heartbeat(
        path, {"consumer": lambda: consumer_alive[0], "scheduler": lambda: True}, clock=lambda: now[0]
    )
    heartbeat.beat()

    consumer_alive[0] = False
    now[0] = T0 + 60

    assert heartbeat.beat() is False
    assert heartbeat.dead_parts() == ["consumer"]
    assert _mtime(path) == T0


def test_a_dead_part_is_logged_once_by_name_not_on_every_beat(tmp_path, caplog):
    heartbeat = Heartbeat(tmp_path / "worker.heartbeat", {"billing-jobs-2": lambda: False, "scheduler": lambda: True})

    with caplog.at_level(logging.ERROR, logger="scheduler_worker.heartbeat"):
        heartbeat.beat()
        heartbeat.beat()

    heartbeat_records = [record for record in caplog.records if record.name == "scheduler_worker.heartbeat"]
    assert [record.deadParts for record in heartbeat_records] == [["billing-jobs-2"]]


def test_without_a_file_the_heartbeat_writes_nothing(tmp_path):
    heartbeat = Heartbeat(None, {"consumer": lambda: True})

    assert heartbeat.beat() is True
    heartbeat.remove()
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_cannot_be_written_is_no_beat(tmp_path):
    heartbeat = Heartbeat(tmp_path / "missing-directory" / "worker.heartbeat", {"consumer": lambda: True})

    assert heartbeat.beat() is False


def test_run_until_beats_at_once_and_returns_when_stopping_is_set(tmp_path):
    path = tmp_path / "worker.heartbeat"
    stopping = threading.Event()
    stopping.set()

    Heartbeat(path, {"consumer": lambda: True}, clock=lambda: T0, interval_seconds=3600).run_until(stopping)

    assert _mtime(path) == T0


def test_run_until_keeps_beating_every_interval_while_running(tmp_path):
    path = tmp_path / "worker.heartbeat"
    ticks = (T0 + n for n in range(10_000))
    stopping = threading.Event()
    heartbeat = Heartbeat(path, {"consumer": lambda: True}, clock=lambda: next(ticks), interval_seconds=0.01)
    runner = threading.Thread(target=heartbeat.run_until, args=(stopping,))
    runner.start()
    try:
        deadline = time.monotonic() + 10
        # Between touch() and utime() the file briefly carries the real time: wait for a clock value.
        while not (path.exists() and T0 + 2 <= _mtime(path) < T0 + 10_000) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stopping.set()
        runner.join(timeout=10)

    assert T0 + 2 <= _mtime(path) < T0 + 10_000  # the file was touched again (three beats at least), not only at start


def test_remove_deletes_the_file_and_tolerates_a_missing_one(tmp_path):
    path = tmp_path / "worker.heartbeat"
    heartbeat = Heartbeat(path, {"consumer": lambda: True})
    heartbeat.beat()

    heartbeat.remove()
    heartbeat.remove()

    assert not path.exists()


@pytest.fixture
def stopping() -> Iterator[threading.Event]:
    """The worker's stop signal; set at teardown so the test's consumer threads end."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def scheduler() -> Iterator[BackgroundScheduler]:
    """A started scheduler without jobs (the worker's liveness only asks whether it runs)."""
    running = BackgroundScheduler()
    running.start()
    yield running
    if running.running:
        running.shutdown(wait=False)


def _settings(tmp_path) -> Settings:
    return Settings.from_env({"WORKER_HEARTBEAT_FILE": str(tmp_path / "scheduler-worker.heartbeat")})


def test_worker_heartbeat_beats_while_its_consumers_and_scheduler_run(tmp_path, stopping, scheduler):
    consumers = [QueueConsumer(f"billing-jobs-{n}", IdleQueue(stopping), lambda m: None, stopping) for n in (1, 2)]
    for consumer in consumers:
        consumer.start()

    heartbeat = worker_heartbeat(_settings(tmp_path), consumers, scheduler, clock=lambda: T0)

    assert heartbeat.beat() is True
    assert _mtime(tmp_path / "scheduler-worker.heartbeat") == T0


def test_a_consumer_thread_ended_by_an_unexpected_error_stops_the_worker_heartbeat(
    tmp_path, stopping, scheduler, caplog
):
    healthy = QueueConsumer("stripe-events-1", IdleQueue(stopping), lambda m: None, stopping)
    broken = QueueConsumer("billing-jobs-1", BrokenQueue(), lambda m: None, stopping)
    healthy.start()
    with caplog.at_level(logging.ERROR, logger="scheduler_worker.consumer"):
        broken.start()
        broken.join(timeout=10)

    heartbeat = worker_heartbeat(_settings(tmp_path), [healthy, broken], scheduler)

    assert not broken.is_alive()
    # Only the consumer's own records: other loggers (apscheduler) may write at this level too.
    consumer_records = [record for record in caplog.records if record.name == "scheduler_worker.consumer"]
    assert [record.queue for record in consumer_records] == ["billing-jobs-1"]
    assert heartbeat.beat() is False
    assert heartbeat.dead_parts() == ["billing-jobs-1"]
    assert not (tmp_path / "scheduler-worker.heartbeat").exists()


def test_a_stopped_scheduler_stops_the_worker_heartbeat(tmp_path, stopping, scheduler):
    consumer = QueueConsumer("billing-jobs-1", IdleQueue(stopping), lambda m: None, stopping)
    consumer.start()
    heartbeat = worker_heartbeat(_settings(tmp_path), [consumer], scheduler)

    scheduler.shutdown(wait=False)

    assert heartbeat.beat() is False
    assert heartbeat.dead_parts() == ["scheduler"]
