"""The ``billing`` command line (``pyproject`` script): operator commands that act on the deployed system."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from billing_core import logging as billing_logging
from billing_core.bootstrap import WorkerServices, bootstrap_worker
from billing_core.errors import SettingsError
from billing_core.settings import Settings
from scheduler_worker import reconcile_command, run_command

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The ``billing`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="billing", description=__doc__)
    subcommands = parser.add_subparsers(dest="command", required=True)
    run_command.register(subcommands)
    reconcile_command.register(subcommands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    services: WorkerServices | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Parse ``argv``, wire the services from the environment (unless given) and run the subcommand."""
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    if services is None:
        try:
            settings = Settings.from_env()
            billing_logging.configure(settings.log_level)
            services = bootstrap_worker(settings)
        except SettingsError as error:
            print(f"billing: {error}", file=err)
            return EXIT_USAGE
    exit_code: int = args.handler(args, services, out, err)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
