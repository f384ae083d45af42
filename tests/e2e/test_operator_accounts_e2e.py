"""The operator onboards, changes and disables a customer account with `billing accounts` on the local stack."""
from __future__ import annotations

import io
from decimal import Decimal

import pytest

from local_stack.demo import worker_services
from scheduler_worker import cli
from tests.integration.test_billing_run_resume import seed_period


@pytest.fixture
def services(clean_stack):
    return worker_services(clean_stack)


def billing(services, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), services=services, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_an_operator_onboards_changes_and_disables_an_account_and_every_step_is_audited(clean_stack, services):
    code, out, err = billing(services, "accounts", "create", "--id", "kunde-42", "--name", "Beispiel GmbH",
                             "--email", "billing@beispiel.de", "--base-fee", "25.00", "--language", "de",
                             "--country", "DE", "--address", "Musterstraße 1", "--postal-code", "10115",
                             "--city", "Berlin", "--reason", "signed 2026-12-01")
    assert code == 0, err
    account = services.accounts.get("kunde-42")
    customer = clean_stack.stripe_client().v1.customers.retrieve(account.stripe_customer_id)
    assert (customer.name, customer.email, customer.preferred_locales) == (
        "Beispiel GmbH", "billing@beispiel.de", ["de"])
    assert (customer.address.line1, customer.address.postal_code, customer.address.city,
            customer.address.country) == ("Musterstraße 1", "10115", "Berlin", "DE")
    assert customer.metadata["userId"] == "kunde-42" and "Beispiel GmbH" in out

    # The same create again changes nothing: still one customer.
    assert billing(services, "accounts", "create", "--id", "kunde-42", "--name", "Beispiel GmbH", "--email",
                   "billing@beispiel.de", "--base-fee", "25", "--language", "de", "--country", "DE", "--address",
                   "Musterstraße 1", "--postal-code", "10115", "--city", "Berlin")[0] == 0
    assert len(clean_stack.stripe_client().v1.customers.list(params={"email": "billing@beispiel.de"}).data) == 1

    for bad, field in [(["--base-fee", "25.555"], "base fee"), (["--country", "XX"], "country"),
                       (["--language", "fr"], "language"), (["--cost-scope", "123"], "cost scope")]:
        code, _, err = billing(services, "accounts", "update", "kunde-42", *bad)
        assert code == 2 and field in err, (bad, err)

    assert billing(services, "accounts", "update", "kunde-42", "--base-fee", "30", "--name", "Beispiel AG",
                   "--reason", "new contract")[0] == 0
    assert services.accounts.get("kunde-42").base_fee_override == Decimal("30.00")
    assert clean_stack.stripe_client().v1.customers.retrieve(account.stripe_customer_id).name == "Beispiel AG"

    with pytest.raises(SystemExit) as usage:  # a reason is required
        billing(services, "accounts", "disable", "kunde-42")
    assert usage.value.code == 2 and services.accounts.get("kunde-42").disabled_at is None
    assert billing(services, "accounts", "disable", "kunde-42", "--reason", "contract ended")[0] == 0
    code, out, err = billing(services, "run", "--period", seed_period(clean_stack).label, "--dry-run")
    assert "kunde-42" not in out and "disabled by the operator" in err

    code, listing, _ = billing(services, "accounts", "list")
    assert code == 0 and "kunde-42" in listing and "disabled since" in listing
    code, log, _ = billing(services, "audit", "--account", "kunde-42")
    lines = log.splitlines()[2:]
    assert [line.split()[3] for line in lines] == ["account.disable", "account.update", "account.create"]
    assert "'30.00'" in lines[1] and "'25.00'" in lines[1] and "new contract" in lines[1]
    assert "contract ended" in lines[0] and lines[0].split()[2].startswith("cli:")


def test_a_failed_payment_is_retried_by_the_operator_after_the_customer_saved_a_working_card(clean_stack, services):
    from billing_core.domain.invoice_plan import invoice_id_for
    from tests.e2e.test_billing_run import billing_run, record_with, status_is
    from tests.integration.test_billing_run_resume import new_account

    account_id = new_account(clean_stack, services, card="pm_card_chargeCustomerFail")
    period = seed_period(clean_stack)
    assert billing_run(services, period)[0] == 0
    failed = record_with(services, account_id, period, status_is("payment_failed"))
    invoice_id = invoice_id_for(period, account_id)
    code, listing, _ = billing(services, "invoices", "list", "--status", "payment_failed")
    assert code == 0 and invoice_id in listing

    # Retried with the failing card still on file: declined again, nothing charged, and said so.
    code, out, _ = billing(services, "invoices", "retry", invoice_id, "--reason", "customer asked")
    assert code == 1 and "declined" in out

    # The customer saves a working card (as the Billing tab would); the operator retries.
    client = clean_stack.stripe_client()
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": failed.stripe_customer_id})
    client.v1.customers.update(failed.stripe_customer_id,
                               params={"invoice_settings": {"default_payment_method": card.id}})
    code, out, err = billing(services, "invoices", "retry", invoice_id, "--reason", "new card")

    assert code == 0 and "paid" in out, (out, err)
    paid = record_with(services, account_id, period, status_is("paid"))
    assert paid.amount == Decimal("37.74")
    assert client.v1.invoices.retrieve(paid.stripe_invoice_id).status == "paid"
    code, log, _ = billing(services, "audit", "--account", account_id)
    assert [line.split()[3] for line in log.splitlines()[2:]] == ["invoice.retry", "invoice.retry"]
    # A paid invoice is not paid again.
    code, _, err = billing(services, "invoices", "retry", invoice_id)
    assert code == 1 and "paid" in err


def test_a_retry_that_needs_the_customers_authentication_prints_the_hosted_invoice_page(clean_stack, services):
    from billing_core.domain.invoice_plan import invoice_id_for
    from tests.e2e.test_billing_run import billing_run, record_with
    from tests.integration.test_billing_run_resume import new_account

    account_id = new_account(clean_stack, services, card="pm_card_authenticationRequired")
    period = seed_period(clean_stack)
    assert billing_run(services, period)[0] == 0
    record = record_with(services, account_id, period, lambda r: r.status == "action_required" and r.hosted_invoice_url)

    code, out, _ = billing(services, "invoices", "retry", invoice_id_for(period, account_id))

    assert code == 1 and "authenticate" in out and record.hosted_invoice_url in out
    code, out, err = billing(services, "invoices", "void", invoice_id_for(period, account_id), "--reason", "test")
    assert code == 0, err
    assert clean_stack.stripe_client().v1.invoices.retrieve(record.stripe_invoice_id).status == "void"
    assert services.invoices.get(account_id, invoice_id_for(period, account_id)).status == "void"
