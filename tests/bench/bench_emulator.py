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


def main() -> int:
    """Run the benchmark and print customers/second."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "stripe_emulator", "--port", str(port), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(url)
        client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": url}, max_network_retries=0)
        for i in range(args.warmup):
            client.v1.customers.create(params={"email": f"warm{i}@example.com"})
        started = time.perf_counter()
        for i in range(args.requests):
            client.v1.customers.create(params={"email": f"c{i}@example.com", "metadata": {"n": str(i)}})
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=15)
    print(json.dumps({"benchmark": "emulator_customer_create", "requests": args.requests,
                      "seconds": round(elapsed, 3), "per_second": round(args.requests / elapsed, 1),
                      "mean_ms": round(elapsed / args.requests * 1000, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
