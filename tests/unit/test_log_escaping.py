"""Issue 34: no log line holds a raw control, line-separator or bidi character, whatever was logged."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from billing_core import logging as billing_logging

RAW_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
HOSTILE = (
    "lf\n cr\r esc\x1b[31m nul\x00 tab\t del\x7f nel\x85 csi\x9b ls\u2028 ps\u2029"
    " lre\u202a rlo\u202e pdf\u202c lri\u2066 pdi\u2069 rlm\u200f surrogate\udc80 end"
)


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a\nb", "a\\x0ab"),
        ("\r\x00\x08\t", "\\x0d\\x00\\x08\\x09"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("del\x7f", "del\\x7f"),
        ("nel\x85 csi\x9b", "nel\\x85 csi\\x9b"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("\u202a\u202b\u202c\u202d\u202e", "\\u202a\\u202b\\u202c\\u202d\\u202e"),
        ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
        ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
        ("lone\udc80", "lone\\udc80"),
        ('Müller "GmbH" \\ 42 % ✓', 'Müller "GmbH" \\ 42 % ✓'),
    ],
)
def test_escape_controls_writes_every_unsafe_character_as_a_visible_escape(text, escaped):
    assert billing_logging.escape_controls(text) == escaped


@pytest.fixture
def output():
    stream = io.StringIO()
    handler = billing_logging.configure("INFO", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def _only_line(output: io.StringIO) -> str:
    text = output.getvalue()
    assert text.endswith("\n")
    line = text[:-1]
    assert not RAW_UNSAFE.search(line), line
    assert line.splitlines() == [line]  # no separator a reader splits lines at (NEL, U+2028, ...) is left raw
    return line


def test_the_json_formatter_escapes_what_json_leaves_raw_and_keeps_the_values(output):
    logging.getLogger("billing.test").warning(
        "got %s", HOSTILE, extra={"detail": HOSTILE, "nested": {"list": [HOSTILE]}, "customer": "Müller GmbH"}
    )

    line = _only_line(output)
    record = json.loads(line)
    assert record["message"] == f"got {HOSTILE}"
    assert record["detail"] == HOSTILE and record["nested"] == {"list": [HOSTILE]}
    assert "Müller GmbH" in line  # other non-ASCII text stays readable


def test_the_json_formatter_escapes_exceptions_and_reprs_too(output):
    class Odd:
        def __repr__(self) -> str:
            return "Odd(\u202e\x85)"

    try:
        raise ValueError(HOSTILE)
    except ValueError:
        logging.getLogger("billing.test").exception("failed", extra={"odd": Odd()})

    record = json.loads(_only_line(output))
    assert HOSTILE in record["exception"] and record["odd"] == "Odd(\u202e\x85)"
