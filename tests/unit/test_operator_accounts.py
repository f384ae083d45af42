"""The operator's accounts: every field validated, one Stripe customer per account, every change audited."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from billing_core.domain.account_profile import (
    InvalidAccountField,
    PostalAddress,
    valid_base_fee_amount,
    valid_cost_scope,
    valid_country,
    valid_email,
    valid_language,
)
from billing_core.domain.costs import CostAttribution, Period
from billing_core.domain.invoice_plan import BillingPolicy
from billing_core.domain.records import Account
from billing_core.use_cases.billing_run import BillingRun
from billing_core.use_cases.operator_accounts import AccountExists, AccountProfile, OperatorAccounts
from tests.support.fakes import (
    FakeAccountRepository,
    FakeAuditLog,
    FakeCostSource,
    FakeLeases,
    FakePaymentGateway,
    FakeQueue,
    FakeRunRecords,
)

PROFILE = AccountProfile(
    name="Beispiel GmbH",
    email="billing@beispiel.de",
    base_fee_override=Decimal("25.00"),
    language="de",
    country="DE",
    address=PostalAddress("Musterstraße 1", "10115", "Berlin"),
)


@pytest.mark.parametrize(
    "text, expected", [("25", Decimal("25.00")), ("25.5", Decimal("25.50")), (" 0.01 ", Decimal("0.01"))]
)
def test_a_base_fee_is_a_positive_amount_with_at_most_two_places(text, expected):
    assert valid_base_fee_amount(text) == expected


@pytest.mark.parametrize("text", ["0", "-5", "25.555", "abc", "NaN", "Infinity", ""])
def test_a_base_fee_that_is_not_positive_cents_is_refused_naming_the_field(text):
    with pytest.raises(InvalidAccountField, match="base fee"):
        valid_base_fee_amount(text)


def test_a_cost_scope_is_checked_against_how_costs_are_grouped():
    assert valid_cost_scope("123456789012", CostAttribution.by_account()) == "123456789012"
    assert valid_cost_scope("team-a", CostAttribution.by_tag("customer")) == "team-a"
    for scope, attribution in [
        ("12345678901", CostAttribution.by_account()),
        ("team-a", CostAttribution.by_account()),
        ("a|b", CostAttribution.by_tag("x")),
        ("x" * 257, CostAttribution.by_tag("x")),
        ("123456789012", CostAttribution.payer()),
    ]:
        with pytest.raises(InvalidAccountField, match="cost scope"):
            valid_cost_scope(scope, attribution)


def test_language_country_and_email_are_validated():
    assert (valid_language("DE"), valid_country("at")) == ("de", "AT")
    assert valid_email("Ops@Example.COM") == "Ops@example.com"
    for check, value in [
        (valid_language, "fr"),
        (valid_country, "XX"),
        (valid_country, "DEU"),
        (valid_email, "no-at-sign"),
        (valid_email, "a@b"),
    ]:
        with pytest.raises(InvalidAccountField):
            check(value)


def world():
    accounts, payments, audit = FakeAccountRepository(), FakePaymentGateway(), FakeAuditLog()
    ids = iter(f"acct_{n}" for n in range(100))
    seconds = itertools.count(1_700_000_000)  # a second passes between actions
    return (
        accounts,
        payments,
        audit,
        OperatorAccounts(
            accounts,
            payments,
            audit,
            attribution=CostAttribution.by_account(),
            new_id=lambda: next(ids),
            clock=lambda: next(seconds),
        ),
    )


def test_creating_an_account_creates_its_stripe_customer_once_and_audits_it():
    accounts, payments, audit, operator = world()

    account = operator.create(PROFILE, actor="cli:ops@host", account_id="kunde-42")
    again = operator.create(PROFILE, actor="cli:ops@host", account_id="kunde-42")

    assert again == account and len(payments.customers) == 1
    customer = payments.customers[account.stripe_customer_id]
    assert (customer["name"], customer["email"], customer["preferred_locales"]) == (
        "Beispiel GmbH",
        "billing@beispiel.de",
        ["de"],
    )
    assert customer["address"] == {"line1": "Musterstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}
    assert (account.base_fee_override, account.country, account.language) == (Decimal("25.00"), "DE", "de")
    (entry,) = audit.entries(account_id="kunde-42")
    assert (entry.action, entry.actor, entry.after["base_fee_override"]) == ("account.create", "cli:ops@host", "25.00")
    with pytest.raises(AccountExists):
        operator.create(
            AccountProfile(name="Other AG", email="x@other.de"), actor="cli:ops@host", account_id="kunde-42"
        )


def test_an_account_needs_a_name_and_an_email_and_a_scope_that_fits_the_grouping():
    _, payments, _, operator = world()
    with pytest.raises(InvalidAccountField, match="email"):
        operator.create(AccountProfile(name="X"), actor="a")
    with pytest.raises(InvalidAccountField, match="cost scope"):
        operator.create(AccountProfile(name="X", email="x@x.de", cost_scope="team-a"), actor="a")
    assert payments.customers == {}


def test_an_update_changes_stripe_and_the_account_and_logs_the_values_before_and_after():
    accounts, payments, audit, operator = world()
    account = operator.create(PROFILE, actor="a", account_id="kunde-42")

    updated = operator.update(
        "kunde-42",
        AccountProfile(base_fee_override=Decimal("30.00"), name="Beispiel AG"),
        actor="cli:ops@host",
        reason="new contract",
    )
    unchanged = operator.update("kunde-42", AccountProfile(name="Beispiel AG"), actor="cli:ops@host")

    assert (updated.base_fee_override, updated.name) == (Decimal("30.00"), "Beispiel AG") and unchanged == updated
    assert payments.customers[account.stripe_customer_id]["name"] == "Beispiel AG"
    latest = audit.entries(account_id="kunde-42")[0]
    assert (latest.before, latest.after, latest.reason) == (
        {"base_fee_override": "25.00", "name": "Beispiel GmbH"},
        {"base_fee_override": "30.00", "name": "Beispiel AG"},
        "new contract",
    )
    assert len(audit.entries()) == 2  # create and one update: an update that changes nothing is not logged


def test_a_disabled_account_is_not_billed_and_comes_back_when_enabled():
    accounts, payments, audit, operator = world()
    operator.create(
        PROFILE.__class__(**{**PROFILE.given(), "cost_scope": "222222222222"}), actor="a", account_id="kunde-42"
    )
    accounts.put(Account("other", cost_scope="111111111111"))
    with pytest.raises(InvalidAccountField, match="reason"):
        operator.disable("kunde-42", actor="a", reason=" ")
    operator.disable("kunde-42", actor="a", reason="contract ended")
    run = BillingRun(
        accounts=accounts,
        costs=FakeCostSource(()),
        leases=FakeLeases(),
        runs=FakeRunRecords(),
        billing_jobs=FakeQueue(),
        policy=BillingPolicy(currency="USD"),
        attribution=CostAttribution.by_account(),
    )

    planned = run.plan(Period(2024, 11))

    assert [p.account_id for p in planned.plans] == ["other"]
    assert [(s.account_id, s.reason) for s in planned.skipped] == [("kunde-42", "disabled by the operator")]
    operator.enable("kunde-42", actor="a")
    assert sorted(p.account_id for p in run.plan(Period(2024, 11)).plans) == ["kunde-42", "other"]
    assert [e.action for e in audit.entries(account_id="kunde-42")] == [
        "account.enable",
        "account.disable",
        "account.create",
    ]


def test_a_customers_vat_id_is_checked_and_becomes_the_stripe_customers_tax_id():
    from billing_core.domain.account_profile import valid_customer_vat_id

    accounts, payments, audit, operator = world()
    with pytest.raises(InvalidAccountField, match="VAT id"):
        valid_customer_vat_id("ATU1234567")  # wrong length and check digit
    vat_id = valid_customer_vat_id("ATU 13585627")

    account = operator.create(
        AccountProfile(name="Wiener Hosting GmbH", email="x@wien.at", country="AT", vat_id=vat_id),
        actor="a",
        account_id="kunde-at",
    )

    assert account.vat_id == "ATU13585627"
    assert payments.customers[account.stripe_customer_id]["tax_ids"] == [{"type": "eu_vat", "value": "ATU13585627"}]
    with pytest.raises(InvalidAccountField, match="not supported"):
        operator.update("kunde-at", AccountProfile(vat_id=valid_customer_vat_id("DE136695976")), actor="a")


def test_invoice_e_mails_are_checked_kept_once_and_audited():
    from billing_core.domain.account_profile import InvalidAccountField

    accounts, payments, audit, operator = world()
    operator.create(PROFILE, actor="a", account_id="kunde-42")
    assert accounts.get("kunde-42").invoice_recipients == ("billing@beispiel.de",)

    profile = AccountProfile.from_text(
        invoice_emails=["buchhaltung@beispiel.de", "Buchhaltung@Beispiel.de", "cfo@beispiel.de"]
    )
    updated = operator.update("kunde-42", profile, actor="cli:ops@host")

    assert updated.invoice_recipients == ("buchhaltung@beispiel.de", "cfo@beispiel.de")
    assert audit.entries(account_id="kunde-42")[0].after == {
        "invoice_emails": "buchhaltung@beispiel.de, cfo@beispiel.de"
    }
    with pytest.raises(InvalidAccountField, match="invoice e-mail"):
        AccountProfile.from_text(invoice_emails=["buchhaltung@beispiel.de\r\nBcc: x@evil.de"])
