"""moto in server mode, with DynamoDB's one guarantee moto lacks: each request is atomic.

Real DynamoDB evaluates a condition expression and applies the write as one step. moto's server
handles requests on parallel threads over a shared in-memory backend without a lock, so two
``PutItem ... attribute_not_exists(pk)`` requests can both pass their check before either writes:

    request A: condition holds (no item) ............ write
    request B:      condition holds (no item) ............ write   <- DynamoDB would refuse B

Every event claim, lease and "record the customer once" write depends on that guarantee, so the
local stack serializes DynamoDB requests (and only those: SQS long polls must not wait on them).

    python -m local_stack.moto_server -H 127.0.0.1 -p 4566
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, Self

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class AtomicDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, everything else in parallel."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            # Read the whole answer under the lock, so the write it reports has happened.
            return [b"".join(self._app(environ, start_response))]


def moto_app() -> WsgiApp:
    """moto's WSGI app (all services) with atomic DynamoDB requests."""
    return AtomicDynamoDB(DomainDispatcherApplication(create_backend_app))


class BackgroundServer:
    """A WSGI app served from a thread of this process (for tests); ``port=0`` picks a free port."""

    def __init__(self, app: WsgiApp, host: str = "127.0.0.1", port: int = 0, *, name: str = "wsgi",
                 request_handler: Any = None) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=request_handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def endpoint(self) -> str:
        """``http://host:port`` of the running server."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Serve in the background; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class BackgroundMotoServer(BackgroundServer):
    """The moto server on a thread of this process (for tests)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(moto_app(), host, port, name="moto", request_handler=MotoRequestHandler)


def main(argv: list[str] | None = None) -> None:
    """Serve moto on ``--host``/``--port`` until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", "5000")))
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: sys.exit(0))
    server = make_server(args.host, args.port, moto_app(), threaded=True, request_handler=MotoRequestHandler)
    server.serve_forever()


if __name__ == "__main__":
    main()
