"""Errors gunicorn answers itself, before the app, are JSON in the API's error shape, on both web services."""
from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

CASES = {
    "request line over the limit": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "too many headers": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                         + b"".join(b"X-H%d: 1\r\n" % i for i in range(100)) + b"\r\n", 431),
    "a header over the limit": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * 9000
                                + b"\r\n\r\n", 431),
    "a NUL byte in a header": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n", 400),
    "obs-fold": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400),
}


def raw_request(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("service", ["api_url", "webhook_url"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_gunicorns_own_errors_are_json_with_the_error_shape(stack, service, case):
    request, status = CASES[case]

    got, headers, body = raw_request(stack.info[service], request)

    assert got == status, (case, body[:200])
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"} and b"aaaa" not in body
