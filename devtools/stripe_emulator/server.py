"""Serving the emulator over HTTP: in a background thread (tests) or in the foreground (the CLI)."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from stripe_emulator.app import EmulatorApp, create_app
from stripe_emulator.config import EmulatorConfig


class QuietRequestHandler(WSGIRequestHandler):
    """HTTP/1.1 keep-alive (as Stripe's clients expect) without werkzeug's own access log."""

    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any, **kwargs: Any) -> None:  # the app logs JSON lines itself
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)


def make_http_server(app: EmulatorApp, host: str, port: int) -> BaseWSGIServer:
    """A threaded HTTP server for the app (port 0 = any free port)."""
    return make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)


class EmulatorServer:
    """The emulator served on 127.0.0.1 (a free port by default) from a background thread."""

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.config = config or EmulatorConfig()
        self._host = host
        self._port = port
        self.app: EmulatorApp | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (the Stripe SDK's ``api_base``)."""
        if self._server is None:
            raise RuntimeError("EmulatorServer is not started")
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> EmulatorServer:
        """Start serving; returns self."""
        if self._server is not None:
            return self
        self.app = create_app(self.config)
        self._server = make_http_server(self.app, self._host, self._port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="stripe-emulator-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and stop the webhook delivery / background threads."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.app is not None:
            self.app.close()
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
