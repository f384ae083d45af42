"""Container health check, standard library only (it runs in the image's Python, before any import of the app).

``python healthcheck.py http://127.0.0.1:8000/healthz`` is healthy when the URL answers 200.
``python healthcheck.py --heartbeat PATH --max-age SECONDS`` is healthy when the file at PATH was
touched within SECONDS (the scheduler-worker touches it every 30 s while its consumers and scheduler run).
Exit code 0 means healthy, 1 unhealthy, as Docker and ECS expect.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request


def http_ok(url: str, timeout: float) -> bool:
    """True when ``url`` answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a fixed local URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def heartbeat_fresh(path: str, max_age: float) -> bool:
    """True when the file at ``path`` was modified less than ``max_age`` seconds ago."""
    try:
        return time.time() - os.stat(path).st_mtime < max_age
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Run the check named on the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="healthcheck")
    parser.add_argument("url", nargs="?", help="URL that must answer 200")
    parser.add_argument("--heartbeat", help="file that must have been touched recently")
    parser.add_argument("--max-age", type=float, default=120.0, help="seconds (default 120)")
    parser.add_argument("--timeout", type=float, default=3.0, help="HTTP timeout in seconds (default 3)")
    args = parser.parse_args(argv)
    if bool(args.url) == bool(args.heartbeat):
        parser.error("give either a URL or --heartbeat PATH")
    healthy = http_ok(args.url, args.timeout) if args.url else heartbeat_fresh(args.heartbeat, args.max_age)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
