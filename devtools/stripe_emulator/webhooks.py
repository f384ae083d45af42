"""Webhook delivery: Stripe's signature scheme, a small timer pool, and at-least-once delivery with retries."""

from __future__ import annotations

import functools
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stripe_emulator.config import EmulatorConfig

log = logging.getLogger("stripe_emulator.webhooks")
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def sign_payload(payload: str, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value: ``t=<ts>,v1=<HMAC-SHA256(secret, "<ts>.<payload>")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event_matches(enabled_events: list[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to an event type (``*`` = all; Stripe has no other wildcard)."""
    return "*" in enabled_events or event_type in enabled_events


class TaskScheduler:
    """Runs callables at their due time on a few worker threads; ``clear`` drops what is pending."""

    def __init__(self, workers: int, name: str = "emulator-tasks"):
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def call_later(self, delay: float, task: Callable[[], None]) -> None:
        """Run task after delay seconds."""
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), task))
            self._cond.notify()

    def clear(self) -> None:
        """Forget every task not yet started."""
        with self._cond:
            self._heap.clear()

    def stop(self) -> None:
        """Stop the workers and wait for them (a running task finishes first)."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._cond.wait(timeout=(self._heap[0][0] - now) if self._heap else None)
                if self._stopped:
                    return
                _, _, task = heapq.heappop(self._heap)
            try:
                task()
            except Exception:  # a failing task must not kill the worker
                log.exception("background task failed")


@dataclass
class Endpoint:
    """Where and how one event is delivered."""

    id: str
    url: str
    secret: str


@dataclass
class _Delivery:
    event_id: str
    event_type: str
    payload: str
    endpoint: Endpoint
    copy: int
    generation: int
    planned_delay: float = 0.0  # seconds between publishing and the first attempt (delay + reorder knobs)
    attempt: int = 0


class WebhookDispatcher:
    """Delivers events at least once to each subscribed endpoint, retrying with backoff on failure."""

    def __init__(
        self,
        config: EmulatorConfig,
        scheduler: TaskScheduler,
        rng: random.Random,
        rng_lock: threading.Lock,
        on_settled: Callable[[str], None],
    ):
        self._config = config
        self._scheduler = scheduler
        self._rng = rng
        self._rng_lock = rng_lock
        self._on_settled = on_settled
        self._lock = threading.Lock()
        self._attempts: list[dict[str, Any]] = []
        self._settled: set[tuple[str, str]] = set()
        self._generation = 0

    def publish(self, event: dict[str, Any], endpoints: list[Endpoint]) -> None:
        """Queue the event for every endpoint, with the configured duplicates, delay and reordering."""
        payload = json.dumps(event, indent=2)
        config = self._config
        for endpoint in endpoints:
            with self._rng_lock:
                copies = 1 + config.duplicate_deliveries
                if config.duplicate_probability and self._rng.random() < config.duplicate_probability:
                    copies += 1
                delays = [
                    config.delivery_delay
                    + (self._rng.uniform(0, config.reorder_window) if config.reorder_window else 0.0)
                    for _ in range(copies)
                ]
            for copy, delay in enumerate(delays):
                delivery = _Delivery(event["id"], event["type"], payload, endpoint, copy, self._generation, delay)
                self._scheduler.call_later(delay, functools.partial(self._attempt, delivery))

    def attempts(self) -> list[dict[str, Any]]:
        """Every delivery attempt so far, oldest first."""
        with self._lock:
            return [dict(a) for a in self._attempts]

    def reset(self) -> None:
        """Forget all attempts; deliveries already queued are dropped."""
        with self._lock:
            self._generation += 1
            self._attempts.clear()
            self._settled.clear()

    def _attempt(self, delivery: _Delivery) -> None:
        if delivery.generation != self._generation:
            return
        delivery.attempt += 1
        started = time.time()
        timestamp = int(started)
        status, error = None, None
        request = urllib.request.Request(
            delivery.endpoint.url,
            data=delivery.payload.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": sign_payload(delivery.payload, delivery.endpoint.secret, timestamp),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._config.webhook_timeout) as response:
                status = response.status
                response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            error = f"HTTP {exc.code}"
        except Exception as exc:  # timeouts, refused connections: Stripe just retries
            error = f"{type(exc).__name__}: {exc}"
        delivered = status is not None and 200 <= status < 300
        attempts = self._config.webhook_max_attempts
        schedule = self._config.webhook_retry_schedule
        retry_in = None
        if not delivered and delivery.attempt < attempts:
            retry_in = schedule[min(delivery.attempt - 1, len(schedule) - 1)]
        record = {
            "event_id": delivery.event_id,
            "event_type": delivery.event_type,
            "endpoint_id": delivery.endpoint.id,
            "endpoint_url": delivery.endpoint.url,
            "attempt": delivery.attempt,
            "copy": delivery.copy,
            "planned_delay": delivery.planned_delay,
            "status_code": status,
            "error": error,
            "delivered": delivered,
            "started_at": started,
            "finished_at": time.time(),
            "next_retry_in": retry_in,
        }
        key = (delivery.event_id, delivery.endpoint.id)
        settle = False
        with self._lock:
            if delivery.generation != self._generation:
                return
            self._attempts.append(record)
            if (delivered or retry_in is None) and key not in self._settled:
                self._settled.add(key)
                settle = True
        log.info(
            json.dumps(
                {
                    "msg": "webhook delivery",
                    **{
                        k: record[k]
                        for k in ("event_id", "event_type", "endpoint_url", "attempt", "status_code", "error")
                    },
                }
            )
        )
        if settle:
            self._on_settled(delivery.event_id)
        if retry_in is not None:
            self._scheduler.call_later(retry_in, lambda: self._attempt(delivery))
