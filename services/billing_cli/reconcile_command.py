"""``billing reconcile --since YYYY-MM-DD``: repair the records from Stripe's events and invoices.

For events missed beyond Stripe's retry window (the receiver was down for days, an endpoint was
disabled): lists Stripe's events and the known customers' invoices created since the date and applies
them with the webhook rules. Idempotent: a second run finds nothing to change. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import TextIO

from billing_core.bootstrap import WorkerUseCases
from billing_core.errors import BillingError

EXIT_OK = 0
EXIT_FAILED = 1


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``reconcile`` subcommand to the ``billing`` command line."""
    parser = subcommands.add_parser(
        "reconcile", help="repair records from Stripe's events and invoices", description=__doc__
    )
    parser.add_argument("--since", required=True, type=_date, help="first day (UTC) to look at, YYYY-MM-DD")
    parser.set_defaults(handler=run_reconcile)


def run_reconcile(args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO, err: TextIO) -> int:
    """Reconcile and print the summary; exit 1 if Stripe or AWS failed part-way (rerun: it is idempotent)."""
    try:
        report = use_cases.reconcile(args.since)
    except BillingError as error:
        print(f"billing reconcile: {type(error).__name__}: {error}", file=err)
        return EXIT_FAILED
    print(json.dumps(report.as_dict(), sort_keys=True), file=out)
    return EXIT_OK


def _date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a date such as 2024-11-01") from None
