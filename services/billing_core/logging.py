"""Structured JSON log lines on stderr, with a correlation id and a filter that removes secrets.

``configure(level)`` once per process; then ``logging.getLogger(__name__).info("message",
extra={"invoiceId": ...})`` anywhere. ``correlation(id)`` binds an id (run id, event id, request id)
to every line logged inside it, across function calls, through ``contextvars``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

REDACTED = "[redacted]"

# Anything that looks like a credential or a payment instrument number is cut out of every line,
# even if a careless caller passes it: Stripe keys and webhook secrets, client secrets, bearer
# tokens, card numbers (13-19 digits, optionally grouped) and IBANs.
_SECRET_PATTERNS = (
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+"),
    re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"),
    re.compile(r"\b(?:seti|pi)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),  # IBAN
)
_CARD_NUMBER = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_SECRET_KEYS = re.compile(r"(?i)(secret|password|token|authorization|api_?key|iban|card_?number)")
_SECRET_NAMES = re.compile(r"(?i)secret_?(id|arn|name)$")  # where a secret lives is not itself secret

# Characters no log line may hold raw, whoever supplied them: C0 controls (newline, carriage return, ESC,
# NUL, ...), DEL, C1 controls (NEL ends a line for some readers, CSI starts a terminal escape), the Unicode
# line and paragraph separators (line breaks to JavaScript and to str.splitlines), the bidi marks, embeddings,
# overrides and isolates (they reorder what a terminal or a log viewer shows), and lone surrogates (a UTF-8
# stream cannot encode them, so the handler would print a traceback instead of the line).
_UNSAFE_CHARACTERS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


@contextlib.contextmanager
def correlation(correlation_id: str) -> Iterator[str]:
    """Bind ``correlation_id`` to every log line written inside the ``with`` block."""
    token = _correlation_id.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _correlation_id.reset(token)


def redact(text: str) -> str:
    """``text`` with every secret-looking substring replaced."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _CARD_NUMBER.sub(_redact_card_number, text)


def escape_controls(text: str) -> str:
    """``text`` with every character a log line must not hold raw written as a visible ``\\xhh`` or ``\\uhhhh``.

    For values an outsider controls that are one line by nature (a request path, a header): the logged
    value itself, not only its JSON encoding, is then safe to print to a terminal. Backslashes are kept as
    they are, so a literal ``\\x1b`` in the input reads the same as an escaped ESC.
    """
    return _UNSAFE_CHARACTERS.sub(_visible_escape, text)


def _visible_escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def _redact_card_number(match: re.Match[str]) -> str:
    # Only digit runs that pass the Luhn check are card numbers; most epoch-ms timestamps are not.
    digits = [int(c) for c in match.group(0) if c.isdigit()]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return REDACTED if total % 10 == 0 else match.group(0)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEYS.search(key) and not _SECRET_NAMES.search(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, v) for v in value]
    return value


class SecretFilter(logging.Filter):
    """Replaces secrets in the message, its arguments and ``extra`` fields before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRIBUTES:
                setattr(record, key, _redact_value(key, value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlationId, then ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single JSON line."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlationId": _correlation_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        # Non-ASCII text stays readable; json.dumps escapes the C0 controls, and what it leaves raw (DEL, C1,
        # U+2028/U+2029, bidi controls, lone surrogates) is escaped here as JSON \uXXXX escapes. That is valid
        # wherever it occurs, since such characters can only be inside strings: the values are unchanged.
        return _UNSAFE_CHARACTERS.sub(_json_escape, json.dumps(line, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)


def configure(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send every log record of the process to ``stream`` (stderr) as redacted JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_billing_json", False):
            root.removeHandler(existing)
    handler._billing_json = True  # type: ignore[attr-defined]  # lets configure() be called twice
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Library chatter at DEBUG would log request bodies; keep it at WARNING.
    for noisy in ("botocore", "boto3", "urllib3", "stripe"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
