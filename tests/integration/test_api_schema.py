"""schemathesis against the running billing-api: with an admin token, no input, valid or invalid,
yields a 5xx or a response that breaks the OpenAPI document the API itself serves.

schemathesis leaves the document's own path (/openapi.json) out of its operations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from billing_core.adapters.dynamodb import DynamoInvoiceRepository
from tests.support.api import bearer, invoice_item, periods, sign_in

GUNICORN_REQUEST_LINE_LIMIT = 4094 - len("GET  HTTP/1.1")


def _request_line_length(base_url: str, case) -> int:
    prepared = requests.Request(case.method, base_url + case.formatted_path, params=case.query).prepare()
    return len(prepared.path_url)


@pytest.fixture(scope="module")
def admin_headers(stack) -> Iterator[dict[str, str]]:
    # Some invoices so the listing and the cursor are exercised with real items.
    dynamodb = stack.aws_client("dynamodb")
    invoices = DynamoInvoiceRepository(dynamodb, stack.info["tables"]["billing"])
    items = [invoice_item(stack.admin.sub, label) for label in periods(15)]
    for item in items:
        invoices.create_if_absent(item)
    yield bearer(sign_in(stack, stack.admin.username, stack.admin.password)["AccessToken"])
    # The stack is shared by the session: leave its billing table as this module found it.
    for item in items:
        dynamodb.delete_item(
            TableName=stack.info["tables"]["billing"],
            Key={"userId": {"S": item.account_id}, "invoiceId": {"S": item.invoice_id}},
        )


def test_the_api_keeps_its_openapi_document(stack, admin_headers):
    # schemathesis' pytest plugin (from_fixture) does not run under pytest 9, so the operations are
    # driven through Hypothesis directly: same strategies, same checks.
    schema = schemathesis.openapi.from_url(f"{stack.info['api_url']}/openapi.json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    tested = []
    tally: Counter[str] = Counter()

    # Invalid input exists only where there are typed parameters: limit and cursor of GET /billing.
    runs = [(operation, GenerationMode.POSITIVE) for operation in operations] + [
        (operation, GenerationMode.NEGATIVE) for operation in operations if operation.label == "GET /billing"
    ]
    for operation, mode in runs:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        def keeps_the_document(case):
            # A request line over gunicorn's limit (4094 bytes) is answered by gunicorn itself: a 414 in
            # the same JSON error shape (the documented "default"), so those cases stay in.
            # An opaque cursor is valid only if this API issued it for this account: no schema can say
            # which strings those are, so a random one is a documented 400, not "valid data rejected".
            excluded = [positive_data_acceptance]
            if _request_line_length(stack.info["api_url"], case) >= GUNICORN_REQUEST_LINE_LIMIT:
                tally["over gunicorn's request line limit"] += 1
                # Refused, only with 414 rather than one of the 4xx schemathesis expects for invalid input.
                excluded.append(negative_data_rejection)
            response = case.call_and_validate(headers=admin_headers, timeout=30, excluded_checks=excluded)
            tally["requests"] += 1
            tally[f"{response.status_code // 100}xx"] += 1
            # Errors are JSON; a success may be a document (the e-invoice XML or PDF).
            if response.status_code >= 400 and not response.headers.get("content-type", [""])[0].startswith(
                "application/json"
            ):
                tally["not JSON"] += 1

        keeps_the_document()
        tested.append(f"{operation.label} ({mode.value})")

    print(
        f"\nschemathesis: {tally['requests']} requests over {len(tested)} operation runs; "
        + ", ".join(f"{key} {count}" for key, count in sorted(tally.items()) if key != "requests")
    )
    assert tally["5xx"] == 0 and tally["not JSON"] == 0 and tally["requests"] > 600
    # The operator's endpoints are driven with the admin's token too: each must answer its documented 403.
    assert {label.split(" (")[0] for label in tested} == {
        "GET /billing",
        "GET /billing/invoices/{invoiceId}",
        "GET /healthz",
        "POST /billing/setup-intent",
        "POST /billing/invoices/{invoiceId}/pay",
        "GET /billing/invoices/{invoiceId}/einvoice",
        "GET /billing/invoices/{invoiceId}/credit-notes/{creditNoteId}/einvoice",
        "GET /operator/invoices/{invoiceId}/einvoice",
        "PUT /billing/invoice-emails",
        "GET /operator/mail/undelivered",
        "GET /operator/documents/{documentId}/mail",
        "POST /operator/documents/{documentId}/resend",
        "GET /operator/accounts",
        "POST /operator/accounts",
        "GET /operator/accounts/{accountId}",
        "PATCH /operator/accounts/{accountId}",
        "POST /operator/accounts/{accountId}/disable",
        "POST /operator/accounts/{accountId}/enable",
        "POST /operator/accounts/{accountId}/invite",
        "GET /operator/invoices",
        "POST /operator/invoices/{invoiceId}/retry",
        "POST /operator/invoices/{invoiceId}/void",
        "GET /operator/invoices/{invoiceId}/credit-notes",
        "POST /operator/invoices/{invoiceId}/credit-notes",
        "POST /operator/invoices/{invoiceId}/credit-notes/preview",
        "GET /operator/credit-notes/{creditNoteId}/einvoice",
        "GET /operator/runs/{period}",
        "GET /operator/audit",
    }
