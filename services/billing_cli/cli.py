"""The ``billing`` command line (``pyproject`` script): operator commands that act on the deployed system."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from billing_cli import (
    accounts_command,
    events_command,
    invoices_command,
    reconcile_command,
    report_command,
    run_command,
    runs_command,
)
from billing_cli.stack_file import stack_environment
from billing_core import logging as billing_logging
from billing_core.bootstrap import WorkerUseCases, aws_session_from, bootstrap_worker
from billing_core.errors import SettingsError
from billing_core.settings import Settings

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The ``billing`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="billing", description=__doc__)
    parser.add_argument(
        "--stack",
        type=Path,
        metavar="STACK_JSON",
        help="act on a local stack: endpoints, tables, queues and the Stripe emulator from its stack.json",
    )
    subcommands = parser.add_subparsers(dest="command", required=True)
    run_command.register(subcommands)
    reconcile_command.register(subcommands)
    report_command.register(subcommands)
    runs_command.register(subcommands)
    accounts_command.register(subcommands)
    invoices_command.register(subcommands)
    events_command.register(subcommands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    use_cases: WorkerUseCases | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Parse ``argv``, wire the use cases from the environment (unless given) and run the subcommand."""
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    if use_cases is None:
        try:
            environ = {**os.environ, **stack_environment(args.stack)} if args.stack else dict(os.environ)
            settings = Settings.from_env(environ)
            refuse_local_aws_with_live_stripe(settings)
            billing_logging.configure(settings.log_level)
            use_cases = bootstrap_worker(settings, session=aws_session_from(environ) if args.stack else None)
        except SettingsError as error:
            print(f"billing: {error}", file=err)
            return EXIT_USAGE
    exit_code: int = args.handler(args, use_cases, out, err)
    return exit_code


def refuse_local_aws_with_live_stripe(settings: Settings) -> None:
    """A local AWS endpoint with no Stripe base URL would mix local records with live Stripe: refused."""
    if settings.aws_endpoint_url and not settings.stripe_api_base:
        raise SettingsError(
            "AWS_ENDPOINT_URL points at a local AWS but STRIPE_API_BASE is not set, which means live Stripe; "
            "set STRIPE_API_BASE to the local Stripe emulator (or use --stack)"
        )


if __name__ == "__main__":
    sys.exit(main())
