"""``python -m local_stack``: run the whole system locally until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from local_stack.errors import PortInUse, StackError
from local_stack.stack import ADMIN_PAGE_PATH, DEFAULT_REGION, Stack, StackPorts, start_stack

EXIT_PORT_IN_USE = 2
EXIT_FAILED = 1


class _StopRequested(BaseException):
    """SIGINT or SIGTERM arrived; unwinds whatever is running so the stack stops cleanly."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags; each port also has an environment variable, the flag wins."""
    defaults = StackPorts()
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)

    def port(flag: str, env: str, default: int, what: str) -> None:
        parser.add_argument(
            flag,
            type=int,
            default=int(os.environ.get(env, default)),
            help=f"{what} port (env {env}, default {default})",
        )

    port("--moto-port", "LOCAL_STACK_MOTO_PORT", defaults.moto, "AWS (moto server)")
    port("--emulator-port", "LOCAL_STACK_EMULATOR_PORT", defaults.emulator, "Stripe emulator")
    port("--api-port", "LOCAL_STACK_API_PORT", defaults.api, "billing-api")
    port("--webhook-port", "LOCAL_STACK_WEBHOOK_PORT", defaults.webhook, "webhook-receiver")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("LOCAL_STACK_ROOT", ".")),
        help="directory that gets .local/stack.json and .local/logs/ (default: here)",
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("LOCAL_STACK_REGION", DEFAULT_REGION),
        help=f"AWS region of the local resources (default {DEFAULT_REGION})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the stack, print how to reach it, and keep it up until a signal; returns the exit code."""
    args = parse_args(argv)
    ports = StackPorts(moto=args.moto_port, emulator=args.emulator_port, api=args.api_port, webhook=args.webhook_port)
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    print("local stack: starting moto, the Stripe emulator and the services ...", flush=True)
    stack = None
    try:
        stack = start_stack(ports, args.root, region=args.region)
        _print_ready(stack)
        while True:
            failed = _failed_process(stack)
            if failed:
                print(
                    f"local stack: {failed} exited unexpectedly; see {stack.log_path(failed)}. Stopping.",
                    file=sys.stderr,
                    flush=True,
                )
                return EXIT_FAILED
            time.sleep(0.5)
    except _StopRequested:
        print("local stack: stopping ...", flush=True)
        return 0
    except PortInUse as error:
        print(f"local stack: {error}", file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE
    except StackError as error:
        print(f"local stack: failed to start: {error}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    finally:
        # A second Ctrl-C must not interrupt the clean-up of the first.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
            print("local stack: stopped.", flush=True)


def _request_stop(signum: int, frame: object) -> None:
    raise _StopRequested(signal.Signals(signum).name)


def _failed_process(stack: Stack) -> str | None:
    for name, process in stack.processes.items():
        if not process.is_running():
            return name
    return None


def _print_ready(stack: Stack) -> None:
    info = stack.info
    lines = [
        f"local stack: ready in {stack.startup_seconds:.1f} s",
        f"  admin page        {info['api_url']}{ADMIN_PAGE_PATH}",
        f"  operator page     {info['api_url']}/operator",
        f"  billing-api       {info['api_url']}",
        f"  webhook-receiver  {info['webhook_url']}",
        f"  Stripe emulator   {info['stripe_api_base']}",
        f"  AWS (moto)        {info['aws_endpoint']}  region {info['region']}",
        f"  admin login       {info['admin']['username']} / {info['admin']['password']}",
        f"  operator login    {info['operator']['username']} / {info['operator']['password']}",
        "  operator command  .venv/bin/billing --stack .local/stack.json accounts list",
        f"  stack.json        {stack.stack_file}",
        f"  logs              {stack.logs_dir}/",
        "Ctrl-C stops everything.",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
