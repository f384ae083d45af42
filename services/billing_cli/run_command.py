"""``billing run --period YYYY-MM [--account ID] [--dry-run] [--wait | --no-wait]``: start a billing run by hand.

The run enqueues one job per account for the scheduler-worker replicas (exactly what the monthly cron
does) and then follows the billing records with a progress bar on stderr and a summary table on
stdout: until every invoice is finalized (the default; an open invoice is "finalized, payment
pending"), or with ``--wait`` until every payment has an outcome (paid, failed, action required).
``--no-wait`` enqueues and exits. ``--dry-run`` prints the plan and writes nothing: no lease, no
record, no message, no Stripe call.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from billing_core.bootstrap import WorkerUseCases
from billing_core.domain.costs import Period
from billing_core.domain.errors import BillingDomainError
from billing_core.domain.invoice_plan import InvoicePlan
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Invoice
from billing_core.errors import BillingError
from billing_core.use_cases.billing_run import replica_owner
from billing_core.use_cases.einvoices import EInvoiceFile

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 3
EXIT_TIMEOUT = 4

POLL_SECONDS = 0.5


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` subcommand to the ``billing`` command line."""
    parser = subcommands.add_parser("run", help="bill a period: one invoice per account", description=__doc__)
    parser.add_argument("--period", required=True, type=period_argument, help="the month to bill, YYYY-MM")
    parser.add_argument("--account", help="bill only this account (userId)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    waiting = parser.add_mutually_exclusive_group()
    waiting.add_argument("--wait", action="store_true", help="wait until every payment has an outcome")
    waiting.add_argument("--no-wait", action="store_true", help="enqueue the jobs and exit")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the invoices (default 600)")
    parser.set_defaults(handler=run_command)


def period_argument(text: str) -> Period:
    """``--period YYYY-MM`` as a ``Period``; anything else is a usage error."""
    try:
        return Period.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_command(
    args: argparse.Namespace,
    use_cases: WorkerUseCases,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Carry out ``billing run``; returns the exit code."""
    run = use_cases.billing_run()
    try:
        if args.dry_run:
            planned = run.plan(args.period, only_account=args.account)
            print_plan(planned.plans, out)
            for skipped in planned.skipped:
                print(f"skipped {skipped.account_id}: {skipped.reason}", file=err)
            if planned.costs_estimated:
                print(f"note: Cost Explorer still marks {args.period.label} as estimated", file=err)
            print(f"dry run: {len(planned.plans)} invoice(s) planned, nothing written", file=err)
            return EXIT_OK
        result = run.start(args.period, owner=replica_owner(), trigger="cli", only_account=args.account)
    except (BillingError, BillingDomainError) as error:
        print(f"billing run {args.period.label} refused: {error}", file=err)
        return EXIT_REFUSED
    for skipped in result.skipped:
        print(f"skipped {skipped.account_id}: {skipped.reason}", file=err)
    if result.costs_estimated:
        print(
            f"warning: Cost Explorer still marks {args.period.label} as estimated; the invoices bill the "
            "estimate (the cron's run would wait for final costs)",
            file=err,
        )
    print(f"billing run {result.run_id}: {result.enqueued} job(s) enqueued", file=err)
    if args.no_wait:
        return EXIT_OK
    reached = _has_payment_outcome if args.wait else _is_finalized
    records = wait_for_invoices(
        use_cases.operator_invoices.find,
        result.plans,
        err,
        timeout=args.timeout,
        sleep=sleep,
        clock=clock,
        reached=reached,
    )
    print_summary(result.plans, records, out)
    finished = all(reached(records.get(plan.invoice_id)) for plan in result.plans)
    return EXIT_OK if finished else EXIT_TIMEOUT


def wait_for_invoices(
    find: Callable[[str, str], Invoice | None],
    plans: Sequence[InvoicePlan],
    err: TextIO,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    reached: Callable[[Invoice | None], bool] | None = None,
) -> dict[str, Invoice]:
    """Poll the records until every planned invoice has ``reached`` its goal (default: finalized) or ``timeout``."""
    reached = reached or _is_finalized
    goal = "with a payment outcome" if reached is _has_payment_outcome else "finalized"
    deadline = clock() + timeout
    records: dict[str, Invoice] = {}
    pending = list(plans)
    with tqdm(
        total=len(plans), desc=f"invoices {goal}", unit="invoice", file=err, ascii=True, dynamic_ncols=False, ncols=80
    ) as bar:
        while True:
            still_pending = []
            for plan in pending:
                record = find(plan.account_id, plan.invoice_id)
                if record is not None:
                    records[plan.invoice_id] = record
                if not reached(record):
                    still_pending.append(plan)
            bar.update(len(pending) - len(still_pending))
            pending = still_pending
            if not pending or clock() >= deadline:
                break
            sleep(POLL_SECONDS)
    if pending:
        print(f"timed out: {len(pending)} invoice(s) not {goal} yet; the workers keep going", file=err)
    return records


def _is_finalized(record: Invoice | None) -> bool:
    return record is not None and record.status not in (InvoiceStatus.PENDING, InvoiceStatus.DRAFT)


_OUTCOMES = frozenset(
    {
        InvoiceStatus.PAID,
        InvoiceStatus.PAYMENT_FAILED,
        InvoiceStatus.ACTION_REQUIRED,
        InvoiceStatus.VOID,
        InvoiceStatus.UNCOLLECTIBLE,
    }
)


def _has_payment_outcome(record: Invoice | None) -> bool:
    # An open invoice without a payment method waits for the customer, not for Stripe: that is its outcome.
    return record is not None and (
        record.status in _OUTCOMES or (record.status is InvoiceStatus.OPEN and record.stripe.payment_method_missing)
    )


def status_text(record: Invoice | None) -> str:
    """An invoice's status as the summary says it: an open one is finalized with its payment pending."""
    if record is None:
        return "not started"
    if record.status is InvoiceStatus.OPEN:
        return "finalized, no payment method" if record.stripe.payment_method_missing else "finalized, payment pending"
    return record.status.value


def print_plan(plans: Sequence[InvoicePlan], out: TextIO) -> None:
    """The dry run's table: each account's lines and total, then the AWS breakdown."""
    rows = [("account", "invoice", "base fee", "AWS", "total", "currency", "breakdown")]
    for plan in plans:
        breakdown = ", ".join(f"{service} {amount}" for service, amount in plan.breakdown.items()) or "-"
        rows.append(
            (
                plan.account_id,
                plan.invoice_id,
                str(plan.base_fee),
                str(plan.aws_costs),
                str(plan.total),
                plan.currency,
                breakdown,
            )
        )
    print_table(rows, out)


def print_summary(plans: Sequence[InvoicePlan], records: dict[str, Invoice], out: TextIO) -> None:
    """The run's table: account, status, total (and whether a payment method is missing)."""
    rows = [("account", "invoice", "status", "total", "currency", "note")]
    for plan in plans:
        record = records.get(plan.invoice_id)
        note = "no payment method" if record is not None and record.stripe.payment_method_missing else ""
        status = status_text(record)
        amount = record.amount if record is not None else plan.total
        rows.append((plan.account_id, plan.invoice_id, status, str(amount), plan.currency, note))
    print_table(rows, out)


def print_table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """``rows`` as aligned columns, the first row as the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() + "\n")
        if number == 0:
            out.write("  ".join("-" * width for width in widths) + "\n")
    out.flush()


def write_file(stored: EInvoiceFile, path: Path, out: TextIO) -> int:
    """Write a stored e-invoice file to ``path`` and say so (exit 0)."""
    path.write_bytes(stored.body)
    print(f"{path} ({stored.content_type}, {len(stored.body)} bytes)", file=out)
    return 0
