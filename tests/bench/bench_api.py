"""GET /billing latency next to a raw DynamoDB Query for the same items, on the same stack, same run.

An admin with 60 invoices; the API (gunicorn, token check, invoices + account + cached cost preview)
is timed for ``limit=60`` (all 60 items, the raw Query's equal) and for the default page of 12; the
raw Query is boto3 straight to the stack's DynamoDB. Both use one keep-alive connection and run
alternately, so load from elsewhere on the machine hits both alike. Prints one JSON line.

    make bench        (or: .venv/bin/python -m pytest tests/bench/bench_api.py -o python_files='bench_*.py' -s)
"""

from __future__ import annotations

import json
import statistics
import time

import requests

from billing_core.adapters.dynamodb import DynamoInvoiceRepository
from tests.support.api import bearer, invoice_item, periods, sign_in

INVOICES = 60
ROUNDS = 100
WARMUP = 10


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_percentile(samples, 0.50) * 1000, 2),
        "p95_ms": round(_percentile(samples, 0.95) * 1000, 2),
        "mean_ms": round(statistics.fmean(samples) * 1000, 2),
    }


def test_get_billing_against_a_raw_dynamodb_query(clean_stack):
    stack = clean_stack
    account = stack.admin.sub
    table = stack.info["tables"]["billing"]
    dynamodb = stack.aws_client("dynamodb")
    invoices = DynamoInvoiceRepository(dynamodb, table)
    for label in periods(INVOICES):
        invoices.create_if_absent(invoice_item(account, label))
    session = requests.Session()
    session.headers.update(bearer(sign_in(stack, stack.admin.username, stack.admin.password)["AccessToken"]))
    url = f"{stack.info['api_url']}/billing"

    def api_all() -> None:
        response = session.get(url, params={"limit": INVOICES}, timeout=30)
        assert response.status_code == 200 and len(response.json()["invoices"]) == INVOICES

    def api_page() -> None:
        response = session.get(url, timeout=30)
        assert response.status_code == 200 and len(response.json()["invoices"]) == 12

    def raw_query() -> None:
        response = dynamodb.query(
            TableName=table,
            KeyConditionExpression="#u = :u",
            ExpressionAttributeNames={"#u": "userId"},
            ExpressionAttributeValues={":u": {"S": account}},
            ScanIndexForward=False,
            Limit=INVOICES,
        )
        assert len(response["Items"]) == INVOICES

    variants = {"api_limit_60": api_all, "api_default_page_12": api_page, "raw_query_60": raw_query}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_number in range(WARMUP + ROUNDS):
        for name, call in variants.items():
            started = time.perf_counter()
            call()
            elapsed = time.perf_counter() - started
            if round_number >= WARMUP:
                samples[name].append(elapsed)

    figures = {name: _summary(values) for name, values in samples.items()}
    raw = figures["raw_query_60"]
    result = {
        "benchmark": "get_billing_vs_raw_query",
        "invoices": INVOICES,
        "rounds": ROUNDS,
        **figures,
        "ratio_p50_api60_to_raw": round(figures["api_limit_60"]["p50_ms"] / raw["p50_ms"], 2),
        "ratio_p95_api60_to_raw": round(figures["api_limit_60"]["p95_ms"] / raw["p95_ms"], 2),
    }
    print("\n" + json.dumps(result))
