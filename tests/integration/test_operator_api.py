"""The operator API on the local stack: only the operator group gets in; every change is validated and audited."""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from billing_core.adapters.dynamodb import DynamoAccountRepository
from billing_core.domain.records import Account
from tests.integration.test_api_billing import seed_invoices
from tests.support.api import bearer, hmac_token, moto_signing_key, sign_in, unsigned_token

ENDPOINTS = [
    ("GET", "/operator/accounts"),
    ("POST", "/operator/accounts"),
    ("GET", "/operator/accounts/kunde-1"),
    ("PATCH", "/operator/accounts/kunde-1"),
    ("POST", "/operator/accounts/kunde-1/disable"),
    ("POST", "/operator/accounts/kunde-1/enable"),
    ("POST", "/operator/accounts/kunde-1/invite"),
    ("GET", "/operator/invoices"),
    ("POST", "/operator/invoices/inv_2026-10_kunde-1/retry"),
    ("POST", "/operator/invoices/inv_2026-10_kunde-1/void"),
    ("GET", "/operator/runs/2026-11"),
    ("GET", "/operator/audit"),
    ("GET", "/operator/mail/undelivered"),
    ("GET", "/operator/documents/inv_2026-10_kunde-1/mail"),
    ("POST", "/operator/documents/inv_2026-10_kunde-1/resend"),
]


@pytest.fixture
def logins(clean_stack):
    def token(login) -> dict[str, str]:
        return bearer(sign_in(clean_stack, login["username"], login["password"])["AccessToken"])

    return {name: token(clean_stack.info[name]) for name in ("operator", "admin", "member")}


def call(stack, method: str, path: str, headers: dict[str, str] | None = None, body=None):
    return requests.request(method, stack.info["api_url"] + path, headers=headers or {}, json=body, timeout=10)


def forged_tokens(stack) -> dict[str, dict[str, str]]:
    """Tokens claiming the operator group that no one may accept: unsigned, HMAC, expired, another issuer."""
    now = int(time.time())
    claims = {
        "sub": "forger",
        "username": "forger",
        "token_use": "access",
        "client_id": stack.info["cognito"]["client_id"],
        "iss": stack.info["cognito"]["issuer"],
        "iat": now,
        "exp": now + 600,
        "cognito:groups": ["operator"],
    }
    kid = requests.get(stack.info["cognito"]["jwks_url"], timeout=10).json()["keys"][0]["kid"]
    signed = {**claims, "exp": now - 600, "iat": now - 1200}
    return {
        "none": bearer(unsigned_token(claims)),
        "hmac": bearer(hmac_token(claims, b"the public key as a secret", kid)),
        "expired": bearer(jwt.encode(signed, moto_signing_key(), algorithm="RS256", headers={"kid": kid})),
        "other issuer": bearer(
            jwt.encode(
                {**claims, "iss": "https://evil.example"}, moto_signing_key(), algorithm="RS256", headers={"kid": kid}
            )
        ),
    }


def test_only_the_operator_group_reaches_the_operator_api(clean_stack, logins):
    forged = forged_tokens(clean_stack)
    for method, path in ENDPOINTS:
        assert call(clean_stack, method, path).status_code == 401, (method, path)
        for name, headers in forged.items():
            assert call(clean_stack, method, path, headers).status_code == 401, (method, path, name)
        for who in ("admin", "member"):
            answer = call(clean_stack, method, path, logins[who])
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden", (method, path, who)
        assert call(clean_stack, method, path, logins["operator"]).status_code not in (401, 403), (method, path)
    # And the operator is no admin: the Billing tab's API is not theirs.
    assert call(clean_stack, "GET", "/billing", logins["operator"]).status_code == 403


def test_the_operator_onboards_and_changes_an_account_and_sees_it_all_in_the_audit_log(clean_stack, logins):
    operator = logins["operator"]
    body = {
        "id": "kunde-1",
        "name": "Beispiel GmbH",
        "email": "billing@beispiel.de",
        "baseFee": "25.00",
        "language": "de",
        "country": "DE",
        "address": {"line1": "Musterstraße 1", "postalCode": "10115", "city": "Berlin"},
    }

    created = call(clean_stack, "POST", "/operator/accounts", operator, body)
    again = call(clean_stack, "POST", "/operator/accounts", operator, body)

    assert created.status_code == 201 and again.status_code == 201
    assert created.json()["stripeCustomerId"] == again.json()["stripeCustomerId"]
    customer = clean_stack.stripe_client().v1.customers.retrieve(created.json()["stripeCustomerId"])
    assert (customer.name, customer.address.city, customer.preferred_locales) == ("Beispiel GmbH", "Berlin", ["de"])
    for bad, field in [
        ({"baseFee": "25.555"}, "base fee"),
        ({"country": "XX"}, "country"),
        ({"baseFee": 25}, "base fee"),
        ({"colour": "red"}, "colour"),
    ]:
        answer = call(clean_stack, "PATCH", "/operator/accounts/kunde-1", operator, bad)
        assert answer.status_code == 400 and field in answer.json()["error"]["message"], (bad, answer.text)

    changed = call(clean_stack, "PATCH", "/operator/accounts/kunde-1", operator, {"baseFee": "30", "reason": "x"})
    disabled = call(clean_stack, "POST", "/operator/accounts/kunde-1/disable", operator, {"reason": "contract ended"})
    no_reason = call(clean_stack, "POST", "/operator/accounts/kunde-1/enable", operator)
    seed_invoices(clean_stack, "kunde-1", ["2026-10"])
    listing = call(clean_stack, "GET", "/operator/accounts", operator).json()

    assert changed.json()["baseFee"] == "30.00" and disabled.json()["disabled"] is True
    assert no_reason.status_code == 200 and no_reason.json()["disabled"] is False
    (account,) = [a for a in listing["accounts"] if a["accountId"] == "kunde-1"]
    assert account["lastInvoice"]["invoiceId"] == "inv_2026-10_kunde-1"
    invoices = call(clean_stack, "GET", "/operator/invoices?period=2026-10", operator).json()["invoices"]
    assert [i["invoiceId"] for i in invoices] == ["inv_2026-10_kunde-1"]
    assert call(clean_stack, "GET", "/operator/invoices?status=nonsense", operator).status_code == 400
    assert call(clean_stack, "GET", "/operator/accounts/nobody", operator).status_code == 404
    entries = call(clean_stack, "GET", "/operator/audit?account=kunde-1", operator).json()["entries"]
    assert [e["action"] for e in entries] == ["account.enable", "account.disable", "account.update", "account.create"]
    assert {e["actor"] for e in entries} == {"operator:operator"}
    assert entries[2]["before"] == {"base_fee_override": "25.00"}
    assert entries[2]["after"] == {"base_fee_override": "30.00"}


def test_invoice_recipients_are_set_by_the_operator_and_by_the_customers_admin_each_audited(clean_stack, logins):
    operator, admin = logins["operator"], logins["admin"]
    account_id = clean_stack.admin.sub
    assert (
        call(clean_stack, "PUT", "/billing/invoice-emails", admin, {"invoiceEmails": ["a@kunde.de"]}).status_code == 409
    )
    accounts = DynamoAccountRepository(
        clean_stack.aws_client("dynamodb"), clean_stack.info["tables"]["payment_methods"]
    )
    accounts.put(Account(account_id, email=clean_stack.admin.email, undeliverable_emails=("alt@kunde.de",)))

    shown = call(clean_stack, "GET", "/billing", admin).json()
    bad = call(clean_stack, "PUT", "/billing/invoice-emails", admin, {"invoiceEmails": ["kein-mail", "a@kunde.de"]})
    injected = call(
        clean_stack, "PUT", "/billing/invoice-emails", admin, {"invoiceEmails": ["a@kunde.de\r\nBcc: x@y.de"]}
    )
    too_many = call(
        clean_stack, "PUT", "/billing/invoice-emails", admin, {"invoiceEmails": [f"{n}@kunde.de" for n in range(11)]}
    )
    saved = call(
        clean_stack,
        "PUT",
        "/billing/invoice-emails",
        admin,
        {"invoiceEmails": ["Buchhaltung@Kunde.de", "chef@kunde.de"]},
    )

    assert (shown["invoiceEmails"], shown["undeliverableEmails"]) == ([clean_stack.admin.email], ["alt@kunde.de"])
    assert bad.status_code == 400 and "kein-mail" in bad.json()["error"]["message"]
    assert injected.status_code == 400 and too_many.status_code == 400
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"invoiceEmails": ["buchhaltung@kunde.de", "chef@kunde.de"], "undeliverableEmails": []}
    by_operator = call(
        clean_stack, "PATCH", f"/operator/accounts/{account_id}", operator, {"invoiceEmails": ["neu@kunde.de"]}
    )
    assert by_operator.json()["invoiceEmails"] == ["neu@kunde.de"]
    entries = call(clean_stack, "GET", f"/operator/audit?account={account_id}", operator).json()["entries"]
    assert [e["actor"] for e in entries[:2]] == ["operator:operator", f"admin:{clean_stack.admin.sub}"]
    assert entries[1]["after"]["invoice_emails"] == "buchhaltung@kunde.de, chef@kunde.de"


def test_the_operator_reads_a_documents_mail_and_cannot_resend_what_has_no_einvoice(clean_stack, logins):
    operator = logins["operator"]
    seed_invoices(clean_stack, "kunde-7", ["2026-10"])

    mail = call(clean_stack, "GET", "/operator/documents/inv_2026-10_kunde-7/mail", operator)
    resend = call(clean_stack, "POST", "/operator/documents/inv_2026-10_kunde-7/resend", operator, {"to": ["a@b.de"]})
    unknown = call(clean_stack, "GET", "/operator/documents/xyz/mail", operator)
    bad_to = call(clean_stack, "POST", "/operator/documents/inv_2026-10_kunde-7/resend", operator, {"to": "a@b.de"})

    assert mail.status_code == 200 and mail.json()["state"] == "not_sent" and mail.json()["sending"] == 0
    assert resend.status_code in (404, 409), resend.text
    assert unknown.status_code == 404 and bad_to.status_code == 400
    assert call(clean_stack, "GET", "/operator/mail/undelivered", operator).json() == {"documents": []}


def test_an_invite_never_moves_an_admin_out_of_their_own_account_nor_makes_an_operator_an_admin(clean_stack, logins):
    """The stack's admin saved a card (an account keyed by their sub); the operator is in the operator group."""
    operator = logins["operator"]
    admin_sub = clean_stack.admin.sub
    accounts = DynamoAccountRepository(
        clean_stack.aws_client("dynamodb"), clean_stack.info["tables"]["payment_methods"]
    )
    accounts.put(Account(admin_sub, stripe_customer_id="cus_own", email=clean_stack.admin.email))
    body = {"id": "kunde-fremd", "name": "Fremd GmbH", "email": "billing@fremd.de"}
    assert call(clean_stack, "POST", "/operator/accounts", operator, body).status_code == 201

    moved = call(
        clean_stack, "POST", "/operator/accounts/kunde-fremd/invite", operator, {"email": clean_stack.admin.email}
    )
    upper = call(
        clean_stack,
        "POST",
        "/operator/accounts/kunde-fremd/invite",
        operator,
        {"email": clean_stack.admin.email.upper()},
    )
    ops = call(
        clean_stack,
        "POST",
        "/operator/accounts/kunde-fremd/invite",
        operator,
        {"email": clean_stack.operator.email},
    )

    assert (moved.status_code, upper.status_code, ops.status_code) == (409, 409, 409), (moved.text, ops.text)
    assert moved.headers["Content-Type"].startswith("application/json") and "own" in moved.json()["error"]["message"]
    # The admin still acts for their own account: /billing shows it, not the other customer's.
    own = call(clean_stack, "GET", "/billing", logins["admin"])
    assert own.status_code == 200
    cognito = clean_stack.aws_client("cognito-idp")
    groups = cognito.admin_list_groups_for_user(
        UserPoolId=clean_stack.info["cognito"]["user_pool_id"], Username=clean_stack.info["operator"]["username"]
    )["Groups"]
    assert {group["GroupName"] for group in groups} == {"operator"}
