"""billing-api over HTTP with in-memory ports: the contract each endpoint keeps with the page."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing_api import create_app
from billing_api.auth import JwksCache, TokenVerifier
from billing_api.openapi import openapi_document
from billing_core.bootstrap import ApiPorts, ApiUseCases
from billing_core.domain.costs import CostLine
from billing_core.domain.invoice_plan import BillingPolicy, FxRate
from billing_core.domain.records import Account, SavedPaymentMethod
from billing_core.settings import Settings
from billing_core.use_cases.cost_preview import CostPreviewService
from tests.support.api import ADMIN_GROUP, CLIENT_ID, ISSUER, POOL_ID, TokenFactory, invoice_item, new_rsa_key
from tests.support.fakes import (
    FakeAccountRepository,
    FakeCostSource,
    FakeInvoiceRepository,
    FakeLeases,
    FakePaymentGateway,
    FakePreviewCache,
    FakeSecretsProvider,
)

ALICE, BOB = "alice-sub", "bob-sub"
NOW = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)
SEED_COSTS = [
    CostLine("AWS Lambda", Decimal("5.23")),
    CostLine("Amazon Simple Storage Service", Decimal("2.15")),
    CostLine("Amazon CloudFront", Decimal("8.47")),
    CostLine("Amazon DynamoDB", Decimal("1.89")),
]


@pytest.fixture(scope="module")
def signing_key():
    return new_rsa_key()


@pytest.fixture
def tokens(signing_key):
    return TokenFactory(signing_key)


@pytest.fixture
def ports():
    invoices = FakeInvoiceRepository(
        [invoice_item(ALICE, f"2025-{m:02d}") for m in range(1, 13)]
        + [invoice_item(ALICE, "2026-01"), invoice_item(BOB, "2025-11", amount=Decimal("99.00"))]
    )
    return ApiPorts(
        settings=None,
        invoices=invoices,
        accounts=FakeAccountRepository(),
        costs=FakeCostSource(SEED_COSTS, estimated=True),
        payments=FakePaymentGateway(),
        secrets=FakeSecretsProvider(publishable_key="pk_test_page"),
        billing_jobs=None,
        preview_cache=FakePreviewCache(clock=lambda: NOW.timestamp()),
        leases=FakeLeases(clock=lambda: NOW.timestamp()),
    )


def make_app(tokens, ports, **environment):
    settings = Settings.from_env(
        {"COGNITO_USER_POOL_ID": POOL_ID, "COGNITO_CLIENT_ID": CLIENT_ID, "COGNITO_ISSUER": ISSUER, **environment}
    )
    ports.settings = settings
    verifier = TokenVerifier(
        JwksCache(tokens.jwks),
        issuer=ISSUER,
        client_id=CLIENT_ID,
        admin_group=ADMIN_GROUP,
    )
    policy = BillingPolicy(fx=FxRate(Decimal("1"), "parity for tests", NOW.date()))
    preview = CostPreviewService(ports.costs, ports.preview_cache, policy, leases=ports.leases, now=lambda: NOW)
    return create_app(settings, ApiUseCases(ports), verifier=verifier, preview=preview)


@pytest.fixture
def client(tokens, ports):
    return make_app(tokens, ports).test_client()


def auth(tokens, sub=ALICE, **claims) -> dict:
    return {"Authorization": f"Bearer {tokens.token(sub=sub, **claims)}"}


def assert_error_shape(response, status, code):
    assert response.status_code == status
    assert response.is_json
    assert response.get_json() == {"error": {"code": code, "message": response.get_json()["error"]["message"]}}


# --- GET /billing ---------------------------------------------------------------------------------


def test_billing_lists_the_callers_invoices_newest_first_with_money_as_strings(client, tokens):
    body = client.get("/billing", headers=auth(tokens)).get_json()

    assert body["accountId"] == ALICE
    assert [i["invoiceId"] for i in body["invoices"][:3]] == [
        f"inv_2026-01_{ALICE}",
        f"inv_2025-12_{ALICE}",
        f"inv_2025-11_{ALICE}",
    ]
    first = body["invoices"][0]
    assert (first["amount"], first["baseFee"], first["awsCosts"], first["currency"]) == (
        "37.74",
        "20.00",
        "17.74",
        "EUR",
    )
    assert first["awsBreakdown"]["Amazon CloudFront"] == "8.47"
    assert first["period"] == {"start": "2026-01-01", "end": "2026-02-01"}
    assert (first["status"], first["paidAt"], first["number"]) == ("paid", 1_730_422_800_000, "INV-2026-01")


def test_billing_pages_with_limit_and_an_opaque_cursor_without_gaps_or_repeats(client, tokens):
    seen, cursor = [], None
    while True:
        query = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        body = client.get("/billing", query_string=query, headers=auth(tokens)).get_json()
        seen += [i["invoiceId"] for i in body["invoices"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break

    assert len(seen) == 13 and len(set(seen)) == 13
    assert seen == sorted(seen, reverse=True)


def test_the_default_page_is_twelve_invoices(client, tokens):
    body = client.get("/billing", headers=auth(tokens)).get_json()

    assert len(body["invoices"]) == 12 and body["nextCursor"] is not None


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": ""},
        {"limit": "9" * 40},
        {"limt": "5"},
        {"limit": ["5", "6"]},
        {"cursor": "%%%"},
        {"cursor": "bm90LWpzb24"},
        {"cursor": "x" * 2000},
        {"cursor": ""},
    ],
)
def test_bad_query_parameters_are_400s_never_500s(client, tokens, query):
    assert_error_shape(
        client.get("/billing", query_string=query, headers=auth(tokens)),
        400,
        "invalid_cursor" if "cursor" in query else "invalid_parameter",
    )


def test_endpoints_without_parameters_refuse_unknown_ones(client, tokens):
    response = client.get(f"/billing/invoices/inv_2025-11_{ALICE}", query_string={"debug": "1"}, headers=auth(tokens))

    assert_error_shape(response, 400, "invalid_parameter")


def test_a_cursor_from_another_account_is_refused_not_followed(client, tokens):
    bobs_cursor = client.get("/billing", query_string={"limit": 1}, headers=auth(tokens, BOB)).get_json()["nextCursor"]
    alices_cursor = client.get("/billing", query_string={"limit": 1}, headers=auth(tokens)).get_json()["nextCursor"]

    response = client.get("/billing", query_string={"cursor": alices_cursor}, headers=auth(tokens, BOB))

    assert bobs_cursor is None  # Bob has one invoice
    assert_error_shape(response, 400, "invalid_cursor")


def test_each_admin_sees_only_their_own_invoices(client, tokens):
    bob = client.get("/billing", headers=auth(tokens, BOB)).get_json()

    assert [i["invoiceId"] for i in bob["invoices"]] == [f"inv_2025-11_{BOB}"]
    assert bob["invoices"][0]["amount"] == "99.00"


def test_the_payment_method_is_none_until_one_is_saved_then_its_display_fields(client, tokens, ports):
    before = client.get("/billing", headers=auth(tokens)).get_json()["paymentMethod"]
    ports.accounts.put(
        Account(ALICE, stripe_customer_id="cus_1", payment_method=SavedPaymentMethod("pm_1", "card", "visa", "4242"))
    )
    after = client.get("/billing", headers=auth(tokens)).get_json()["paymentMethod"]

    assert before == {"status": "none", "id": None, "type": None, "brand": None, "last4": None}
    assert after == {"status": "active", "id": "pm_1", "type": "card", "brand": "visa", "last4": "4242"}


def test_current_costs_are_priced_like_the_invoice_with_a_linear_forecast(client, tokens):
    costs = client.get("/billing", headers=auth(tokens)).get_json()["currentCosts"]

    assert (costs["baseFee"], costs["awsCosts"], costs["amount"]) == ("20.00", "17.74", "37.74")
    assert costs["awsBreakdown"]["Amazon CloudFront"] == "8.47"
    assert costs["costsEstimated"] is True
    assert costs["period"] == {"start": "2026-05-01", "end": "2026-06-01"}
    assert costs["asOf"] == int(NOW.timestamp() * 1000)
    # 14 days elapsed (May 1..14) of 31: 17.74 / 14 * 31 = 39.28
    assert (costs["forecastMethod"], costs["forecastAwsCosts"], costs["forecastAmount"]) == ("linear", "39.28", "59.28")


def test_without_an_fx_rate_the_preview_is_off_rather_than_wrong(tokens, ports):
    app = make_app(tokens, ports)
    app.extensions["billing_api"].cost_preview = None

    body = app.test_client().get("/billing", headers=auth(tokens)).get_json()

    assert body["currentCosts"] is None and len(body["invoices"]) == 12


# --- GET /billing/invoices/<id> -------------------------------------------------------------------


def test_one_invoice_with_breakdown_number_and_links(client, tokens):
    body = client.get(f"/billing/invoices/inv_2025-11_{ALICE}", headers=auth(tokens)).get_json()

    assert body["invoiceId"] == f"inv_2025-11_{ALICE}"
    assert body["hostedInvoiceUrl"] == "https://invoice.stripe.test/2025-11"
    assert body["invoicePdf"] == "https://invoice.stripe.test/2025-11/pdf"
    assert sum(Decimal(v) for v in body["awsBreakdown"].values()) == Decimal(body["awsCosts"])


def test_billing_says_when_last_months_invoice_waits_for_final_costs(tokens, ports):
    from billing_core.domain.costs import Period
    from billing_core.domain.records import BillingRunRecord, RunStatus
    from tests.support.fakes import FakeRunRecords

    last_month = Period.previous(datetime.now(UTC))
    ports.runs = FakeRunRecords(clock=time.time)
    client = make_app(tokens, ports).test_client()
    assert client.get("/billing", headers=auth(tokens)).get_json()["previousMonth"] == {
        "period": last_month.label,
        "waitingForFinalCosts": False,
    }

    ports.runs.put(
        BillingRunRecord(
            last_month, "run_1", RunStatus.WAITING_FOR_FINAL_COSTS, "cron", 1, 0, 0, 1, 1, 1, costs_estimated=True
        ),
        ttl_seconds=3600,
    )

    body = client.get("/billing", headers=auth(tokens)).get_json()
    assert body["previousMonth"] == {"period": last_month.label, "waitingForFinalCosts": True}


def test_an_invoice_shows_its_corrections_of_earlier_months_and_the_credit_carried(client, tokens, ports):
    from billing_core.domain.corrections import Correction, TrueUp
    from billing_core.domain.costs import Period
    from billing_core.domain.fx import ECB_SOURCE, Conversion, FxQuote, FxRate

    # What a claim fixes is never updated: the stored record is the one a claim with a correction writes.
    claimed = ports.invoices.get(ALICE, f"inv_2025-12_{ALICE}")
    ports.invoices.records[(ALICE, claimed.invoice_id)] = dataclasses.replace(
        claimed,
        true_up=TrueUp(
            corrections=(Correction(Period(2025, 11), Decimal("-2.74"), "Korrektur AWS Infrastruktur (Nov 2025)"),)
        ),
        conversion=Conversion(
            FxRate(Decimal("1.0497"), ECB_SOURCE, date(2025, 11, 28), FxQuote.COST_PER_INVOICE_UNIT),
            "1 EUR = 1,0497 USD, EZB-Referenzkurs vom 28.11.2025",
        ),
    )

    body = client.get(f"/billing/invoices/inv_2025-12_{ALICE}", headers=auth(tokens)).get_json()

    assert body["corrections"] == [
        {
            "period": "2025-11",
            "description": "Korrektur AWS Infrastruktur (Nov 2025)",
            "amount": "-2.74",
            "settledByCreditNote": False,
        }
    ]
    assert (body["creditIn"], body["carriedOut"]) == ("0.00", "0.00")
    assert body["fxNote"].startswith("1 EUR = 1,0497 USD")


@pytest.mark.parametrize("invoice_id", [f"inv_2025-11_{BOB}", "inv_2030-01_nobody", "x" * 5000, "%00", "a b"])
def test_another_accounts_invoice_and_nonsense_ids_are_404s(client, tokens, invoice_id):
    assert_error_shape(client.get(f"/billing/invoices/{invoice_id}", headers=auth(tokens)), 404, "not_found")


def test_pay_now_refuses_a_paid_invoice_and_another_accounts_without_asking_stripe(client, tokens, ports):
    paid = client.post("/billing/invoices/inv_2026-01_alice-sub/pay", headers=auth(tokens))
    other = client.post(f"/billing/invoices/inv_2025-11_{BOB}/pay", headers=auth(tokens))

    assert_error_shape(paid, 409, "conflict")
    assert_error_shape(other, 404, "not_found")
    assert ports.payments.calls == []


# --- POST /billing/setup-intent -------------------------------------------------------------------


def test_setup_intent_returns_client_secret_and_publishable_key_on_one_customer(client, tokens, ports):
    first = client.post("/billing/setup-intent", headers=auth(tokens)).get_json()
    second = client.post("/billing/setup-intent", headers=auth(tokens)).get_json()

    assert first["publishableKey"] == "pk_test_page"
    assert first["clientSecret"].startswith("seti_") and first["clientSecret"] != second["clientSecret"]
    assert len(ports.payments.customers) == 1
    intents = list(ports.payments.setup_intents.values())
    assert intents[0]["payment_method_types"] == ["card", "sepa_debit"] and intents[0]["usage"] == "off_session"
    assert ports.accounts.get(ALICE).stripe_customer_id == next(iter(ports.payments.customers))


def test_every_stripe_write_of_the_setup_carries_an_idempotency_key(client, tokens, ports):
    client.post("/billing/setup-intent", headers=auth(tokens))

    keys = [c.idempotency_key for c in ports.payments.calls if c.method.startswith("create_")]
    assert keys[0] == f"customer:{ALICE}" and keys[1].startswith(f"setup-intent:{ALICE}:")


def test_a_body_over_the_limit_is_413(client, tokens):
    response = client.post("/billing/setup-intent", data=b"x" * (16 * 1024 + 1), headers=auth(tokens))

    assert_error_shape(response, 413, "payload_too_large")


def test_stripe_unavailable_is_a_503_with_retry_after_without_stripes_message(client, tokens, ports):
    from billing_core.errors import StripeUnavailable

    ports.payments.fail_next("create_customer", StripeUnavailable("upstream said sk_test_secret123 is wrong"))
    response = client.post("/billing/setup-intent", headers=auth(tokens))

    assert_error_shape(response, 503, "unavailable")
    assert response.headers["Retry-After"] == "5"
    assert b"sk_test" not in response.data


def test_a_stripe_refusal_is_a_502_without_stripes_message(client, tokens, ports):
    from billing_core.errors import StripeRequestRejected

    ports.payments.fail_next("create_customer", StripeRequestRejected("upstream said sk_test_secret123 is wrong"))
    response = client.post("/billing/setup-intent", headers=auth(tokens))

    assert_error_shape(response, 502, "payment_provider_error")
    assert b"sk_test" not in response.data


# --- authentication over HTTP ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, method",
    [
        ("/billing", "get"),
        (f"/billing/invoices/inv_2025-11_{ALICE}", "get"),
        ("/billing/setup-intent", "post"),
        ("/no-such-route", "get"),
    ],
)
def test_every_route_but_health_and_openapi_needs_a_token(client, path, method):
    response = getattr(client, method)(path)

    assert_error_shape(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_non_admin_is_403_and_the_message_leaks_nothing(client, tokens):
    response = client.get("/billing", headers=auth(tokens, groups=("members",)))

    assert_error_shape(response, 403, "forbidden")
    assert "group" not in response.get_json()["error"]["message"].lower()


def test_an_expired_token_gets_the_same_401_body_as_garbage(client, tokens):
    expired = client.get("/billing", headers=auth(tokens, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200))
    garbage = client.get("/billing", headers={"Authorization": "Bearer garbage"})

    assert expired.status_code == garbage.status_code == 401
    assert expired.get_json() == garbage.get_json()


def test_health_and_openapi_need_no_token(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/openapi.json").get_json()["openapi"] == "3.1.0"


# --- errors, headers, CORS ------------------------------------------------------------------------


def test_a_wrong_method_is_405_in_the_error_shape_with_allow(client, tokens):
    response = client.delete("/billing", headers=auth(tokens))

    assert_error_shape(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_an_unexpected_error_is_a_500_that_says_nothing_about_it(client, tokens, ports):
    def broken(*args, **kwargs):
        raise RuntimeError("table billing-prod has a problem at 10.0.0.5")

    ports.invoices.list_for_account = broken
    response = client.get("/billing", headers=auth(tokens))

    assert_error_shape(response, 500, "internal_error")
    assert b"10.0.0.5" not in response.data and b"billing-prod" not in response.data


def test_every_response_carries_the_security_headers(client, tokens):
    for response in (client.get("/healthz"), client.get("/billing"), client.get("/billing", headers=auth(tokens))):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "max-age=" in response.headers["Strict-Transport-Security"]
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert response.headers["X-Request-Id"]


def test_cors_is_off_by_default(client, tokens):
    response = client.get("/billing", headers={**auth(tokens), "Origin": "https://admin.example.com"})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_answers_only_configured_origins_and_preflights_without_a_token(tokens, ports):
    client = make_app(tokens, ports, CORS_ALLOWED_ORIGINS="https://admin.example.com").test_client()
    preflight_headers = {
        "Origin": "https://admin.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }

    preflight = client.options("/billing/setup-intent", headers=preflight_headers)
    allowed = client.get("/billing", headers={**auth(tokens), "Origin": "https://admin.example.com"})
    other = client.get("/billing", headers={**auth(tokens), "Origin": "https://evil.example.com"})

    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Origin" in other.headers["Vary"]


def test_the_openapi_document_lists_exactly_the_routes_the_app_serves(tokens, ports):
    app = make_app(tokens, ports)
    served = {
        (
            rule.rule.replace("<invoice_id>", "{invoiceId}")
            .replace("<account_id>", "{accountId}")
            .replace("<period>", "{period}")
            .replace("<credit_note_id>", "{creditNoteId}")
            .replace("<document_id>", "{documentId}"),
            method.lower(),
        )
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(("api.", "operator."))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in openapi_document()["paths"].items() for method in item}

    assert served == documented
