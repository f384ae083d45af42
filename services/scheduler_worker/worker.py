"""The scheduler-worker process: its composition root and its life cycle (start, run, stop on SIGTERM)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence

from apscheduler.schedulers.background import BackgroundScheduler

from billing_core import logging as billing_logging
from billing_core.bootstrap import WorkerUseCases, bootstrap_worker
from billing_core.settings import Settings
from scheduler_worker.billing_jobs import billing_job_consumers, retry_schedule
from scheduler_worker.consumer import QueueConsumer
from scheduler_worker.dead_letters import DeadLetterMonitor
from scheduler_worker.document_mail import document_mail_consumers
from scheduler_worker.heartbeat import Heartbeat
from scheduler_worker.schedule import billing_scheduler, scheduler_is_alive
from scheduler_worker.stripe_events import stripe_event_consumers

log = logging.getLogger("scheduler_worker")

# After a stop request a consumer first waits out its receive in flight (QUEUE_WAIT_SECONDS), then
# handles the batch that receive returned; this is the time allowed for that batch.
STOP_GRACE_SECONDS = 10


def worker_consumers(use_cases: WorkerUseCases, stopping: threading.Event) -> list[QueueConsumer]:
    """Every consumer of the worker: ``billing-jobs``, ``stripe-events`` and, with e-mail, ``document-mail`` and
    ``mail-events``, long-polling ``QUEUE_WAIT_SECONDS``.

    All of them call Stripe through one token bucket, so the process stays under
    ``STRIPE_MAX_REQUESTS_PER_SECOND`` however the work is split between the queues.
    """
    return [
        *billing_job_consumers(use_cases, stopping),
        *stripe_event_consumers(
            use_cases.stripe_events,
            use_cases.event_ports(),
            stopping,
            wait_seconds=use_cases.settings.queue_wait_seconds,
            retry_delay=retry_schedule(use_cases.settings),
        ),
        *document_mail_consumers(use_cases, stopping),
    ]


def worker_heartbeat(
    settings: Settings,
    consumers: Sequence[QueueConsumer],
    scheduler: BackgroundScheduler,
    *,
    clock: Callable[[], float] = time.time,
) -> Heartbeat:
    """The heartbeat on ``WORKER_HEARTBEAT_FILE``, alive while every consumer thread and the scheduler are."""
    parts = {consumer.name: consumer.is_alive for consumer in consumers}
    parts["scheduler"] = lambda: scheduler_is_alive(scheduler)
    return Heartbeat(settings.worker_heartbeat_file, parts, clock=clock)


def main(settings: Settings | None = None, use_cases: WorkerUseCases | None = None) -> int:
    """Run the consumers until SIGTERM or SIGINT; returns the exit code."""
    if settings is None:
        settings = Settings.from_env()
        billing_logging.configure(settings.log_level)
    if use_cases is None:
        use_cases = bootstrap_worker(settings)

    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    consumers = worker_consumers(use_cases, stopping)
    dead_letters = DeadLetterMonitor(use_cases.worker_queues, stopping)
    dead_letters.start()
    for consumer in consumers:
        consumer.start()
    scheduler = billing_scheduler(use_cases)
    scheduler.start()
    heartbeat = worker_heartbeat(settings, consumers, scheduler)
    log.info(
        "worker ready",
        extra={"queues": [consumer.name for consumer in consumers], "queueWaitSeconds": settings.queue_wait_seconds},
    )
    heartbeat.run_until(stopping)
    scheduler.shutdown(wait=False)
    # One deadline for all: the consumers wind down side by side, not one after another.
    deadline = time.monotonic() + settings.queue_wait_seconds + STOP_GRACE_SECONDS
    for consumer in consumers:
        consumer.join(timeout=max(0.0, deadline - time.monotonic()))
    heartbeat.remove()
    still_running = [consumer.name for consumer in consumers if consumer.is_alive()]
    if still_running:
        # Their unfinished messages were not deleted: SQS shows them again after the visibility timeout.
        log.warning("worker stopping before every consumer finished its batch", extra={"consumers": still_running})
    log.info("worker stopped")
    return 0
