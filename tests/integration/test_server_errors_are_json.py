"""Errors gunicorn answers itself, before the app or while the app reads the body, are JSON in the API's
error shape, on both web services."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

CASES = {
    "request line over the limit": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "too many headers": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(100)) + b"\r\n",
        431,
    ),
    "a header over the limit": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * 9000 + b"\r\n\r\n",
        431,
    ),
    "a NUL byte in a header": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n", 400),
    "obs-fold": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400),
    "a method that is no token": (b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "an HTTP version that does not exist": (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    "Content-Length and Transfer-Encoding together": (
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "a Content-Length that is no number": (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
}
# Bodies whose chunked framing gunicorn's parser refuses while the app reads them; each is followed by a
# second request on the same connection, which must not be served (the framing is lost: no smuggling).
MALFORMED_CHUNKS = {
    "a chunk size that is no number": b"zz\r\nabc\r\n0\r\n\r\n",
    "a chunk without its terminator": b"3\r\nabcXX0\r\n\r\n",
    "a NUL byte in a chunk extension": b"3;\x00=1\r\nabc\r\n0\r\n\r\n",
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


@pytest.fixture(scope="module")
def body_reading_routes(stack):
    """A route of each service that reads the request body: the webhook, and an operator's account change."""
    from tests.support.api import sign_in

    login = stack.info["operator"]
    token = sign_in(stack, login["username"], login["password"])["AccessToken"]
    return {
        "webhook_url": ("/billing/webhook", b""),
        "api_url": ("/operator/accounts/kunde-1", b"Authorization: Bearer " + token.encode() + b"\r\n"),
    }


@pytest.mark.parametrize("service", ["api_url", "webhook_url"])
@pytest.mark.parametrize("case", sorted(MALFORMED_CHUNKS))
def test_a_malformed_chunked_body_is_a_400_in_json_and_ends_the_connection(stack, body_reading_routes, service, case):
    path, auth = body_reading_routes[service]
    method = b"PATCH" if service == "api_url" else b"POST"
    request = (
        method
        + b" "
        + path.encode()
        + b" HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + MALFORMED_CHUNKS[case]
        + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    )

    got, headers, body = raw_request(stack.info[service], request)

    assert got == 400, (case, body[:300])
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "bad_request"  # one JSON document: the /healthz was not served
