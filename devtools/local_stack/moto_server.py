"""moto in server mode, with what the local stack needs beyond it.

- DynamoDB's one guarantee moto lacks: each request is atomic (below).
- Cost Explorer answers that change: AWS revises a month until it is final, and credits land later;
  moto binds one canned answer to a query for good (``CostExplorerRevisions``).
- The ECB's reference-rate feed, at the ECB's own path (``EcbFeedFiles``): the ECB's real 2026 USD
  rates, kept in ``ecb_usd_2026.xml``.

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
import io
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from local_stack.worker_settings import COST_EXPLORER_REVISIONS_PATH, LOCAL_ECB_FEED_PATH, LOCAL_ECB_HISTORY_PATH

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


_GET_COST_AND_USAGE = "AWSInsightsIndexService.GetCostAndUsage"


class CostExplorerRevisions:
    """WSGI middleware: Cost Explorer's answer for a query changes when AWS revises it.

    ``POST /_local/cost-explorer/revisions`` with ``{"TimePeriod": ..., "GroupBy": [...], "Result": ...}``
    (Cost Explorer's own names and shapes) makes every later ``GetCostAndUsage`` over that range and
    grouping answer with ``Result``, until the next revision of the same query; every other query is
    moto's.
    """

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str, str], bytes] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COST_EXPLORER_REVISIONS_PATH and environ.get("REQUEST_METHOD") == "POST":
            return self._revise(environ, start_response)
        if environ.get("HTTP_X_AMZ_TARGET") != _GET_COST_AND_USAGE:
            return self._app(environ, start_response)
        answer = self._answer_for(_read_body(environ))
        if answer is None:
            return self._app(environ, start_response)
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(answer)))])
        return [answer]

    def _revise(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            revision = json.loads(_read_body(environ))
            key = _query_key(revision)
            if not isinstance(revision["Result"]["ResultsByTime"], list):
                raise TypeError("Result.ResultsByTime is not a list")
            answer = json.dumps(revision["Result"]).encode()
        except (ValueError, KeyError, TypeError) as error:
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [json.dumps({"message": f"not a Cost Explorer revision: {error!r}"}).encode()]
        with self._lock:
            self._answers[key] = answer
        start_response("201 Created", [("Content-Type", "application/json")])
        return [b"{}"]

    def _answer_for(self, body: bytes) -> bytes | None:
        try:
            query = json.loads(body)
            if "NextPageToken" in query:
                return None
            key = _query_key(query)
        except (ValueError, KeyError, TypeError):
            return None  # moto answers (or refuses) what is not a plain query
        with self._lock:
            return self._answers.get(key)


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for the app behind."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _query_key(query: dict[str, Any]) -> tuple[str, str, str]:
    groups = sorted((group["Type"], group["Key"]) for group in query.get("GroupBy", []))
    return query["TimePeriod"]["Start"], query["TimePeriod"]["End"], json.dumps(groups)


ECB_FEED_FILE = Path(__file__).with_name("ecb_usd_2026.xml")
# The ECB's own paths, below the local stack's AWS endpoint. Both serve the one file: it reaches back
# far enough for every period it has a rate for.
ECB_FEED_PATHS = (LOCAL_ECB_FEED_PATH, LOCAL_ECB_HISTORY_PATH)


class EcbFeedFiles:
    """WSGI middleware: the ECB reference-rate feed at the ECB's paths; everything else to ``app``."""

    def __init__(self, app: WsgiApp, feed_file: Path = ECB_FEED_FILE) -> None:
        self._app = app
        self._feed = feed_file.read_bytes()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in ECB_FEED_PATHS:
            return self._app(environ, start_response)
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(self._feed)))])
        return [self._feed]


def moto_app() -> WsgiApp:
    """moto's WSGI app (all services) with atomic DynamoDB requests, Cost Explorer revisions, the ECB feed."""
    return AtomicDynamoDB(CostExplorerRevisions(EcbFeedFiles(DomainDispatcherApplication(create_backend_app))))


class BackgroundServer:
    """A WSGI app served from a thread of this process (for tests); ``port=0`` picks a free port."""

    def __init__(
        self, app: WsgiApp, host: str = "127.0.0.1", port: int = 0, *, name: str = "wsgi", request_handler: Any = None
    ) -> None:
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
