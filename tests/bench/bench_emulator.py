"""Throughput of the Stripe emulator: customer creates per second from one stripe SDK client.

Starts ``python -m stripe_emulator`` on a free port, warms up, then times N sequential
``customers.create`` calls (each with its own idempotency key, as the SDK sends). Prints one JSON line.

    .venv/bin/python tests/bench/bench_emulator.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time

import requests
import stripe


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise SystemExit("emulator did not become healthy")


def measure(requests_count: int = 2000, warmup: int = 100) -> dict:
    """Time ``requests_count`` sequential customer creates against a fresh emulator process."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_emulator", "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_healthy(url)
        client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": url}, max_network_retries=0)
        for i in range(warmup):
            client.v1.customers.create(params={"email": f"warm{i}@example.com"})
        started = time.perf_counter()
        for i in range(requests_count):
            client.v1.customers.create(params={"email": f"c{i}@example.com", "metadata": {"n": str(i)}})
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=15)
    return {
        "benchmark": "emulator_customer_create",
        "requests": requests_count,
        "seconds": round(elapsed, 3),
        "per_second": round(requests_count / elapsed, 1),
        "mean_ms": round(elapsed / requests_count * 1000, 3),
    }


def test_customer_creates_per_second() -> None:
    """`make bench` entry: prints the figure; asserts only that every create succeeded."""
    result = measure()
    print(json.dumps(result))
    assert result["per_second"] > 0


def main() -> int:
    """Run the benchmark and print customers/second."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    print(json.dumps(measure(args.requests, args.warmup)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
