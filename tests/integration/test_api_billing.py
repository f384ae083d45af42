"""The running billing-api on the local stack: account isolation, paging, one Stripe customer, preview cost.

Everything goes through real HTTP: gunicorn with the stack's moto (DynamoDB, Cognito) and the
Stripe emulator, except the preview count, which serves the same app from a thread so the test can
read the Cost Explorer adapter's request counter.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

from billing_api import create_app
from billing_core.adapters.dynamodb import DynamoAccountRepository, DynamoInvoiceRepository
from billing_core.bootstrap import ApiUseCases, api_ports
from billing_core.settings import Settings
from tests.support.api import bearer, invoice_item, periods, sign_in
from tests.support.servers import WsgiServer

OTHER_ACCOUNT = "another-account-sub"


@pytest.fixture
def admin(clean_stack):
    """The admin's access token and account id, on an emptied stack."""
    token = sign_in(clean_stack, clean_stack.admin.username, clean_stack.admin.password)["AccessToken"]
    return bearer(token), clean_stack.admin.sub


def seed_invoices(stack, account_id: str, labels: list[str], **fields) -> None:
    invoices = DynamoInvoiceRepository(stack.aws_client("dynamodb"), stack.info["tables"]["billing"])
    for label in labels:
        invoices.create_if_absent(invoice_item(account_id, label, **fields))


def test_an_admin_sees_their_own_invoices_and_never_another_accounts(clean_stack, admin):
    headers, account = admin
    seed_invoices(clean_stack, account, ["2026-02", "2026-03"])
    seed_invoices(clean_stack, OTHER_ACCOUNT, ["2026-01", "2026-03"], amount=Decimal("999.99"))
    api = clean_stack.info["api_url"]

    listed = requests.get(f"{api}/billing", headers=headers, timeout=10).json()
    own = requests.get(f"{api}/billing/invoices/inv_2026-03_{account}", headers=headers, timeout=10)
    other = requests.get(f"{api}/billing/invoices/inv_2026-03_{OTHER_ACCOUNT}", headers=headers, timeout=10)

    assert [i["invoiceId"] for i in listed["invoices"]] == [f"inv_2026-03_{account}", f"inv_2026-02_{account}"]
    assert own.status_code == 200 and own.json()["amount"] == "37.74"
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert "999.99" not in other.text


def test_paging_through_sixty_invoices_returns_each_once_newest_first(clean_stack, admin):
    headers, account = admin
    labels = periods(60)
    seed_invoices(clean_stack, account, labels)
    api = clean_stack.info["api_url"]

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 25, **({"cursor": cursor} if cursor else {})}
        body = requests.get(f"{api}/billing", headers=headers, params=params, timeout=10).json()
        seen += [i["invoiceId"] for i in body["invoices"]]
        cursor, pages = body["nextCursor"], pages + 1
        if not cursor:
            break

    assert seen == [f"inv_{label}_{account}" for label in reversed(labels)]
    assert pages == 3


def test_a_forged_cursor_naming_another_account_is_a_400(clean_stack, admin):
    import base64
    import json

    headers, _ = admin
    seed_invoices(clean_stack, OTHER_ACCOUNT, ["2026-01", "2026-02", "2026-03"])
    forged = (
        base64.urlsafe_b64encode(
            json.dumps({"invoiceId": f"inv_2026-03_{OTHER_ACCOUNT}", "userId": OTHER_ACCOUNT}).encode()
        )
        .decode()
        .rstrip("=")
    )

    response = requests.get(
        f"{clean_stack.info['api_url']}/billing", headers=headers, params={"cursor": forged}, timeout=10
    )

    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_cursor"


def test_twenty_concurrent_setup_intent_calls_make_one_stripe_customer(clean_stack, admin):
    """Past the account's budget (STRIPE_WRITES_PER_MINUTE) the calls are 429s that never reach Stripe."""
    headers, account = admin
    url = f"{clean_stack.info['api_url']}/billing/setup-intent"
    start = threading.Barrier(20, timeout=10)

    def click(_: int) -> requests.Response:
        start.wait()
        return requests.post(url, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(click, range(20)))

    objects = requests.get(f"{clean_stack.info['stripe_api_base']}/_emulator/objects", timeout=10).json()
    stored = clean_stack.aws_client("dynamodb").get_item(
        TableName=clean_stack.info["tables"]["payment_methods"], Key={"userId": {"S": account}}
    )["Item"]
    statuses = [r.status_code for r in responses]
    made = [r for r in responses if r.status_code == 200]
    # A minute boundary between the calls would give the new minute a budget of its own.
    assert len(made) >= Settings.from_env({}).stripe_writes_per_minute and set(statuses) <= {200, 429}, statuses
    assert all(r.json()["clientSecret"].startswith("seti_") for r in made)
    assert {r.json()["publishableKey"] for r in made} == {clean_stack.info["stripe_publishable_key"]}
    assert objects["customer"] == 1 and objects["setup_intent"] == len(made)
    customer = clean_stack.stripe_client().v1.customers.retrieve(stored["stripeCustomerId"]["S"])
    assert customer.metadata["userId"] == account
    setup_intent_id = made[0].json()["clientSecret"].split("_secret_")[0]
    intent = clean_stack.stripe_client().v1.setup_intents.retrieve(setup_intent_id)
    assert sorted(intent.payment_method_types) == ["card", "sepa_debit"] and intent.usage == "off_session"


@pytest.fixture
def in_process_api(clean_stack):
    """The API app on a real HTTP server in this process, on the stack's AWS and Stripe (port 0)."""
    settings = clean_stack.settings()
    clients = {service: clean_stack.aws_client(service) for service in ("dynamodb", "ce", "secretsmanager", "sqs")}
    services = api_ports(settings, clients=clients)
    with WsgiServer(create_app(settings, ApiUseCases(services))) as server:
        yield server.base_url, services


def test_a_hundred_page_views_make_one_cost_explorer_request(clean_stack, admin, in_process_api):
    headers, _ = admin
    url, services = in_process_api

    def view(_: int) -> dict:
        return requests.get(f"{url}/billing", headers=headers, timeout=30).json()

    with ThreadPoolExecutor(max_workers=10) as pool:
        pages = list(pool.map(view, range(100)))

    costs = [page["currentCosts"] for page in pages]
    seeded = clean_stack.seeded_costs.month_to_date
    assert all(c is not None for c in costs) and len({c["asOf"] for c in costs}) == 1
    # One GetCostAndUsage; moto has no GetCostForecast, so one forecast attempt and a linear projection.
    assert services.costs.requests_made == 2
    assert costs[0]["forecastMethod"] == "linear"
    assert costs[0]["costsEstimated"] is seeded.estimated is True
    assert Decimal(costs[0]["awsCosts"]) == sum((line.amount for line in seeded.lines), Decimal(0)).quantize(
        Decimal("0.01")
    )  # FX 1.0 on the local stack
    assert Decimal(costs[0]["amount"]) == Decimal(costs[0]["baseFee"]) + Decimal(costs[0]["awsCosts"])


def test_the_first_stripe_customer_made_from_the_billing_tab_gets_the_admins_verified_email(clean_stack, admin):
    headers, account = admin
    api = clean_stack.info["api_url"]

    answer = requests.post(f"{api}/billing/setup-intent", headers=headers, timeout=10)

    assert answer.status_code == 200
    accounts = DynamoAccountRepository(
        clean_stack.aws_client("dynamodb"), clean_stack.info["tables"]["payment_methods"]
    )
    stored = accounts.get(account)
    customer = clean_stack.stripe_client().v1.customers.retrieve(stored.stripe_customer_id)
    # The access token carries no e-mail: it comes from Cognito's GetUser with that token.
    assert customer.email == clean_stack.admin.email == stored.email


def test_a_stalled_aws_gives_a_quick_503_in_json_with_retry_after_not_a_hanging_page(clean_stack, admin):
    import socket
    import threading

    headers, _ = admin
    # An AWS endpoint that accepts connections and never answers.
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(16)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(black_hole.accept()[0]) for _ in range(16)], daemon=True).start()
    stalled = clean_stack.settings(AWS_ENDPOINT_URL=f"http://127.0.0.1:{black_hole.getsockname()[1]}")
    services = api_ports(stalled)
    app = create_app(stalled, ApiUseCases(services))

    try:
        response = app.test_client().get("/billing", headers=headers)
    finally:
        black_hole.close()
        for connection in held:
            connection.close()

    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "unavailable"
    config = services.accounts._client._client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (2, 3, 2)


def test_a_stalled_cost_explorer_leaves_the_preview_out_of_a_page_that_still_answers(clean_stack, admin):
    """The preview is optional: a Cost Explorer that never answers is no 500 and no page held for long."""
    import socket
    import threading

    from billing_core.bootstrap import REQUEST_PATH_AWS_CONFIG
    from local_stack.environment import aws_session

    headers, account = admin
    seed_invoices(clean_stack, account, ["2026-02"])
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(16)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(black_hole.accept()[0]) for _ in range(16)], daemon=True).start()
    settings = clean_stack.settings()
    session = aws_session(settings.aws_region)
    stalled_ce = session.client(
        "ce", endpoint_url=f"http://127.0.0.1:{black_hole.getsockname()[1]}", config=REQUEST_PATH_AWS_CONFIG
    )
    services = api_ports(settings, session=session, clients={"ce": stalled_ce})

    try:
        response = create_app(settings, ApiUseCases(services)).test_client().get("/billing", headers=headers)
    finally:
        black_hole.close()
        for connection in held:
            connection.close()

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["currentCosts"] is None and [i["number"] for i in body["invoices"]] == ["INV-2026-02"]
    assert services.costs.requests_made == 1  # no throttling back-off of its own in a request path


def test_a_stalled_stripe_gives_a_quick_503_in_json_with_retry_after(clean_stack, admin):
    import socket
    import threading

    headers, _ = admin
    # A Stripe API that accepts connections and never answers.
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(16)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(black_hole.accept()[0]) for _ in range(16)], daemon=True).start()
    stalled = clean_stack.settings(STRIPE_API_BASE=f"http://127.0.0.1:{black_hole.getsockname()[1]}")
    from local_stack.environment import aws_session

    services = api_ports(stalled, session=aws_session(stalled.aws_region))
    app = create_app(stalled, ApiUseCases(services))

    try:
        response = app.test_client().post("/billing/setup-intent", headers=headers, json={})
    finally:
        black_hole.close()
        for connection in held:
            connection.close()

    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "unavailable"
    client = services.payments._client_for(services.secrets.get().secret_key)
    assert client._requestor._client._timeout == (2, 5)  # the SDK's default would wait 80 s, three times
    assert services.payments._max_network_retries == 1
