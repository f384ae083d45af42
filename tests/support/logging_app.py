"""A WSGI app for a real gunicorn in tests: logs each request through ``billing_core.logging``, as the services do.

``gunicorn --config deploy/gunicorn.conf.py tests.support.logging_app:app``: each worker configures the
application's JSON logging on import (as ``create_app`` does), and every request is logged with what a
hostile client controls (the path as Flask decodes it, the User-Agent, the X-Request-Id) in the message and
in ``extra`` fields. Paths under ``/missing`` answer 404, everything else 200.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from billing_core import logging as billing_logging

billing_logging.configure("INFO")
_log = logging.getLogger("tests.logging_app")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Log the request, answer a small JSON body."""
    # WSGI strings are bytes as latin-1; Flask (werkzeug) hands the application the path decoded as UTF-8.
    path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
    _log.info(
        "request for %s",
        path,
        extra={"userAgent": environ.get("HTTP_USER_AGENT", ""), "requestId": environ.get("HTTP_X_REQUEST_ID", "")},
    )
    body = b'{"ok": true}'
    status = "404 Not Found" if path.startswith("/missing") else "200 OK"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
