"""``billing runs show [--period YYYY-MM]``: the state of a period's billing run.

Waiting for final costs (Cost Explorer still marks the month estimated; the scheduler re-checks it
daily), enqueuing, enqueued, done (every invoice finalized); the counts the run recorded, the invoices
per status, the accounts it skipped and why, and the dead-letter depth of the job queue.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TextIO

from billing_cli.run_command import period_argument, print_table
from billing_core.bootstrap import WorkerUseCases
from billing_core.domain.costs import Period
from billing_core.domain.records import RunStatus
from billing_core.errors import BillingError

EXIT_OK = 0
EXIT_FAILED = 1

_STATES = {
    RunStatus.WAITING_FOR_FINAL_COSTS: "waiting for final costs",
    RunStatus.ENQUEUING: "enqueuing",
    RunStatus.ENQUEUED: "enqueued",
}


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``runs show`` to the ``billing`` command line."""
    parser = subcommands.add_parser("runs", help="the state of billing runs", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="one period's run (default: the previous month)")
    show.add_argument("--period", type=period_argument, help="YYYY-MM (default: the month before today, UTC)")
    show.set_defaults(handler=show_command)


def show_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Print the period's run record as a table; returns the exit code."""
    period = args.period or Period.previous(datetime.now(UTC))
    try:
        overview = use_cases.run_overview(period)
        dead_letters = use_cases.dead_letters.depth("billing-jobs")
    except BillingError as error:
        print(f"billing runs show {period.label} failed: {error}", file=err)
        return EXIT_FAILED
    record = overview.record
    statuses = dict(overview.invoices_by_status)
    if overview.unreadable_invoices:
        statuses["unreadable"] = overview.unreadable_invoices
    rows = [["period", period.label]]
    if record is None:
        rows.append(["state", "not run yet"])
    else:
        rows += [
            ["state", _STATES.get(record.status, record.status.value)],
            ["costs", "estimated" if record.costs_estimated else "final"],
            ["run", record.run_id],
            ["trigger", record.trigger],
            ["accounts", str(record.accounts)],
            ["skipped", str(record.skipped)],
            ["enqueued", str(record.enqueued)],
            ["cost explorer requests", str(record.cost_requests)],
            ["started", _time(record.started_at)],
            ["updated", _time(record.updated_at)],
        ]
    if record is not None and record.status is RunStatus.ENQUEUED and statuses:
        settled = sum(count for status, count in statuses.items() if status not in ("pending", "draft"))
        rows.append(["done", "yes" if settled == sum(statuses.values()) else f"{settled}/{sum(statuses.values())}"])
    rows += [[f"invoices {status}", str(count)] for status, count in sorted(statuses.items())]
    if record is not None:
        rows += [[f"skipped {account}", reason] for account, reason in sorted(record.skipped_reasons.items())]
    rows.append(["billing-jobs dead letters", str(dead_letters)])
    print_table([["", "run"], *rows], out)
    return EXIT_OK


def _time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
