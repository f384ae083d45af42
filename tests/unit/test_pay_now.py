"""Pay now and the operator's retry when Stripe refuses: already paid (a racing payment won), no payment method.

Stripe answers both with ``400 invalid_request_error`` and no code; the gateway names them
(``InvoiceAlreadyPaid``, ``PaymentMethodMissing``), ``pay_again`` makes them ``AlreadyPaid`` and a
``no_payment_method`` decline, and the API answers 409 and ``declined: "no_payment_method"``, never 502.
"""

from __future__ import annotations

import pytest

from billing_api import create_app
from billing_api.auth import JwksCache, TokenVerifier
from billing_core.adapters.stripe_gateway import StripePaymentGateway
from billing_core.bootstrap import ApiPorts, ApiUseCases
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.errors import (
    InvoiceAlreadyPaid,
    PaymentGatewayError,
    PaymentMethodMissing,
    StripeObjectNotFound,
    StripeRequestRejected,
)
from billing_core.ports import StripeInvoice
from billing_core.settings import Settings
from billing_core.use_cases.billing_overview import CustomerBilling, InvoiceNotPayable, InvoicePaid
from billing_core.use_cases.operator_invoices import InvoiceNotRetryable, OperatorInvoices
from billing_core.use_cases.payment_retry import NO_PAYMENT_METHOD, AlreadyPaid, NothingToPay, pay_again
from tests.support.api import ADMIN_GROUP, CLIENT_ID, ISSUER, POOL_ID, TokenFactory, new_rsa_key
from tests.support.fakes import (
    FakeAccountRepository,
    FakeAuditLog,
    FakeCostSource,
    FakeInvoiceRepository,
    FakePaymentGateway,
    FakeSecretsProvider,
)
from tests.support.records import an_invoice
from tests.unit.test_adapters_stripe import API_BASE, ScriptedStripeHttp

ACCOUNT = "alice-sub"
INVOICE_ID = f"inv_2024-11_{ACCOUNT}"
ALREADY_PAID = "Invoice is already paid"
NO_METHOD = (
    "This customer has no attached payment source or default payment method. Please consider adding a "
    "default payment method. For more information, visit "
    "https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority."
)


def refusal(message: str, **fields) -> dict:
    """Stripe's body for a refused pay: ``invalid_request_error`` with no code unless given."""
    return {"error": {"type": "invalid_request_error", "message": message, **fields}}


# --- the gateway names Stripe's refusals ----------------------------------------------------------


@pytest.fixture
def http():
    return ScriptedStripeHttp()


@pytest.fixture
def gateway(http):
    return StripePaymentGateway(
        FakeSecretsProvider(secret_key="sk_test_current"), api_base=API_BASE, max_network_retries=0, http_client=http
    )


def open_invoice(customer_method: str | None = None, **invoice) -> dict:
    """Stripe's invoice as ``retrieve(expand=["customer"])`` answers it: open, its customer expanded."""
    customer = {
        "id": "cus_1",
        "object": "customer",
        "default_source": None,
        "invoice_settings": {"default_payment_method": customer_method},
    }
    return {
        "id": "in_1",
        "object": "invoice",
        "status": "open",
        "default_payment_method": None,
        "default_source": None,
        "customer": customer,
        **invoice,
    }


@pytest.mark.parametrize("message", [ALREADY_PAID, "Invoice is already paid."])
def test_stripes_refusal_of_a_paid_invoice_is_named_without_another_request(gateway, http, message):
    http.answer(400, refusal(message))

    with pytest.raises(InvoiceAlreadyPaid) as refused:
        gateway.pay_invoice("in_1", idempotency_key="inv:pay-now:1")

    assert isinstance(refused.value, StripeRequestRejected)  # callers that knew only that still see it
    assert (refused.value.code, refused.value.request_id) == (None, "req_scripted")
    assert [r["path"] for r in http.requests] == ["/v1/invoices/in_1/pay"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, refusal(NO_METHOD)),
        # as some integrations' doubles have it: the same message with resource_missing
        (404, refusal(NO_METHOD, code="resource_missing", param="default_payment_method")),
    ],
)
def test_stripes_refusal_for_want_of_a_payment_method_is_named_once_stripe_confirms_there_is_none(
    gateway, http, status, body
):
    http.answer(status, body)
    http.answer(200, open_invoice(customer_method=None))

    with pytest.raises(PaymentMethodMissing) as refused:
        gateway.pay_invoice("in_1", idempotency_key="inv:pay-now:0")

    assert isinstance(refused.value, StripeRequestRejected)
    assert [(r["method"], r["path"]) for r in http.requests] == [
        ("POST", "/v1/invoices/in_1/pay"),
        ("GET", "/v1/invoices/in_1"),
    ]


def test_a_saved_refusal_for_want_of_a_payment_method_the_customer_now_has_pays_under_that_methods_key(gateway, http):
    # Stripe answers the attempt's key with the refusal it saved before the customer added a card.
    http.answer(400, refusal(NO_METHOD), {"idempotent-replayed": "true"})
    http.answer(200, open_invoice(customer_method="pm_new"))
    http.answer(200, {"id": "in_1", "object": "invoice", "status": "paid"})

    paid = gateway.pay_invoice("in_1", idempotency_key="inv:pay-now:0")

    assert paid.status == "paid"
    assert [(r["method"], r["path"], r["headers"].get("Idempotency-Key")) for r in http.requests] == [
        ("POST", "/v1/invoices/in_1/pay", "inv:pay-now:0"),
        ("GET", "/v1/invoices/in_1", None),
        ("POST", "/v1/invoices/in_1/pay", "inv:pay-now:0:pm_new"),
    ]


def test_a_saved_refusal_for_want_of_a_payment_method_of_an_invoice_paid_since_is_already_paid(gateway, http):
    http.answer(400, refusal(NO_METHOD))
    http.answer(200, open_invoice(customer_method="pm_new", status="paid"))

    with pytest.raises(InvoiceAlreadyPaid):
        gateway.pay_invoice("in_1", idempotency_key="inv:pay-now:0")
    assert len(http.requests) == 2


@pytest.mark.parametrize(
    ("invoice", "expected"),
    [
        ({"id": "in_1", "object": "invoice", "status": "paid", "customer": {"id": "cus_1"}}, InvoiceAlreadyPaid),
        ({"id": "in_1", "object": "invoice", "status": "paid", "customer": "cus_1"}, InvoiceAlreadyPaid),
        (open_invoice(customer_method=None), PaymentMethodMissing),
    ],
)
def test_a_refusal_worded_otherwise_is_told_by_the_invoice_and_its_customer(gateway, http, invoice, expected):
    http.answer(400, refusal("Stripe worded this refusal differently."))
    http.answer(200, {"object": "invoice", **invoice})

    with pytest.raises(expected):
        gateway.pay_invoice("in_1", idempotency_key="k")

    read = http.requests[1]
    assert (read["method"], read["path"], read["query"]) == ("GET", "/v1/invoices/in_1", {"expand[0]": "customer"})


def test_a_refusal_of_an_invoice_that_could_be_paid_stays_what_it_was(gateway, http):
    http.answer(400, refusal("This invoice's payment is already processing."))
    http.answer(200, open_invoice(customer_method="pm_1"))

    with pytest.raises(StripeRequestRejected) as refused:
        gateway.pay_invoice("in_1", idempotency_key="k")

    assert type(refused.value) is StripeRequestRejected
    assert len(http.requests) == 2


def test_a_refusal_stays_what_it_was_when_the_invoice_cannot_be_read(gateway, http):
    http.answer(400, refusal("Stripe worded this refusal differently."))
    http.answer(500, {"error": {"type": "api_error", "message": "boom"}})

    with pytest.raises(StripeRequestRejected) as refused:
        gateway.pay_invoice("in_1", idempotency_key="k")

    assert type(refused.value) is StripeRequestRejected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, refusal("Invalid integer: x", code="parameter_invalid_integer", param="amount"), StripeRequestRejected),
        (404, refusal("No such invoice: 'in_1'", code="resource_missing", param="id"), StripeObjectNotFound),
    ],
)
def test_other_refusals_are_not_read_again(gateway, http, status, body, expected):
    http.answer(status, body)

    with pytest.raises(expected) as refused:
        gateway.pay_invoice("in_1", idempotency_key="k")

    assert type(refused.value) is expected
    assert len(http.requests) == 1


# --- pay_again and the use cases ------------------------------------------------------------------


class RefusingPayments(FakePaymentGateway):
    """Stripe has the invoice open at the read, then refuses to pay it with ``refusal``."""

    def __init__(self, refusal: PaymentGatewayError | None, *, status: str = "open") -> None:
        super().__init__()
        self.refusal = refusal
        self.status = status
        self.keys: list[str] = []

    def retrieve_invoice(self, invoice_id: str) -> StripeInvoice:
        return StripeInvoice(id=invoice_id, status=self.status, attempt_count=1, hosted_invoice_url="https://h/1")

    def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        self.keys.append(idempotency_key)
        if self.refusal is not None:
            raise self.refusal
        return StripeInvoice(id=invoice_id, status="paid", attempt_count=2)


def failed_invoice(status: InvoiceStatus = InvoiceStatus.PAYMENT_FAILED):
    return an_invoice(account_id=ACCOUNT, status=status, stripe_invoice_id="in_1")


def test_stripe_saying_already_paid_after_the_read_is_already_paid_and_nothing_more_is_tried():
    payments = RefusingPayments(InvoiceAlreadyPaid(ALREADY_PAID))

    with pytest.raises(AlreadyPaid, match="paid at Stripe"):
        pay_again(payments, failed_invoice(), purpose="pay-now")

    assert payments.keys == [f"{INVOICE_ID}:pay-now:1"]
    assert issubclass(AlreadyPaid, NothingToPay)  # the retry after a new payment method skips it


def test_an_invoice_stripe_reports_paid_at_the_read_is_already_paid_without_paying():
    payments = RefusingPayments(None, status="paid")

    with pytest.raises(AlreadyPaid):
        pay_again(payments, failed_invoice())

    assert payments.keys == []


def test_no_payment_method_is_a_decline_saying_so():
    attempt = pay_again(RefusingPayments(PaymentMethodMissing(NO_METHOD)), failed_invoice(), purpose="pay-now")

    assert (attempt.paid, attempt.stripe_status, attempt.declined, attempt.action_url) == (
        False,
        "open",
        NO_PAYMENT_METHOD,
        None,
    )
    assert NO_PAYMENT_METHOD == "no_payment_method"


def customer_billing(payments, invoice) -> CustomerBilling:
    return CustomerBilling(
        invoices=FakeInvoiceRepository([invoice]),
        accounts=FakeAccountRepository(),
        payments=payments,
        secrets=FakeSecretsProvider(),
    )


def test_pay_now_of_an_invoice_a_racing_payment_paid_is_invoice_paid():
    billing = customer_billing(RefusingPayments(InvoiceAlreadyPaid(ALREADY_PAID)), failed_invoice())

    with pytest.raises(InvoicePaid):
        billing.pay_now(ACCOUNT, INVOICE_ID)
    assert issubclass(InvoicePaid, InvoiceNotPayable)


def test_pay_now_of_an_invoice_recorded_paid_is_invoice_paid_without_asking_stripe():
    payments = RefusingPayments(None)
    billing = customer_billing(payments, failed_invoice(InvoiceStatus.PAID))

    with pytest.raises(InvoicePaid):
        billing.pay_now(ACCOUNT, INVOICE_ID)
    assert payments.keys == []


def test_the_operators_retry_of_an_invoice_a_racing_payment_paid_is_not_retryable_and_not_audited():
    audit = FakeAuditLog()
    operator = OperatorInvoices(
        FakeInvoiceRepository([failed_invoice()]), RefusingPayments(InvoiceAlreadyPaid(ALREADY_PAID)), audit
    )

    with pytest.raises(InvoiceNotRetryable, match="paid at Stripe"):
        operator.retry(INVOICE_ID, actor="operator:o")
    assert audit.entries() == []


def test_the_operators_retry_without_a_payment_method_reports_and_audits_the_decline():
    audit = FakeAuditLog()
    operator = OperatorInvoices(
        FakeInvoiceRepository([failed_invoice()]), RefusingPayments(PaymentMethodMissing(NO_METHOD)), audit
    )

    outcome = operator.retry(INVOICE_ID, actor="operator:o")

    assert (outcome.paid, outcome.declined) == (False, "no_payment_method")
    assert [entry.after for entry in audit.entries()] == [
        {"invoice": INVOICE_ID, "stripe": "open", "declined": "no_payment_method"}
    ]


# --- the API's answers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key():
    return new_rsa_key()


@pytest.fixture
def tokens(signing_key):
    return TokenFactory(signing_key)


def api(tokens, payments):
    settings = Settings.from_env(
        {"COGNITO_USER_POOL_ID": POOL_ID, "COGNITO_CLIENT_ID": CLIENT_ID, "COGNITO_ISSUER": ISSUER}
    )
    ports = ApiPorts(
        settings=settings,
        invoices=FakeInvoiceRepository([failed_invoice()]),
        accounts=FakeAccountRepository(),
        costs=FakeCostSource([], estimated=True),
        payments=payments,
        secrets=FakeSecretsProvider(publishable_key="pk_test_page"),
        billing_jobs=None,
        audit=FakeAuditLog(),
    )
    verifier = TokenVerifier(JwksCache(tokens.jwks), issuer=ISSUER, client_id=CLIENT_ID, admin_group=ADMIN_GROUP)
    return create_app(settings, ApiUseCases(ports), verifier=verifier).test_client()


def admin(tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.token(sub=ACCOUNT)}"}


def operator(tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.token(sub='op-sub', groups=('operator',), username='operator')}"}


def test_pay_now_answers_409_already_paid_when_stripe_says_a_racing_payment_paid_it(tokens):
    answer = api(tokens, RefusingPayments(InvoiceAlreadyPaid(ALREADY_PAID))).post(
        f"/billing/invoices/{INVOICE_ID}/pay", headers=admin(tokens)
    )

    assert answer.status_code == 409
    assert answer.get_json() == {"error": {"code": "conflict", "message": "This invoice is already paid."}}


def test_pay_now_without_a_payment_method_answers_a_decline_saying_so_not_502(tokens):
    answer = api(tokens, RefusingPayments(PaymentMethodMissing(NO_METHOD))).post(
        f"/billing/invoices/{INVOICE_ID}/pay", headers=admin(tokens)
    )

    assert answer.status_code == 200
    assert answer.get_json() == {
        "invoiceId": INVOICE_ID,
        "paid": False,
        "stripeStatus": "open",
        "declined": "no_payment_method",
        "actionUrl": None,
    }


def test_the_operators_retry_answers_409_when_stripe_says_a_racing_payment_paid_it(tokens):
    answer = api(tokens, RefusingPayments(InvoiceAlreadyPaid(ALREADY_PAID))).post(
        f"/operator/invoices/{INVOICE_ID}/retry", headers=operator(tokens), json={}
    )

    assert answer.status_code == 409
    body = answer.get_json()
    assert body["error"]["code"] == "conflict" and "paid at Stripe" in body["error"]["message"]


def test_the_operators_retry_without_a_payment_method_answers_the_decline(tokens):
    answer = api(tokens, RefusingPayments(PaymentMethodMissing(NO_METHOD))).post(
        f"/operator/invoices/{INVOICE_ID}/retry", headers=operator(tokens), json={}
    )

    assert answer.status_code == 200
    assert (answer.get_json()["paid"], answer.get_json()["declined"]) == (False, "no_payment_method")
