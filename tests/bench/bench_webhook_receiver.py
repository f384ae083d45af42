"""Benchmarks of the webhook path (``make bench``; not part of ``make test``). Figures are printed as JSON lines.

1. Requests per second of the webhook-receiver under gunicorn with the production settings
   (``deploy/gunicorn.conf.py``), its queue pointed at an in-memory queue, next to a bare Flask
   endpoint under the same gunicorn settings in the same run. The ratio is the figure (goal >= 0.7).
2. p99 latency of the receiver at a fixed 100 requests/s (open loop: latency counts from the
   scheduled send time, so a slow answer also delays the requests behind it).
3. Events applied per second by one worker (its stripe-events consumer threads) against the local stack.
4. The nesting check that runs before a signed body is parsed: milliseconds for 1 MiB, Stripe-like or hostile.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from flask import Flask, jsonify

from stripe_emulator import sign_payload
from tests.support.observe import waiting_messages

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"
SECRET = "whsec_bench_" + "0" * 24
CLIENT_THREADS = 8
REQUESTS = 3000
WARMUP = 300


# --- gunicorn targets ------------------------------------------------------------------------------


def receiver_app() -> Flask:
    """The production webhook-receiver app with static secrets and an in-memory queue (gunicorn target)."""
    from billing_core import logging as billing_logging
    from billing_core.bootstrap import WebhookReceiverPorts, WebhookReceiverUseCases
    from billing_core.settings import Settings
    from tests.support.fakes import FakeQueue, FakeSecretsProvider
    from webhook_receiver import create_app

    settings = Settings.from_env({"STRIPE_EVENTS_QUEUE_URL": "http://in-memory.invalid/stripe-events"})
    billing_logging.configure(settings.log_level)  # the production log line per webhook is part of the cost
    ports = WebhookReceiverPorts(
        settings=settings, secrets=FakeSecretsProvider(webhook_secrets=[SECRET]), stripe_events=FakeQueue()
    )
    return create_app(settings, WebhookReceiverUseCases(ports))


def bare_app() -> Flask:
    """A Flask endpoint that reads the body and answers like the receiver, doing nothing else (gunicorn target)."""
    app = Flask(__name__)

    @app.post("/billing/webhook")
    def webhook():
        from flask import request

        request.get_data()
        return jsonify(received=True, enqueued=True)

    return app


# --- harness ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """``target`` served by gunicorn with the production config on a free port."""

    def __init__(self, target: str) -> None:
        self.port = _free_port()
        env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "PYTHONPATH": str(ROOT)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG), target],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.post(self.url, data=b"{}", timeout=5)
                return
            except requests.RequestException:  # not listening yet, or still importing the app
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start for {target}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/billing/webhook"

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=30)


def _signed_request() -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": "invoice.paid",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": "in_bench",
                    "object": "invoice",
                    "status": "paid",
                    "number": "BENCH-0001",
                    "amount_due": 3774,
                    "currency": "eur",
                    "metadata": {"userId": "u", "invoiceId": "i"},
                    "lines": {"object": "list", "data": [], "has_more": False},
                }
            },
        },
        indent=2,
    )
    return body.encode(), {
        "Content-Type": "application/json",
        "Stripe-Signature": sign_payload(body, SECRET, int(time.time())),
    }


def _throughput(url: str, requests_total: int) -> float:
    """Requests per second with ``CLIENT_THREADS`` keep-alive clients sending as fast as they can."""
    body, headers = _signed_request()
    local = threading.local()

    def send(_: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        response = session.post(url, data=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.status_code

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(send, range(WARMUP)))
        started = time.perf_counter()
        list(pool.map(send, range(requests_total)))
        return requests_total / (time.perf_counter() - started)


def test_webhook_receiver_throughput_next_to_a_bare_flask_endpoint():
    results = {}
    for name, target in (
        ("bare_flask", "tests.bench.bench_webhook_receiver:bare_app()"),
        ("webhook_receiver", "tests.bench.bench_webhook_receiver:receiver_app()"),
    ):
        server = Gunicorn(target)
        try:
            results[name] = _throughput(server.url, REQUESTS)
        finally:
            server.stop()
    ratio = results["webhook_receiver"] / results["bare_flask"]
    print(
        json.dumps(
            {
                "benchmark": "webhook_receiver_rps",
                "requests": REQUESTS,
                "client_threads": CLIENT_THREADS,
                "receiver_rps": round(results["webhook_receiver"], 1),
                "bare_flask_rps": round(results["bare_flask"], 1),
                "ratio": round(ratio, 3),
                "goal": 0.7,
            }
        )
    )
    assert ratio > 0


def test_webhook_receiver_p99_latency_at_100_requests_per_second():
    rate, seconds = 100, 10
    server = Gunicorn("tests.bench.bench_webhook_receiver:receiver_app()")
    try:
        body, headers = _signed_request()
        local = threading.local()
        latencies: list[float] = []
        lock = threading.Lock()
        started = time.perf_counter() + 0.2

        def send(i: int) -> None:
            due = started + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            response = session.post(server.url, data=body, headers=headers, timeout=10)
            assert response.status_code == 200
            with lock:
                latencies.append(time.perf_counter() - due)

        with ThreadPoolExecutor(32) as pool:
            list(pool.map(send, range(rate * seconds)))
    finally:
        server.stop()
    latencies.sort()
    p = lambda q: round(latencies[int(q * (len(latencies) - 1))] * 1000, 2)  # noqa: E731
    print(
        json.dumps(
            {
                "benchmark": "webhook_receiver_latency",
                "rate_per_second": rate,
                "requests": len(latencies),
                "p50_ms": p(0.5),
                "p99_ms": p(0.99),
                "max_ms": p(1.0),
            }
        )
    )
    assert len(latencies) == rate * seconds


def test_events_applied_per_second_by_one_worker(stack):
    from billing_core.adapters.dynamodb import DynamoInvoiceRepository
    from billing_core.adapters.sqs import SqsMessageQueue
    from billing_core.bootstrap import WorkerUseCases
    from local_stack.demo import worker_services
    from scheduler_worker.stripe_events import stripe_event_consumers
    from tests.support.stripe_events import (
        aws_client,
        billing_record,
        create_queue_pair,
        wait_for,
    )

    events_total = 300
    services = worker_services(stack)
    invoices = DynamoInvoiceRepository(aws_client(stack, "dynamodb"), stack.info["tables"]["billing"])
    queue = SqsMessageQueue(aws_client(stack, "sqs"), create_queue_pair(stack, f"bench-events-{uuid.uuid4().hex[:8]}"))
    run = uuid.uuid4().hex[:6]
    keys = []
    for n in range(events_total):
        account_id, invoice_id, stripe_id = f"bench-{run}-{n}", f"inv_2024-11_bench-{run}-{n}", f"in_bench_{run}_{n}"
        invoices.create_if_absent(billing_record(account_id, invoice_id, stripe_id, status="open"))
        queue.send(
            json.dumps(
                {
                    "id": f"evt_{uuid.uuid4().hex[:24]}",
                    "object": "event",
                    "type": "invoice.paid",
                    "created": int(time.time()),
                    "data": {
                        "object": {
                            "id": stripe_id,
                            "object": "invoice",
                            "status": "paid",
                            "number": f"B-{n:04d}",
                            "attempt_count": 1,
                            "status_transitions": {"paid_at": int(time.time())},
                            "metadata": {"userId": account_id, "invoiceId": invoice_id},
                        }
                    },
                }
            )
        )
        keys.append((account_id, invoice_id))

    stopping = threading.Event()
    consumers = stripe_event_consumers(
        queue,
        WorkerUseCases(services).event_ports(rate_limited=False),
        stopping,
        wait_seconds=services.settings.queue_wait_seconds,
    )
    started = time.perf_counter()
    for consumer in consumers:
        consumer.start()
    try:
        wait_for(
            lambda: waiting_messages(queue) == 0 and all(invoices.get(u, i).status == "paid" for u, i in keys[-10:]),
            timeout=300,
            what="all events applied",
            interval=0.05,
        )
        elapsed = time.perf_counter() - started
    finally:
        stopping.set()
        for consumer in consumers:
            consumer.join(timeout=10)
    applied = sum(1 for u, i in keys if invoices.get(u, i).status == "paid")
    print(
        json.dumps(
            {
                "benchmark": "events_applied_per_second",
                "events": events_total,
                "consumer_threads": len(consumers),
                "seconds": round(elapsed, 2),
                "per_second": round(events_total / elapsed, 1),
            }
        )
    )
    assert applied == events_total


def test_reading_a_signed_body_of_one_mebibyte_is_linear_even_for_a_hostile_one():
    """The nesting check runs before parsing: its cost for a 1 MiB body, a Stripe-like one and a hostile one."""
    from billing_core.adapters.stripe_webhooks import nesting_depth

    lines = [
        {"id": f"il_{n}", "amount": n, "period": {"start": 1, "end": 2}, "metadata": {"note": 'a "quoted" word'}}
        for n in range(9000)
    ]
    bodies = {
        "stripe_like": json.dumps({"id": "evt_1", "type": "invoice.paid", "data": {"object": {"lines": lines}}}),
        "unterminated_escaped_quotes": '"' + '\\"' * (512 * 1024),
        "deep_then_unterminated": "[" * 64 + '"' + "a\\" * (500 * 1024),
    }
    figures = {}
    for name, body in bodies.items():
        started = time.perf_counter()
        nesting_depth(body)
        figures[name] = {"bytes": len(body), "ms": round((time.perf_counter() - started) * 1000, 1)}
    print(json.dumps({"benchmark": "webhook_nesting_check", **figures}))
    assert all(figure["bytes"] > 900 * 1024 for figure in figures.values())
