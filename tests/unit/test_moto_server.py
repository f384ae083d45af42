"""The local stack's moto makes each DynamoDB request atomic, as DynamoDB is, and leaves the rest parallel."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from local_stack.moto_server import AtomicDynamoDB


class _CountingApp:
    """A WSGI app that notes how many requests are inside it at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0

    def __call__(self, environ, start_response):
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.02)
        with self._lock:
            self.inside -= 1
        start_response("200 OK", [])
        return [b"{}"]


def _call_concurrently(app, target: str, n: int = 8) -> list[bytes]:
    def call(_: int) -> bytes:
        return b"".join(app({"HTTP_X_AMZ_TARGET": target}, lambda status, headers: None))

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def test_dynamodb_requests_run_one_at_a_time():
    inner = _CountingApp()
    answers = _call_concurrently(AtomicDynamoDB(inner), "DynamoDB_20120810.PutItem")
    assert answers == [b"{}"] * 8
    assert inner.most_inside == 1


def test_other_services_are_not_serialized():
    inner = _CountingApp()
    _call_concurrently(AtomicDynamoDB(inner), "AmazonSQS.ReceiveMessage")
    assert inner.most_inside > 1
