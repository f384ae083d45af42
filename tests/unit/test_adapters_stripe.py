"""Stripe adapter, through the official SDK over a scripted HTTP client: requests, keys, errors."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
from stripe._http_client import HTTPClient

from billing_core.adapters.stripe_gateway import StripePaymentGateway
from billing_core.errors import (
    IdempotencyKeyReused,
    PaymentActionRequired,
    PaymentDeclined,
    StripeAuthenticationFailed,
    StripeFailedAfterExecution,
    StripeObjectNotFound,
    StripeRateLimited,
    StripeRequestRejected,
    StripeUnavailable,
)
from billing_core.ports import CreditNoteLineRequest, CreditNoteRequest, InvoiceLine, StripeCustomer
from tests.support.fakes import FakeSecretsProvider

API_BASE = "http://127.0.0.1:9"  # never contacted: the scripted client answers


class ScriptedStripeHttp(HTTPClient):
    """Answers each request with the next scripted (status, body) and records what was sent."""

    name = "scripted"

    def __init__(self) -> None:
        super().__init__()
        self.responses: list[tuple[int, dict, dict] | Exception] = []
        self.requests: list[dict] = []

    def answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        self.responses.append((status, body, headers or {}))

    def fail(self, error: Exception) -> None:
        self.responses.append(error)

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        self.requests.append(
            {
                "method": method.upper(),
                "url": f"{parts.scheme}://{parts.netloc}",
                "path": parts.path,
                "query": dict(parse_qsl(parts.query)),
                "headers": dict(headers or {}),
                "form": dict(parse_qsl(post_data.decode() if isinstance(post_data, bytes) else post_data or "")),
            }
        )
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        status, body, headers = response
        return json.dumps(body), status, {"request-id": "req_scripted", **headers}

    def close(self):
        pass


def error_body(type_: str, code: str | None = None, **extra) -> dict:
    return {"error": {"type": type_, "code": code, "message": f"{type_} {code}", **extra}}


@pytest.fixture
def http():
    return ScriptedStripeHttp()


@pytest.fixture
def secrets():
    return FakeSecretsProvider(secret_key="sk_test_current")


@pytest.fixture
def gateway(http, secrets):
    return StripePaymentGateway(secrets, api_base=API_BASE, max_network_retries=0, http_client=http)


def test_create_customer_posts_user_id_metadata_with_the_idempotency_key(gateway, http):
    http.answer(200, {"id": "cus_1", "object": "customer", "metadata": {"userId": "user-1"}})

    customer = gateway.create_customer(account_id="user-1", email="a@example.com", idempotency_key="customer:user-1")

    (sent,) = http.requests
    assert (sent["method"], sent["url"], sent["path"]) == ("POST", API_BASE, "/v1/customers")
    assert sent["form"] == {"metadata[userId]": "user-1", "email": "a@example.com"}
    assert sent["headers"]["Idempotency-Key"] == "customer:user-1"
    assert sent["headers"]["Authorization"] == "Bearer sk_test_current"
    assert customer == StripeCustomer(id="cus_1", metadata={"userId": "user-1"})


def test_setup_intent_is_for_card_and_sepa_debit_off_session(gateway, http):
    http.answer(200, {"id": "seti_1", "object": "setup_intent", "client_secret": "seti_1_secret_x"})

    gateway.create_setup_intent(customer_id="cus_1", idempotency_key="setup:user-1:1")

    form = http.requests[0]["form"]
    assert http.requests[0]["path"] == "/v1/setup_intents"
    assert form == {
        "customer": "cus_1",
        "allowed_payment_method_types[0]": "card",
        "allowed_payment_method_types[1]": "sepa_debit",
        "usage": "off_session",
    }


def test_draft_invoice_and_both_lines_in_one_add_lines_request_in_minor_units(gateway, http):
    http.answer(200, {"id": "in_1", "object": "invoice", "status": "draft"})
    http.answer(200, {"id": "in_1", "object": "invoice", "status": "draft", "total": 3774})

    gateway.create_draft_invoice(
        customer_id="cus_1",
        currency="eur",
        description="AWS 2024-11",
        metadata={"userId": "user-1", "period": "2024-11"},
        idempotency_key="inv:user-1:2024-11:draft",
    )
    invoice = gateway.add_invoice_lines(
        invoice_id="in_1",
        lines=[
            InvoiceLine(
                amount=2000,
                description="Monatliche Grundgebühr",
                metadata={"line": "base-fee"},
                period_start=1730419200,
                period_end=1733011199,
            ),
            InvoiceLine(amount=1774, description="AWS Infrastruktur (Nov 2024)", metadata={"line": "aws"}),
        ],
        idempotency_key="inv:user-1:2024-11:add-lines",
    )

    draft, lines = http.requests
    assert draft["path"] == "/v1/invoices"
    assert draft["form"] == {
        "customer": "cus_1",
        "currency": "eur",
        "collection_method": "charge_automatically",
        "auto_advance": "false",
        "description": "AWS 2024-11",
        "metadata[userId]": "user-1",
        "metadata[period]": "2024-11",
    }
    assert lines["path"] == "/v1/invoices/in_1/add_lines"
    assert lines["form"] == {
        "lines[0][amount]": "2000",
        "lines[0][description]": "Monatliche Grundgebühr",
        "lines[0][metadata][line]": "base-fee",
        "lines[0][period][start]": "1730419200",
        "lines[0][period][end]": "1733011199",
        "lines[1][amount]": "1774",
        "lines[1][description]": "AWS Infrastruktur (Nov 2024)",
        "lines[1][metadata][line]": "aws",
    }
    assert [r["headers"]["Idempotency-Key"] for r in http.requests] == [
        "inv:user-1:2024-11:draft",
        "inv:user-1:2024-11:add-lines",
    ]
    assert invoice.total == 3774


def test_finalize_pay_and_default_payment_method_hit_their_endpoints(gateway, http):
    for body in ({"id": "in_1", "status": "open"}, {"id": "in_1", "status": "paid"}, {"id": "cus_1"}):
        http.answer(200, body)

    gateway.finalize_invoice("in_1", idempotency_key="k1")
    paid = gateway.pay_invoice("in_1", idempotency_key="k2")
    gateway.set_default_payment_method(customer_id="cus_1", payment_method_id="pm_card_visa", idempotency_key="k3")

    assert [(r["path"], r["form"]) for r in http.requests] == [
        ("/v1/invoices/in_1/finalize", {}),
        ("/v1/invoices/in_1/pay", {"off_session": "true"}),
        ("/v1/customers/cus_1", {"invoice_settings[default_payment_method]": "pm_card_visa"}),
    ]
    assert paid.status == "paid"


def test_finalize_can_turn_on_auto_advance_of_a_draft_created_without_it(gateway, http):
    http.answer(200, {"id": "in_1", "status": "open", "auto_advance": True})

    gateway.finalize_invoice("in_1", idempotency_key="k1", auto_advance=True)

    assert [(r["path"], r["form"]) for r in http.requests] == [
        ("/v1/invoices/in_1/finalize", {"auto_advance": "true"}),
    ]


def test_a_write_without_an_idempotency_key_is_refused_before_any_request(gateway, http):
    with pytest.raises(ValueError, match="idempotency key"):
        gateway.finalize_invoice("in_1", idempotency_key="")
    assert http.requests == []


def test_an_amount_that_is_not_integer_cents_is_refused(gateway, http):
    with pytest.raises(TypeError, match="minor units"):
        InvoiceLine(amount=Decimal("20.00"), description="x")  # type: ignore[arg-type]  # deliberately wrong
    with pytest.raises(ValueError, match="at least one line"):
        gateway.add_invoice_lines(invoice_id="in_1", lines=[], idempotency_key="k")
    assert http.requests == []


def test_list_invoices_follows_every_page(gateway, http):
    http.answer(
        200, {"object": "list", "url": "/v1/invoices", "has_more": True, "data": [{"id": "in_3", "object": "invoice"}]}
    )
    http.answer(
        200, {"object": "list", "url": "/v1/invoices", "has_more": False, "data": [{"id": "in_2", "object": "invoice"}]}
    )

    invoices = gateway.list_invoices("cus_1", status="open")

    assert [i.id for i in invoices] == ["in_3", "in_2"]
    assert http.requests[0]["query"] == {"customer": "cus_1", "limit": "100", "status": "open"}
    assert http.requests[1]["query"]["starting_after"] == "in_3"


def _credit_note_request(settlement: str, **options) -> CreditNoteRequest:
    lines = (
        CreditNoteLineRequest("il_1", 1000, tax_amount=190, tax_rate_id="txr_made"),
        CreditNoteLineRequest("il_2", 500),
    )
    return CreditNoteRequest("in_1", lines, settlement, memo=None, metadata={"creditNoteId": "cn_1"}, **options)


@pytest.mark.parametrize(
    ("settlement", "settled_by"),
    [
        ("pre_payment", {}),
        ("refund", {"refund_amount": "1690"}),
        ("balance", {"credit_amount": "1690"}),
        ("out_of_band", {"out_of_band_amount": "1690"}),
    ],
)
def test_a_credit_note_sends_its_lines_tax_and_the_gross_where_the_settlement_says(
    gateway, http, settlement, settled_by
):
    http.answer(200, {"id": "cn_1", "object": "credit_note", "status": "issued", "total": 1690})

    note = gateway.create_credit_note(_credit_note_request(settlement), idempotency_key="cn_1:issue")

    (sent,) = http.requests
    assert (sent["method"], sent["path"], sent["headers"]["Idempotency-Key"]) == (
        "POST",
        "/v1/credit_notes",
        "cn_1:issue",
    )
    assert sent["form"] == {
        "invoice": "in_1",
        "lines[0][type]": "invoice_line_item",
        "lines[0][invoice_line_item]": "il_1",
        "lines[0][amount]": "1000",
        "lines[0][tax_amounts][0][amount]": "190",
        "lines[0][tax_amounts][0][tax_rate]": "txr_made",
        "lines[0][tax_amounts][0][taxable_amount]": "1000",
        "lines[1][type]": "invoice_line_item",
        "lines[1][invoice_line_item]": "il_2",
        "lines[1][amount]": "500",
        "metadata[creditNoteId]": "cn_1",
        **settled_by,
    }
    assert (note.id, note.total) == ("cn_1", 1690)


def test_a_credit_note_preview_is_a_get_of_the_same_parameters(gateway, http):
    http.answer(200, {"id": "cn_preview", "object": "credit_note", "total": 1690})

    gateway.preview_credit_note(_credit_note_request("refund", reason="order_change"))

    (sent,) = http.requests
    assert (sent["method"], sent["path"], sent["form"]) == ("GET", "/v1/credit_notes/preview", {})
    assert sent["query"]["refund_amount"] == "1690" and sent["query"]["reason"] == "order_change"
    assert "Idempotency-Key" not in sent["headers"]


def test_credit_notes_and_invoice_lines_are_listed_page_by_page(gateway, http):
    http.answer(200, {"object": "list", "url": "/v1/credit_notes", "has_more": True, "data": [{"id": "cn_2"}]})
    http.answer(200, {"object": "list", "url": "/v1/credit_notes", "has_more": False, "data": [{"id": "cn_1"}]})
    http.answer(200, {"object": "list", "url": "/v1/invoices/in_1/lines", "has_more": True, "data": [{"id": "il_1"}]})
    http.answer(200, {"object": "list", "url": "/v1/invoices/in_1/lines", "has_more": False, "data": [{"id": "il_2"}]})

    notes = gateway.list_credit_notes("in_1")
    lines = gateway.list_invoice_lines("in_1")

    assert ([n.id for n in notes], [line.id for line in lines]) == (["cn_2", "cn_1"], ["il_1", "il_2"])
    assert [(r["path"], r["query"]) for r in http.requests] == [
        ("/v1/credit_notes", {"invoice": "in_1", "limit": "100"}),
        ("/v1/credit_notes", {"invoice": "in_1", "limit": "100", "starting_after": "cn_2"}),
        ("/v1/invoices/in_1/lines", {"limit": "100"}),
        ("/v1/invoices/in_1/lines", {"limit": "100", "starting_after": "il_1"}),
    ]


@pytest.mark.parametrize(
    "line",
    [
        {"amount": 0},
        {"amount": -100},
        {"amount": Decimal("10.00")},
        {"amount": True},
        {"amount": 100, "tax_amount": 19},
        {"amount": 100, "tax_amount": -1, "tax_rate_id": "txr_1"},
        {"amount": 100, "tax_rate_id": "txr_1"},
        {"amount": 100, "tax_amount": 19, "tax_rate_id": "txr_1", "taxable_amount": 1.5},
    ],
)
def test_a_credit_note_line_that_stripe_could_not_take_is_refused_before_any_request(line):
    with pytest.raises((TypeError, ValueError)):
        CreditNoteLineRequest("il_1", **line)


def test_a_credit_note_needs_lines_each_once_and_a_known_settlement():
    line = CreditNoteLineRequest("il_1", 100)

    for lines, settlement in [((), "pre_payment"), ((line, line), "pre_payment"), ((line,), "cash")]:
        with pytest.raises(ValueError):
            CreditNoteRequest("in_1", lines, settlement, memo=None, metadata={})
    request = CreditNoteRequest("in_1", (line, CreditNoteLineRequest("il_2", 50, 0, "txr_1")), "refund", None, {})
    assert request.gross == 150


def test_list_events_asks_for_events_after_a_time(gateway, http):
    http.answer(
        200,
        {
            "object": "list",
            "url": "/v1/events",
            "has_more": False,
            "data": [
                {
                    "id": "evt_1",
                    "object": "event",
                    "type": "invoice.paid",
                    "created": 1_700_000_001,
                    "data": {"object": {"id": "in_1", "object": "invoice", "status": "paid"}},
                }
            ],
        },
    )

    events = list(gateway.list_events(created_after=1_700_000_000, types=["invoice.paid"]))

    assert [e.id for e in events] == ["evt_1"]
    assert http.requests[0]["query"] == {"created[gt]": "1700000000", "limit": "100", "types[0]": "invoice.paid"}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (402, error_body("card_error", "card_declined", decline_code="insufficient_funds"), PaymentDeclined),
        (402, error_body("card_error", "authentication_required"), PaymentActionRequired),
        (402, error_body("card_error", "invoice_payment_intent_requires_action"), PaymentActionRequired),
        (400, error_body("invalid_request_error", "invoice_payment_intent_requires_action"), PaymentActionRequired),
        (429, error_body("invalid_request_error", "rate_limit"), StripeRateLimited),
        (500, error_body("api_error"), StripeUnavailable),
        (404, error_body("invalid_request_error", "resource_missing", param="id"), StripeObjectNotFound),
        (400, error_body("invalid_request_error", "parameter_invalid_integer", param="amount"), StripeRequestRejected),
        (400, error_body("idempotency_error"), IdempotencyKeyReused),
    ],
)
def test_stripe_errors_become_the_projects_error_types(gateway, http, status, body, expected):
    http.answer(status, body)

    with pytest.raises(expected) as error:
        gateway.pay_invoice("in_1", idempotency_key="k")

    assert type(error.value) is expected
    assert error.value.code == body["error"]["code"]


def test_a_500_after_execution_began_is_not_retried_and_says_the_key_is_spent(http, secrets):
    gateway = StripePaymentGateway(secrets, api_base=API_BASE, max_network_retries=2, http_client=http)
    http.answer(500, error_body("api_error"), {"stripe-should-retry": "false"})  # as requests reads it

    with pytest.raises(StripeFailedAfterExecution):
        gateway.finalize_invoice("in_1", idempotency_key="k")

    assert len(http.requests) == 1  # the SDK honours Stripe-Should-Retry: false


def test_a_decline_carries_stripes_decline_code(gateway, http):
    http.answer(402, error_body("card_error", "card_declined", decline_code="insufficient_funds"))

    with pytest.raises(PaymentDeclined) as error:
        gateway.pay_invoice("in_1", idempotency_key="k")

    assert error.value.decline_code == "insufficient_funds"
    assert error.value.request_id == "req_scripted"


def test_an_unreachable_stripe_is_stripe_unavailable(gateway, http):
    http.fail(stripe.APIConnectionError("connection refused"))

    with pytest.raises(StripeUnavailable):
        gateway.retrieve_invoice("in_1")


def test_a_rejected_key_is_reread_and_the_call_retried_with_the_rotated_key(gateway, http, secrets):
    secrets.rotate(secret_key="sk_test_rotated")
    http.answer(401, error_body("invalid_request_error", "api_key_expired"))
    http.answer(200, {"id": "in_1", "status": "open"})

    invoice = gateway.finalize_invoice("in_1", idempotency_key="k")

    assert invoice.status == "open"
    sent_keys = [r["headers"]["Authorization"] for r in http.requests]
    assert sent_keys == ["Bearer sk_test_current", "Bearer sk_test_rotated"]
    assert [r["headers"]["Idempotency-Key"] for r in http.requests] == ["k", "k"]
    assert secrets.refreshes == 1


def test_a_rejected_key_that_did_not_rotate_is_an_authentication_failure(gateway, http, secrets):
    http.answer(401, error_body("invalid_request_error", "api_key_expired"))

    with pytest.raises(StripeAuthenticationFailed):
        gateway.retrieve_invoice("in_1")

    assert len(http.requests) == 1
    assert secrets.refreshes == 1


def test_a_key_rotated_in_the_cache_gets_a_new_client(gateway, http, secrets):
    http.answer(200, {"id": "in_1"})
    http.answer(200, {"id": "in_1"})

    gateway.retrieve_invoice("in_1")
    secrets.rotate(secret_key="sk_test_next")
    secrets.refresh()
    gateway.retrieve_invoice("in_1")

    assert [r["headers"]["Authorization"] for r in http.requests] == ["Bearer sk_test_current", "Bearer sk_test_next"]


def test_without_an_api_base_the_real_stripe_api_is_addressed(http, secrets):
    gateway = StripePaymentGateway(secrets, max_network_retries=0, http_client=http)
    http.answer(200, {"id": "in_1"})

    gateway.retrieve_invoice("in_1")

    assert http.requests[0]["url"] == "https://api.stripe.com"
