"""A WSGI app on a real HTTP server in the test process (127.0.0.1, a free port, a background thread)."""
from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import make_server


class WsgiServer:
    """Serves ``app`` from a background thread; use as a context manager or with ``start``/``stop``."""

    def __init__(self, app: Any) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> WsgiServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> WsgiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
