"""The scheduler-worker process: its composition root and its life cycle (start, run, stop on SIGTERM)."""
from __future__ import annotations

import logging
import signal
import threading

from billing_core import logging as billing_logging
from billing_core.bootstrap import WorkerServices, bootstrap_worker
from billing_core.settings import Settings
from scheduler_worker.billing_jobs import billing_job_consumers
from scheduler_worker.consumer import RECEIVE_WAIT_SECONDS
from scheduler_worker.dead_letters import DeadLetterMonitor
from scheduler_worker.stripe_events import event_ports, stripe_event_consumers
from scheduler_worker.schedule import billing_scheduler

log = logging.getLogger("scheduler_worker")


def main(settings: Settings | None = None, services: WorkerServices | None = None) -> int:
    """Run the consumers until SIGTERM or SIGINT; returns the exit code."""
    if settings is None:
        settings = Settings.from_env()
        billing_logging.configure(settings.log_level)
    if services is None:
        services = bootstrap_worker(settings)

    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    consumers = [
        *billing_job_consumers(services, stopping),
        *stripe_event_consumers(services.stripe_events, event_ports(services), stopping),
    ]
    dead_letters = DeadLetterMonitor(
        {"billing-jobs": services.billing_jobs, "stripe-events": services.stripe_events}, stopping
    )
    dead_letters.start()
    for consumer in consumers:
        consumer.start()
    scheduler = billing_scheduler(services)
    scheduler.start()
    log.info("worker ready", extra={"queues": [consumer.name for consumer in consumers]})
    stopping.wait()
    scheduler.shutdown(wait=False)
    for consumer in consumers:
        consumer.join(timeout=RECEIVE_WAIT_SECONDS + 10)
    log.info("worker stopped")
    return 0
