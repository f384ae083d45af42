"""A WSGI app on a real HTTP server in the test process (127.0.0.1, a free port, a background thread)."""

from __future__ import annotations

from typing import Any

from local_stack.moto_server import BackgroundServer


class WsgiServer(BackgroundServer):
    """Serves ``app`` from a background thread; use as a context manager or with ``start``/``stop``."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, "127.0.0.1", 0)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.endpoint

    def __enter__(self) -> WsgiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
