"""Corrections on the local stack: cancel + reissue, and an invoice below Stripe's minimum charge."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from billing_core.bootstrap import WorkerUseCases, policy_from_settings
from billing_core.domain.account_profile import PostalAddress
from billing_core.domain.costs import CostReport, Period
from billing_core.domain.invoice_plan import invoice_id_for, plan_invoice
from billing_core.use_cases.einvoices import StoredEInvoices
from local_stack.demo import wait_for
from tests.e2e.test_billing_run import SETTLE_SECONDS, billing_run, record_with, status_is
from tests.e2e.test_operator_accounts_e2e import billing
from tests.integration.test_billing_run_resume import new_account, seed_period
from tests.support.xrechnung import assert_valid_xrechnung


def german(services, account_id: str, **changes) -> None:
    account = services.accounts.get(account_id)
    address = PostalAddress("Musterstraße 1", "10115", "Berlin")
    services.accounts.put(dataclasses.replace(account, country="DE", name="Muster GmbH", address=address, **changes))


def test_a_cancelled_invoice_is_reissued_once_with_the_corrected_base_fee(clean_stack, services):
    account_id = new_account(clean_stack, services)
    german(services, account_id)
    period = seed_period(clean_stack)
    assert billing_run(services, period)[0] == 0
    first = record_with(services, account_id, period, status_is("paid"))
    assert first.amount == Decimal("44.91")

    code, out, err = billing(
        services, "invoices", "cancel", first.invoice_id, "--reason", "Grundgebühr falsch", "--yes"
    )
    assert code == 0, err
    assert billing(services, "accounts", "update", account_id, "--base-fee", "25.00", "--reason", "Vertrag")[0] == 0
    code, out, err = billing(services, "invoices", "reissue", first.invoice_id, "--yes")
    assert code == 0, err

    reissue_id = invoice_id_for(period, account_id, 2)
    assert reissue_id in out

    def paid_reissue():
        record = services.invoices.get(account_id, reissue_id)
        return record if record and record.status == "paid" else None

    reissue = wait_for(paid_reissue, SETTLE_SECONDS)
    assert reissue is not None, services.invoices.get(account_id, reissue_id)
    assert (reissue.base_fee, reissue.aws_costs, reissue.amount) == (
        Decimal("25.00"),
        Decimal("17.74"),
        Decimal("50.86"),
    )
    client = clean_stack.stripe_client()
    stripe_reissue = client.v1.invoices.retrieve(reissue.stripe.invoice_id)
    assert (stripe_reissue.amount_paid, stripe_reissue.number) == (5086, reissue.stripe.number)
    assert reissue.stripe.number != first.stripe.number
    cancelled = services.invoices.get(account_id, first.invoice_id)
    assert cancelled.correction == "cancelled"
    code, shown, _ = billing(services, "invoices", "show", first.invoice_id)
    assert code == 0 and "correction" in shown and "cancelled" in shown
    assert client.v1.invoices.retrieve(first.stripe.invoice_id).post_payment_credit_notes_amount == 4491
    assert_valid_xrechnung(StoredEInvoices(services.documents).file(reissue, "xrechnung").body)

    # Once: a second reissue of the same invoice bills nothing more.
    code, out, err = billing(services, "invoices", "reissue", first.invoice_id, "--yes")
    assert code == 0 and reissue_id in out, err
    ours = [i for i in client.v1.invoices.list(params={"customer": first.stripe.customer_id}).data]
    assert len(ours) == 2


def test_an_invoice_of_0_30_eur_is_not_charged_and_the_next_invoice_collects_it(clean_stack, services):
    account_id = new_account(clean_stack, services)
    german(services, account_id, base_fee_override=Decimal("0.25"))
    use_cases = WorkerUseCases(services)
    policy = policy_from_settings(services.settings)
    period = seed_period(clean_stack)

    def bill(month: Period, base_fee: str):
        german(services, account_id, base_fee_override=Decimal(base_fee))
        no_costs = CostReport(month.start, month.end, policy.currency, False, ())
        plan = plan_invoice(month, no_costs, services.accounts.get(account_id), policy)
        use_cases.invoice_job().run(plan)
        return record_with(services, account_id, month, status_is("paid"))

    small = bill(period, "0.25")  # 0.25 net + 0.05 VAT

    client = clean_stack.stripe_client()
    stripe_small = client.v1.invoices.retrieve(small.stripe.invoice_id)
    assert (small.amount, small.payment.carried_to_balance, small.amount_due) == (
        Decimal("0.30"),
        Decimal("0.30"),
        Decimal(0),
    )
    assert (stripe_small.status, stripe_small.amount_paid, stripe_small.ending_balance) == ("paid", 0, 30)
    assert client.v1.customers.retrieve(small.stripe.customer_id).balance == 30
    code, shown, _ = billing(services, "invoices", "show", small.invoice_id)
    assert code == 0 and "0.30 EUR (below the minimum charge)" in shown
    small_xml = StoredEInvoices(services.documents).file(small, "xrechnung").body
    assert b"Mindestbetrag" in small_xml
    assert_valid_xrechnung(small_xml)

    following = bill(period.shifted(1), "20.00")  # 23.80 and the 0.30 carried

    stripe_following = client.v1.invoices.retrieve(following.stripe.invoice_id)
    assert following.payment.balance_applied == Decimal("0.30")
    assert (stripe_following.starting_balance, stripe_following.amount_paid) == (30, 2410)
    assert following.amount_due == Decimal("24.10")
    assert client.v1.customers.retrieve(small.stripe.customer_id).balance == 0
    following_xml = StoredEInvoices(services.documents).file(following, "xrechnung").body
    assert b"24,10 EUR" in following_xml
    assert_valid_xrechnung(following_xml)
