"""Saved answers of POSTs sent with an ``Idempotency-Key``, replayed when the key comes again."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class SavedResponse:
    """One answer as it was sent, and what it answered (method, path and parameters)."""

    fingerprint: str
    status: int
    body: bytes
    request_id: str
    saved_at: float
    headers: dict[str, str]


class IdempotencyCache:
    """Responses of idempotent POSTs, scoped by API key; one lock per key serializes concurrent reuse."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._saved: dict[tuple[str, str], SavedResponse] = {}
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}

    def key_lock(self, scope: tuple[str, str]) -> threading.Lock:
        """The lock that serializes requests carrying this key."""
        with self._lock:
            return self._key_locks.setdefault(scope, threading.Lock())

    def get(self, scope: tuple[str, str], ttl: float) -> SavedResponse | None:
        """The saved response for a key, unless it has expired."""
        with self._lock:
            saved = self._saved.get(scope)
            if saved and time.time() - saved.saved_at > ttl:
                del self._saved[scope]
                return None
            return saved

    def put(self, scope: tuple[str, str], saved: SavedResponse) -> None:
        """Remember the response for a key."""
        with self._lock:
            self._saved[scope] = saved

    def clear(self) -> None:
        """Forget every key."""
        with self._lock:
            self._saved.clear()
            self._key_locks.clear()
