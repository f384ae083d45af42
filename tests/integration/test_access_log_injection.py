"""Issue 34: whatever a request holds, every line gunicorn writes with deploy/gunicorn.conf.py is one JSON object,
with no raw control or bidi character, and the access lines log the path only: never the query string or a
header other than the User-Agent and the X-Request-Id.

A real gunicorn with the deployed configuration serves ``tests.support.logging_app`` (which logs each request
through the application's JSON logging, as the services do); the last test sends the same requests to the
stack's billing-api and webhook-receiver. Requests go through raw sockets: HTTP clients refuse the odd bytes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from billing_core.logging import REDACTED
from local_stack.processes import HOST, ChildProcess, free_ports
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
GUNICORN_CONFIG = REPO / "deploy" / "gunicorn.conf.py"

ACCESS_FIELDS = {
    "time",
    "logger",
    "remote",
    "method",
    "path",
    "status",
    "bytes",
    "duration_ms",
    "request_id",
    "user_agent",
}
# What must never reach a log line raw: C0 controls, DEL, C1 controls, the Unicode line and paragraph
# separators, and the bidi controls that reorder what a terminal shows.
RAW_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# Every request carries these; none of them may be logged.
QUERY_SECRET = "query-secret-7f3a"
HEADER_SECRETS = {"X-Api-Token": "header-secret-9c1e", "Cookie": "session=cookie-secret-2b7d"}
PATH_SECRETS = ("4eC39HqLyjWDarjtT1zdp7dc", "t0ken.value123")

# A percent-encoded request target (gunicorn unquotes it into PATH_INFO) -> the path its access line logs.
PATH_PROBES = {
    "/probe/lf%0A%7B%22logger%22:%22gunicorn.access%22,%22path%22:%22/forged%22%7D": (
        '/probe/lf\\x0a{"logger":"gunicorn.access","path":"/forged"}'
    ),
    "/probe/cr%0Dend": "/probe/cr\\x0dend",
    "/probe/esc%1B%5B31mred%1B%5B0m": "/probe/esc\\x1b[31mred\\x1b[0m",
    "/probe/nul%00end": "/probe/nul\\x00end",
    "/probe/backspace%08end": "/probe/backspace\\x08end",
    "/probe/quote%22,%22status%22:%22999": '/probe/quote","status":"999',
    "/probe/backslash%5C": "/probe/backslash\\",
    "/probe/del%7Fend": "/probe/del\\x7fend",
    "/probe/rlo%E2%80%AEexe.pdf": "/probe/rlo\\u202eexe.pdf",
    "/probe/nel%C2%85end": "/probe/nel\\x85end",
    "/probe/csi%C2%9B31m": "/probe/csi\\x9b31m",
    "/probe/lone-byte%9B31m": "/probe/lone-byte\\x9b31m",
    "/probe/separators%E2%80%A8and%E2%80%A9end": "/probe/separators\\u2028and\\u2029end",
    "/probe/isolates%E2%81%A6and%E2%81%A9end": "/probe/isolates\\u2066and\\u2069end",
    "/probe/not-utf8%FF%FEend": "/probe/not-utf8\\xff\\xfeend",
    "/probe/m%C3%BCller": "/probe/müller",
    "/probe/percent%25s%25(U)s": "/probe/percent%s%(U)s",
    "/missing/quote%22": '/missing/quote"',
    "/probe/key/sk_live_4eC39HqLyjWDarjtT1zdp7dc": f"/probe/key/{REDACTED}",
    "/probe/bearer/Bearer%09t0ken.value123": f"/probe/bearer/{REDACTED}",
}
# Header bytes gunicorn lets through (HTAB, quotes, backslashes, obs-text) -> what the access line logs.
HEADER_PROBES = [
    (b'agent "quoted" \\ back\\slash\\', b'req-"}\\', 'agent "quoted" \\ back\\slash\\', 'req-"}\\'),
    (
        b"tab\there rlo\xe2\x80\xaeend nel\xc2\x85 csi\x9b31m ls\xe2\x80\xa8 lri\xe2\x81\xa6 bad\xff",
        b'rid\t\xe2\x80\xae\x85"',
        "tab\\x09here rlo\\u202eend nel\\x85 csi\\x9b31m ls\\u2028 lri\\u2066 bad\\xff",
        'rid\\x09\\u202e\\x85"',
    ),
    (b'x", "status": "200"} %0A%1B[31m', b"%0D%0A", 'x", "status": "200"} %0A%1B[31m', "%0D%0A"),
]
# Requests gunicorn refuses itself (400): logged by gunicorn's error logger, with the bytes it refused.
REFUSED = [
    b"GET /probe/raw\x85\x1b[31m HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /probe/header HTTP/1.1\r\nHost: x\r\nX-Evil: a\x1b[31mb\r\n\r\n",
]


@dataclass
class LogRun:
    """What gunicorn wrote while the probes were sent: every line, and the access lines parsed."""

    text: str
    lines: list[str]

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every line as JSON (fails on the first line that is not)."""
        return [_parse(line) for line in self.lines]

    @property
    def access(self) -> list[dict[str, Any]]:
        """The access lines."""
        return [record for record in self.records if record.get("logger") == "gunicorn.access"]


def _parse(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as error:
        raise AssertionError(f"not one JSON object: {line!r}") from error
    assert isinstance(record, dict), line
    return record


def _request(target: bytes, user_agent: bytes = b"probe/1.0", request_id: bytes = b"probe-id") -> bytes:
    headers = b"".join(f"{name}: {value}\r\n".encode() for name, value in HEADER_SECRETS.items())
    return (
        b"GET " + target + b"?token=" + QUERY_SECRET.encode() + b"&x=%0A HTTP/1.1\r\nHost: x\r\n"
        b"User-Agent: "
        + user_agent
        + b"\r\nX-Request-Id: "
        + request_id
        + b"\r\n"
        + headers
        + b"Connection: close\r\n\r\n"
    )


def _send(host: str, port: int, request: bytes) -> int:
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def _probes() -> list[bytes]:
    requests = [_request(target.encode()) for target in PATH_PROBES]
    requests += [_request(b"/probe/headers", agent, request_id) for agent, request_id, _, _ in HEADER_PROBES]
    return requests


def _access_count(path: Path, start: int) -> int:
    return path.read_bytes()[start:].count(b'"logger": "gunicorn.access"')


def _send_probes(host: str, port: int, log_path: Path) -> None:
    start = log_path.stat().st_size
    served = _probes()
    for request in served:
        assert _send(host, port, request) < 500
    for request in REFUSED:
        assert _send(host, port, request) == 400
    # gunicorn logs a refused request before it answers, and each access line after its response.
    wait_for(lambda: _access_count(log_path, start) >= len(served), timeout=10, what="the access lines")


def _read(log_path: Path, start: int = 0) -> LogRun:
    raw = log_path.read_bytes()[start:]
    # Up to the last newline: a line still being written by a running service is read next time.
    text = raw[: raw.rfind(b"\n") + 1].decode("utf-8")
    return LogRun(text=text, lines=text.split("\n")[:-1])


@pytest.fixture(scope="module")
def gunicorn_log(tmp_path_factory: pytest.TempPathFactory) -> LogRun:
    """A real gunicorn with the deployed configuration, sent every probe, then stopped; its whole output."""
    (port,) = free_ports(1)
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO / part) for part in ("services", "devtools", "")),
        "GUNICORN_BIND": f"{HOST}:{port}",
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "info",
    }
    argv = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG), "--name", "access-log-test"]
    server = ChildProcess("gunicorn", [*argv, "tests.support.logging_app:app"], env, log_path)
    server.start()
    try:
        server.wait_until_ready(lambda: _answers(port), timeout=30)
        _send_probes(HOST, port, log_path)
    finally:
        server.stop()
    return _read(log_path)


def _answers(port: int) -> bool:
    try:
        return _send(HOST, port, b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 200
    except OSError:
        return False


def test_every_line_gunicorn_writes_is_one_json_object_without_raw_control_characters(gunicorn_log):
    assert len(gunicorn_log.lines) > len(PATH_PROBES) + len(HEADER_PROBES)
    for line in gunicorn_log.lines:
        _parse(line)
        assert not RAW_UNSAFE.search(line), line
    # No reader splits a line anywhere else (str.splitlines also breaks at NEL, U+2028, FS, GS, RS, ...).
    assert gunicorn_log.text.splitlines() == gunicorn_log.lines


def test_each_request_is_one_access_line_with_the_access_fields(gunicorn_log):
    access = gunicorn_log.access
    probes = [record for record in access if record["path"].startswith(("/probe/", "/missing/"))]

    assert len(probes) == len(PATH_PROBES) + len(HEADER_PROBES)
    for record in access:
        assert set(record) == ACCESS_FIELDS, record
        assert record["logger"] == "gunicorn.access" and record["method"] == "GET"
        assert all(isinstance(value, str) for value in record.values()), record
        assert not any(RAW_UNSAFE.search(value) for value in record.values()), record
    assert {record["status"] for record in probes} == {"200", "404"}
    assert all(record["remote"] == HOST and record["bytes"] == "12" for record in probes)
    assert not [record for record in access if record["path"] == "/forged"]


def test_control_and_bidi_characters_in_the_path_are_logged_as_visible_escapes(gunicorn_log):
    logged = {record["path"] for record in gunicorn_log.access}

    assert {path for path in PATH_PROBES.values() if path not in logged} == set()


def test_quotes_backslashes_and_controls_in_the_user_agent_and_request_id_are_escaped(gunicorn_log):
    logged = {(record["user_agent"], record["request_id"]) for record in gunicorn_log.access}

    for _, _, user_agent, request_id in HEADER_PROBES:
        assert (user_agent, request_id) in logged


def test_the_query_string_other_headers_and_secrets_in_the_path_are_never_logged(gunicorn_log):
    assert QUERY_SECRET not in gunicorn_log.text and "token=" not in gunicorn_log.text
    for secret in (*HEADER_SECRETS.values(), *PATH_SECRETS):
        assert secret not in gunicorn_log.text, secret


def _lines_of(run: LogRun, logger: str) -> list[str]:
    return [line for line in run.lines if f'"logger": "{logger}"' in line]


def test_the_applications_own_lines_escape_what_json_leaves_raw(gunicorn_log):
    lines = _lines_of(gunicorn_log, "tests.logging_app")
    assert len(lines) >= len(PATH_PROBES) + len(HEADER_PROBES)
    assert [line for line in lines if RAW_UNSAFE.search(line)] == []
    app_lines = [_parse(line) for line in lines]
    messages = {record["message"] for record in app_lines}

    # The values are the application's, unchanged: only their encoding in the line is escaped.
    assert "request for /probe/rlo\u202eexe.pdf" in messages
    assert "request for /probe/separators\u2028and\u2029end" in messages
    # Header values reach the application as WSGI strings (latin-1), C1 controls included.
    assert any(record["userAgent"].startswith("tab\there rlo\xe2\x80\xaeend nel\xc2\x85") for record in app_lines)


def test_gunicorns_error_lines_for_refused_requests_are_json_without_the_raw_bytes(gunicorn_log):
    refused = [line for line in _lines_of(gunicorn_log, "gunicorn.error") if "Invalid request" in line]

    assert len(refused) == len(REFUSED)
    assert [line for line in refused if RAW_UNSAFE.search(line)] == []
    # gunicorn quotes the refused line with repr(): the bytes arrive as visible escapes, never raw.
    assert any("raw\\x85\\x1b[31m" in _parse(line)["message"] for line in refused)


@pytest.mark.parametrize("service", ["billing-api", "webhook-receiver"])
def test_the_services_log_only_json_lines_under_hostile_requests(stack, service):
    url = stack.info["api_url" if service == "billing-api" else "webhook_url"]
    parts = urlsplit(url)
    log_path = stack.log_path(service)
    start = log_path.stat().st_size

    _send_probes(parts.hostname, parts.port, log_path)

    run = _read(log_path, start)
    for line in run.lines:
        _parse(line)
        assert not RAW_UNSAFE.search(line), line
    assert run.text.splitlines() == run.lines
    access = run.access
    assert len(access) >= len(PATH_PROBES) + len(HEADER_PROBES)
    assert all(set(record) == ACCESS_FIELDS for record in access)
    logged = {record["path"] for record in access}
    assert {path for path in PATH_PROBES.values() if path not in logged} == set()
    for secret in (QUERY_SECRET, *HEADER_SECRETS.values(), *PATH_SECRETS):
        assert secret not in run.text, secret
