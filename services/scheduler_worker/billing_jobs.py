"""The ``billing-jobs`` consumer: each message is one account's invoice job for one period."""

from __future__ import annotations

import logging
import threading

from billing_core.bootstrap import WorkerUseCases
from billing_core.logging import correlation
from billing_core.ports import ReceivedMessage
from billing_core.settings import Settings
from billing_core.use_cases.invoice_job import InvoiceJob
from billing_core.use_cases.invoice_messages import plan_from_message
from scheduler_worker.consumer import MessageHandler, QueueConsumer, RetrySchedule

log = logging.getLogger(__name__)


def retry_schedule(settings: Settings) -> RetrySchedule:
    """The back-off of a failed message of either worker queue.

    ``RETRY_BASE_SECONDS`` doubling per attempt up to ``RETRY_MAX_SECONDS``.
    """
    return RetrySchedule(settings.retry_base_seconds, max(settings.retry_base_seconds, settings.retry_max_seconds))


def billing_job_handler(job: InvoiceJob) -> MessageHandler:
    """Handle one ``billing-jobs`` message: run (or resume) its invoice job.

    Any failure raises, so the message comes back later (see ``consumer``) and the job resumes where
    it stopped; only a message that is no invoice job, or keeps failing unexpectedly, is dead-lettered.
    """

    def handle(message: ReceivedMessage) -> None:
        plan, run_id = plan_from_message(message.body)
        with correlation(plan.invoice_id):
            result = job.run(plan, run_id=run_id)
            log.info(
                "invoice job done",
                extra={
                    "invoiceId": result.invoice_id,
                    "status": result.status,
                    "alreadyDone": result.already_done,
                    "runId": run_id,
                },
            )

    return handle


def billing_job_consumers(use_cases: WorkerUseCases, stopping: threading.Event) -> list[QueueConsumer]:
    """``WORKER_THREADS`` consumers of ``billing-jobs`` sharing one rate-limited Stripe gateway.

    Each long-polls for ``QUEUE_WAIT_SECONDS``.
    """
    settings = use_cases.settings
    handler = billing_job_handler(use_cases.invoice_job())
    return [
        QueueConsumer(
            f"billing-jobs-{number}",
            use_cases.billing_jobs,
            handler,
            stopping,
            retry_delay=retry_schedule(settings),
            wait_seconds=settings.queue_wait_seconds,
        )
        for number in range(1, settings.worker_threads + 1)
    ]
