"""Test helpers for the emulator: a webhook receiver that verifies signatures, and polling."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import requests
import stripe
from werkzeug.wrappers import Request, Response

from tests.support.servers import WsgiServer
from tests.support.waiting import wait_for  # noqa: F401 - re-exported for the tests using this module


class WebhookReceiver:
    """An HTTP endpoint that accepts only events verified by ``stripe.Webhook.construct_event``."""

    def __init__(self) -> None:
        self.secret = ""
        self.events: list[Any] = []  # verified stripe.Event objects, in arrival order
        self.rejected = 0
        self.planned_statuses: list[int] = []  # answered (instead of 200) to the next requests
        self.requests_seen = 0
        self._lock = threading.Lock()
        self._server = WsgiServer(self._app)

    @property
    def url(self) -> str:
        """Where the emulator should post events."""
        return f"{self._server.base_url}/webhook"

    def start(self) -> WebhookReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self, secret: str = "") -> None:
        with self._lock:
            self.secret = secret
            self.events.clear()
            self.rejected = 0
            self.planned_statuses.clear()
            self.requests_seen = 0

    def of_type(self, event_type: str) -> list[Any]:
        with self._lock:
            return [e for e in self.events if e.type == event_type]

    def types(self) -> list[str]:
        with self._lock:
            return [e.type for e in self.events]

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        payload = request.get_data(as_text=True)
        with self._lock:
            self.requests_seen += 1
            if self.planned_statuses:
                return Response("planned failure", status=self.planned_statuses.pop(0))(environ, start_response)
            try:
                event = stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature"), self.secret)
            except (stripe.SignatureVerificationError, ValueError):
                self.rejected += 1
                return Response("bad signature", status=400)(environ, start_response)
            self.events.append(event)
        return Response(json.dumps({"received": True}), mimetype="application/json")(environ, start_response)


class Control:
    """The emulator's private control API."""

    def __init__(self, base_url: str):
        self.base = base_url + "/_emulator"

    def reset(self) -> None:
        requests.post(f"{self.base}/reset", timeout=5).raise_for_status()

    def configure(self, **changes: Any) -> dict[str, Any]:
        response = requests.post(f"{self.base}/config", json=changes, timeout=5)
        response.raise_for_status()
        return response.json()

    def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        return requests.get(f"{self.base}/deliveries", params=filters, timeout=5).json()["deliveries"]

    def requests(self) -> dict[str, Any]:
        return requests.get(f"{self.base}/requests", timeout=5).json()

    def objects(self) -> dict[str, int]:
        return requests.get(f"{self.base}/objects", timeout=5).json()
