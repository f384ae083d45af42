"""The monthly trigger: an APScheduler cron (``BILLING_CRON``, UTC) that starts the previous month's run,
and a daily re-check (``FINAL_COSTS_CHECK_HOUR``) for a run waiting for final costs.

Every replica runs this scheduler; the run's lease and run record make sure only one of them
enqueues (see ``billing_core.use_cases.billing_run``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from billing_core.bootstrap import WorkerUseCases
from billing_core.domain.costs import Period
from billing_core.domain.errors import BillingDomainError
from billing_core.use_cases.billing_run import BillingRun, BillingRunRefused, BillingRunResult, replica_owner

log = logging.getLogger(__name__)

JOB_ID = "monthly-billing-run"
FINAL_COSTS_JOB_ID = "final-costs-check"
# A replica that was down at 00:00 still fires within the hour; the run record stops a second run.
MISFIRE_GRACE_SECONDS = 3600


def trigger_billing_run(run: BillingRun, owner: str, now: datetime | None = None) -> BillingRunResult | None:
    """What the cron fires: bill the month before ``now``, once; ``None`` if another replica did or does."""
    period = Period.previous(now or datetime.now(UTC))
    try:
        return run.start(period, owner=owner, trigger="cron", only_once=True)
    except BillingRunRefused as refused:
        log.info("billing run not started", extra={"period": period.label, "reason": str(refused)})
    except BillingDomainError as error:
        # A missing FX rate, a mismatched cost report: nothing was enqueued; fix and run `billing run`.
        log.error("billing run refused", extra={"period": period.label, "reason": str(error)})
    return None


def billing_scheduler(use_cases: WorkerUseCases, *, owner: str | None = None) -> BackgroundScheduler:
    """A (not yet started) scheduler that fires the billing run on ``BILLING_CRON`` in UTC."""
    run = use_cases.billing_run()
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        trigger_billing_run,
        CronTrigger.from_crontab(use_cases.settings.billing_cron, timezone=UTC),
        args=[run, owner or replica_owner()],
        id=JOB_ID,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
    )
    # Once a day the previous month's run is tried again: a run waiting for final costs re-checks them
    # (one Cost Explorer query); an enqueued run refuses at once from its run record, without a query.
    scheduler.add_job(
        trigger_billing_run,
        CronTrigger(hour=use_cases.settings.final_costs_check_hour, minute=0, timezone=UTC),
        args=[run, owner or replica_owner()],
        id=FINAL_COSTS_JOB_ID,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
    )
    return scheduler


def scheduler_is_alive(scheduler: BackgroundScheduler) -> bool:
    """Whether the scheduler is started and its thread still runs."""
    # APScheduler has no public check of its thread; ``running`` alone stays true after the thread died.
    thread = getattr(scheduler, "_thread", None)
    return scheduler.running and thread is not None and thread.is_alive()
