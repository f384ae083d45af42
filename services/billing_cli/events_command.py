"""``billing events dlq`` and ``billing events redrive``: the dead letters of the worker's queues.

A message lands in a dead-letter queue only when it can never be handled (no Stripe event, no invoice
job, an event Stripe does not have), when it kept failing unexpectedly, or, without a reason, when
the worker handling it died each time. Outages never put one there: those messages wait and retry.

``dlq`` lists them with the reason the worker recorded; ``redrive`` sends them back to their queue
once the cause is fixed (every handler is idempotent, so an event already applied is skipped). A
redrive is written to the audit log.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from billing_cli.accounts_command import operator_name
from billing_cli.run_command import print_table
from billing_core.bootstrap import WorkerUseCases
from billing_core.errors import BillingError

EXIT_OK = 0
EXIT_FAILED = 1
QUEUES = ("stripe-events", "billing-jobs", "document-mail", "mail-events")
BODY_PREVIEW_CHARS = 60
NO_REASON = "none recorded: received too often without being handled (the worker died each time)"


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``events dlq`` and ``events redrive`` to the ``billing`` command line."""
    parser = subcommands.add_parser(
        "events",
        help="dead-lettered messages of the worker's queues",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    dlq = actions.add_parser("dlq", help="list the dead letters with their reasons")
    dlq.add_argument("--queue", choices=QUEUES, default="stripe-events")
    dlq.add_argument("--limit", type=_positive, default=100, help="at most this many (default 100)")
    dlq.set_defaults(handler=dlq_command)
    redrive = actions.add_parser("redrive", help="move the dead letters back to their queue")
    redrive.add_argument("--queue", choices=QUEUES, default="stripe-events")
    redrive.add_argument("--limit", type=_positive, help="move at most this many (default: all)")
    redrive.add_argument("--reason", help="why (kept in the audit log)")
    redrive.set_defaults(handler=redrive_command)


def dlq_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Print the queue's dead letters as a table; returns the exit code."""
    try:
        letters = use_cases.dead_letters.dead_letters(args.queue, limit=args.limit)
    except BillingError as error:
        print(f"billing events dlq failed: {error}", file=err)
        return EXIT_FAILED
    if not letters:
        print(f"{args.queue}: no dead letters", file=out)
        return EXIT_OK
    rows = [
        [
            letter.message_id,
            letter.dead_lettered_at or "-",
            str(letter.attempts),
            letter.reason or NO_REASON,
            _preview(letter.body),
        ]
        for letter in letters
    ]
    print_table([["message", "dead-lettered", "attempts", "reason", "body"], *rows], out)
    print(
        f"{args.queue}: {len(letters)} dead letter(s)" + (" shown (--limit)" if len(letters) == args.limit else ""),
        file=out,
    )
    return EXIT_OK


def redrive_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Move the queue's dead letters back; returns the exit code."""
    try:
        moved = use_cases.dead_letters.redrive(args.queue, actor=operator_name(), limit=args.limit, reason=args.reason)
    except BillingError as error:
        print(f"billing events redrive failed: {error}", file=err)
        return EXIT_FAILED
    print(f"{args.queue}: {moved} message(s) moved back from the dead-letter queue", file=out)
    return EXIT_OK


def _preview(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= BODY_PREVIEW_CHARS else flat[: BODY_PREVIEW_CHARS - 1] + "…"


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
