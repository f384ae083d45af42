"""The local stack's moto makes each DynamoDB request atomic, as DynamoDB is, and leaves the rest parallel."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from local_stack.moto_server import AtomicDynamoDB


class _CountingApp:
    """A WSGI app that notes how many requests are inside it at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0

    def __call__(self, environ, start_response):
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.02)
        with self._lock:
            self.inside -= 1
        start_response("200 OK", [])
        return [b"{}"]


def _call_concurrently(app, target: str, n: int = 8) -> list[bytes]:
    def call(_: int) -> bytes:
        return b"".join(app({"HTTP_X_AMZ_TARGET": target}, lambda status, headers: None))

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def test_dynamodb_requests_run_one_at_a_time():
    inner = _CountingApp()
    answers = _call_concurrently(AtomicDynamoDB(inner), "DynamoDB_20120810.PutItem")
    assert answers == [b"{}"] * 8
    assert inner.most_inside == 1


def test_other_services_are_not_serialized():
    inner = _CountingApp()
    _call_concurrently(AtomicDynamoDB(inner), "AmazonSQS.ReceiveMessage")
    assert inner.most_inside > 1


def _request(app, *, path="/", target=None, body: bytes = b"", method="POST"):
    import io

    environ = {
        "PATH_INFO": path,
        "REQUEST_METHOD": method,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    status = []
    answer = b"".join(app(environ, lambda line, headers: status.append(line)))
    return status[0], answer


class _Moto:
    """Stands in for moto: answers every request with what it was sent."""

    def __call__(self, environ, start_response):
        start_response("200 OK", [])
        return [b"moto:" + environ["wsgi.input"].read()]


QUERY = {
    "TimePeriod": {"Start": "2023-02-01", "End": "2023-06-01"},
    "Granularity": "MONTHLY",
    "Metrics": ["UnblendedCost"],
    "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
}
GET_COSTS = "AWSInsightsIndexService.GetCostAndUsage"


def test_a_revised_query_answers_with_the_latest_revision_and_every_other_query_is_motos():
    import json

    from local_stack.moto_server import COST_EXPLORER_REVISIONS_PATH, CostExplorerRevisions

    app = CostExplorerRevisions(_Moto())
    query = json.dumps(QUERY).encode()
    assert _request(app, target=GET_COSTS, body=query) == ("200 OK", b"moto:" + query)

    for amount in ("10", "12.5"):
        revision = {
            "TimePeriod": QUERY["TimePeriod"],
            "GroupBy": QUERY["GroupBy"],
            "Result": {"ResultsByTime": [{"Total": {"UnblendedCost": {"Amount": amount}}}]},
        }
        assert _request(app, path=COST_EXPLORER_REVISIONS_PATH, body=json.dumps(revision).encode())[0] == "201 Created"

    status, answer = _request(app, target=GET_COSTS, body=query)
    assert status == "200 OK" and json.loads(answer)["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"] == "12.5"
    other = json.dumps({**QUERY, "GroupBy": [{"Type": "DIMENSION", "Key": "RECORD_TYPE"}]}).encode()
    paged = json.dumps({**QUERY, "NextPageToken": "2"}).encode()
    assert _request(app, target=GET_COSTS, body=other)[1] == b"moto:" + other
    assert _request(app, target=GET_COSTS, body=paged)[1] == b"moto:" + paged


def test_a_revision_that_is_not_cost_explorers_shape_is_refused():
    from local_stack.moto_server import COST_EXPLORER_REVISIONS_PATH, CostExplorerRevisions

    app = CostExplorerRevisions(_Moto())
    for body in (
        b"not json",
        b'{"TimePeriod": {"Start": "2023-01-01"}}',
        b'{"TimePeriod": {"Start": "a", "End": "b"}, "Result": {"ResultsByTime": 3}}',
    ):
        status, answer = _request(app, path=COST_EXPLORER_REVISIONS_PATH, body=body)
        assert status == "400 Bad Request" and b"not a Cost Explorer revision" in answer


def test_the_ecb_feed_is_served_at_the_ecbs_paths_and_parses_as_the_feed():
    from billing_core.adapters.ecb_feed import parse_ecb_feed
    from local_stack.moto_server import ECB_FEED_PATHS, EcbFeedFiles

    app = EcbFeedFiles(_Moto())
    for path in ECB_FEED_PATHS:
        status, document = _request(app, path=path, method="GET")
        assert status == "200 OK" and len(parse_ecb_feed(document)) == 213
    assert _request(app, path="/moto-api/data.json", method="GET")[1] == b"moto:"
