"""Change what the local Cost Explorer answers to the billing run's query of a month, on a running stack.

AWS revises a month until it is final, and a credit can land after the month was billed. This makes
the local stack do the same, so `make dev` walks those paths through the real adapters:

    python -m local_stack.costs --period 2026-10 --cost "2026-10:AWS Lambda=10" --estimated 2026-10
    python -m local_stack.costs --period 2026-10 --cost "2026-10:AWS Lambda=12.50"          # final now
    python -m local_stack.costs --period 2026-11 --cost "2026-11:AWS Lambda=17.74" \\
        --cost "2026-10:AWS Lambda=-2"                       # a credit for October, seen by November's run

Then bill with ``billing --stack .local/stack.json run --period ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from billing_core.domain.costs import Period
from local_stack.cost_seed import revise_billing_query


def _cost(text: str) -> tuple[Period, str, str]:
    try:
        month, rest = text.split(":", 1)
        service, amount = rest.rsplit("=", 1)
        Decimal(amount)
        return Period.parse(month), service.strip(), amount.strip()
    except (ValueError, InvalidOperation):
        raise argparse.ArgumentTypeError(f"expected YYYY-MM:Service=Amount, got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Revise the answer to the billing run's query of ``--period``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m local_stack.costs", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", type=Path, default=Path(".local/stack.json"), help="the running stack's file")
    parser.add_argument("--period", type=Period.parse, required=True, help="the month the run bills (YYYY-MM)")
    parser.add_argument(
        "--cost",
        type=_cost,
        action="append",
        required=True,
        metavar="YYYY-MM:SERVICE=AMOUNT",
        help="a service's USD amount in a month of the query (repeatable)",
    )
    parser.add_argument(
        "--estimated",
        type=Period.parse,
        action="append",
        default=[],
        metavar="YYYY-MM",
        help="a month Cost Explorer still marks Estimated (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        endpoint = json.loads(args.stack.read_text())["aws_endpoint"]
    except (OSError, ValueError, KeyError) as error:
        print(f"{args.stack}: not a running local stack's stack.json ({type(error).__name__})", file=sys.stderr)
        return 2
    months: dict[Period, dict[str, str]] = {}
    for month, service, amount in args.cost:
        months.setdefault(month, {})[service] = amount
    revise_billing_query(endpoint, args.period, months, estimated=set(args.estimated))
    for month, amounts in sorted(months.items()):
        state = "estimated" if month in args.estimated else "final"
        print(f"{month.label} ({state}): " + ", ".join(f"{s} {a} USD" for s, a in amounts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
