"""Gunicorn settings for billing-api and webhook-receiver, in the images and in the local stack.

Everything that differs between environments comes from the environment:
``GUNICORN_BIND`` (default ``0.0.0.0:8000``), ``WEB_CONCURRENCY`` (worker processes, default 2),
``GUNICORN_THREADS`` (threads per worker, default 4), ``GUNICORN_TIMEOUT`` (seconds, default 30).
"""

import json
import os
import traceback

from gunicorn import glogging

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")

# Threads, because a request mostly waits on DynamoDB, Secrets Manager or Stripe.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# Longer than the load balancer's idle timeout would be wrong; shorter wastes handshakes.
keepalive = 5

# Bounded request lines and headers: the webhook path is unauthenticated.
limit_request_line = 4094
limit_request_fields = 64
limit_request_field_size = 8190

# Heartbeat files in shared memory: a disk-backed /tmp can stall workers (gunicorn's own advice).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# The control socket defaults to one path per user, so two gunicorns on one host would collide;
# containers are managed by their orchestrator, not by gunicornc.
control_socket_disable = True

# Logs go to stdout/stderr (the container runtime collects them) as JSON lines, through the same
# formatter and secret filter as the application's own logs. Access lines are built by JsonAccessLogger
# (below) as one JSON object each, not from access_log_format (which it ignores): the path only, never the
# query string or a header other than the User-Agent and X-Request-Id, which could carry tokens.
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def _wsgi_text(value):
    """A WSGI string (the request's bytes as latin-1) as the text it is in UTF-8; bytes that are no UTF-8
    become ``\\xhh``."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:  # not a WSGI string (nothing gunicorn hands over today): already text
        return value
    return raw.decode("utf-8", "backslashreplace")


def _access_line(atoms):
    """The access line for gunicorn's ``atoms`` of a request: one JSON object in pure ASCII.

    Every value is text as before (``"-"`` where gunicorn has none), secrets redacted, and every control,
    line-separator and bidi character written as a visible escape, so neither the line nor a value read
    out of it can break a line, forge a field or drive a terminal, whatever the request held.
    """
    # Imported here: billing_core is on the path by the time gunicorn serves, not necessarily when it reads this.
    from billing_core.logging import escape_controls, redact

    fields = {
        "time": atoms["t"],
        "logger": "gunicorn.access",
        "remote": atoms["h"],
        "method": atoms["m"],
        "path": atoms["U"],  # PATH_INFO: unquoted, without the query string
        "status": atoms["s"],
        "bytes": atoms["B"],
        "duration_ms": atoms["M"],
        "request_id": atoms.get("{x-request-id}i"),
        "user_agent": atoms["a"],
    }
    line = {
        key: "-" if value is None else escape_controls(redact(_wsgi_text(str(value)))) for key, value in fields.items()
    }
    return json.dumps(line, ensure_ascii=True)


class JsonAccessLogger(glogging.Logger):
    """gunicorn's logger, with each access line built as a JSON object instead of by a format string."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        try:
            # No arguments: the line is the message as it is (a "%" in it is no placeholder).
            self.access_log.info(_access_line(self.atoms(resp, req, environ, request_time)))
        except Exception:
            self.error(traceback.format_exc())


logger_class = JsonAccessLogger

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "billing_core.logging.JsonFormatter"},
        "access": {"format": "%(message)s"},
    },
    "filters": {"secrets": {"()": "billing_core.logging.SecretFilter"}},
    "handlers": {
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["secrets"],
            "stream": "ext://sys.stderr",
        },
        "access_console": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "filters": ["secrets"],
            "stream": "ext://sys.stdout",
        },
    },
    # The application adds its own JSON handler to the root logger (billing_core.logging.configure).
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["error_console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access_console"], "propagate": False},
    },
}

# The load balancer terminates TLS; its X-Forwarded-* headers are trusted only from the addresses
# named here (set to the VPC's range in the images).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


# Errors gunicorn answers itself, before the application sees the request (request line or headers
# over the limits, malformed headers), in the API's JSON error shape instead of gunicorn's HTML page.
# The messages are fixed texts: nothing from the refused request is echoed back.
def _json_error(sock, status_int, reason, mesg):  # noqa: ARG001 - gunicorn's signature; mesg is not echoed
    import json as _json

    from gunicorn import util as _util

    codes = {
        400: "bad_request",
        403: "forbidden",
        414: "uri_too_long",
        417: "expectation_failed",
        431: "header_fields_too_large",
        500: "internal_error",
        501: "not_implemented",
    }
    body = _json.dumps(
        {"error": {"code": codes.get(status_int, "error"), "message": f"The request was refused: {reason}."}}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    _util.write_nonblock(sock, head + body)


def _install_json_errors():
    from gunicorn import util as _util

    _util.write_error = _json_error


_install_json_errors()
