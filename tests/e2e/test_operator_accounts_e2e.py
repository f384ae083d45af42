"""The operator onboards, changes and disables a customer account with `billing accounts` on the local stack."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from billing_cli import cli
from billing_core.bootstrap import WorkerUseCases
from tests.integration.test_billing_run_resume import seed_period


def billing(services, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), use_cases=WorkerUseCases(services), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_an_operator_onboards_changes_and_disables_an_account_and_every_step_is_audited(clean_stack, services):
    code, out, err = billing(
        services,
        "accounts",
        "create",
        "--id",
        "kunde-42",
        "--name",
        "Beispiel GmbH",
        "--email",
        "billing@beispiel.de",
        "--base-fee",
        "25.00",
        "--language",
        "de",
        "--country",
        "DE",
        "--address",
        "Musterstraße 1",
        "--postal-code",
        "10115",
        "--city",
        "Berlin",
        "--vat-id",
        "DE 136 695 976",
        "--reason",
        "signed 2026-12-01",
    )
    assert code == 0, err
    account = services.accounts.get("kunde-42")
    assert account.vat_id == "DE136695976"
    customer = clean_stack.stripe_client().v1.customers.retrieve(account.stripe_customer_id)
    assert (customer.name, customer.email, customer.preferred_locales) == (
        "Beispiel GmbH",
        "billing@beispiel.de",
        ["de"],
    )
    assert (customer.address.line1, customer.address.postal_code, customer.address.city, customer.address.country) == (
        "Musterstraße 1",
        "10115",
        "Berlin",
        "DE",
    )
    assert customer.metadata["userId"] == "kunde-42" and "Beispiel GmbH" in out

    # The same create again changes nothing: still one customer.
    assert (
        billing(
            services,
            "accounts",
            "create",
            "--id",
            "kunde-42",
            "--name",
            "Beispiel GmbH",
            "--email",
            "billing@beispiel.de",
            "--base-fee",
            "25",
            "--language",
            "de",
            "--country",
            "DE",
            "--address",
            "Musterstraße 1",
            "--postal-code",
            "10115",
            "--city",
            "Berlin",
        )[0]
        == 0
    )
    assert len(clean_stack.stripe_client().v1.customers.list(params={"email": "billing@beispiel.de"}).data) == 1

    for bad, field in [
        (["--base-fee", "25.555"], "base fee"),
        (["--country", "XX"], "country"),
        (["--vat-id", "DE136695970"], "VAT id"),
        (["--language", "fr"], "language"),
        (["--cost-scope", "123"], "cost scope"),
    ]:
        code, _, err = billing(services, "accounts", "update", "kunde-42", *bad)
        assert code == 2 and field in err, (bad, err)

    assert (
        billing(
            services,
            "accounts",
            "update",
            "kunde-42",
            "--base-fee",
            "30",
            "--name",
            "Beispiel AG",
            "--reason",
            "new contract",
        )[0]
        == 0
    )
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
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": failed.stripe.customer_id})
    client.v1.customers.update(
        failed.stripe.customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    code, out, err = billing(services, "invoices", "retry", invoice_id, "--reason", "new card")

    assert code == 0 and "paid" in out, (out, err)
    paid = record_with(services, account_id, period, status_is("paid"))
    assert paid.net == Decimal("37.74") and paid.amount == Decimal("44.91")
    assert client.v1.invoices.retrieve(paid.stripe.invoice_id).status == "paid"
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
    record = record_with(
        services, account_id, period, lambda r: r.status == "action_required" and r.stripe.hosted_invoice_url
    )

    code, out, _ = billing(services, "invoices", "retry", invoice_id_for(period, account_id))

    assert code == 1 and "authenticate" in out and record.stripe.hosted_invoice_url in out
    code, out, err = billing(services, "invoices", "void", invoice_id_for(period, account_id), "--reason", "test")
    assert code == 0, err
    assert clean_stack.stripe_client().v1.invoices.retrieve(record.stripe.invoice_id).status == "void"
    assert services.invoices.get(account_id, invoice_id_for(period, account_id)).status == "void"


def _first_sign_in(stack, username: str, temporary_password: str) -> str:
    """Sign in with the temporary password, set a new one (Cognito's NEW_PASSWORD_REQUIRED), return the token."""
    from local_stack.provision import random_password

    cognito = stack.aws_client("cognito-idp")
    client_id = stack.info["cognito"]["client_id"]
    started = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": temporary_password},
    )
    assert started["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    done = cognito.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=started["Session"],
        ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": random_password()},
    )
    return done["AuthenticationResult"]["AccessToken"]


def test_two_invited_admins_act_for_the_one_account_the_operator_created(clean_stack, services):
    import re

    import requests

    from tests.integration.test_api_billing import seed_invoices

    assert (
        billing(
            services,
            "accounts",
            "create",
            "--id",
            "kunde-77",
            "--name",
            "Zwei Admins GmbH",
            "--email",
            "billing@zwei.de",
        )[0]
        == 0
    )
    tokens = []
    for email in ("anna@zwei.de", "ben@zwei.de"):
        code, out, err = billing(services, "accounts", "invite", "kunde-77", "--email", email)
        assert code == 0, err
        password = re.search(r"temporary password .*: (\S+)$", out, re.MULTILINE).group(1)
        tokens.append(_first_sign_in(clean_stack, email, password))
    seed_invoices(clean_stack, "kunde-77", ["2026-03"])
    api = clean_stack.info["api_url"]

    seen = [requests.get(f"{api}/billing", headers={"Authorization": f"Bearer {t}"}, timeout=10).json() for t in tokens]
    intents = [
        requests.post(f"{api}/billing/setup-intent", headers={"Authorization": f"Bearer {t}"}, timeout=10)
        for t in tokens
    ]

    assert [[i["invoiceId"] for i in page["invoices"]] for page in seen] == [["inv_2026-03_kunde-77"]] * 2
    assert all(intent.status_code == 200 for intent in intents)
    customer = services.accounts.get("kunde-77").stripe_customer_id
    assert {
        i.customer for i in clean_stack.stripe_client().v1.setup_intents.list(params={"customer": customer}).data
    } == {customer}
    assert len(clean_stack.stripe_client().v1.setup_intents.list(params={"customer": customer}).data) == 2
    # Inviting the same person again changes nothing; into another account is refused.
    assert billing(services, "accounts", "invite", "kunde-77", "--email", "anna@zwei.de")[0] == 0
    assert (
        billing(services, "accounts", "create", "--id", "kunde-78", "--name", "Andere AG", "--email", "x@andere.de")[0]
        == 0
    )
    code, _, err = billing(services, "accounts", "invite", "kunde-78", "--email", "anna@zwei.de")
    assert code == 1 and "kunde-77" in err
    code, log, _ = billing(services, "audit", "--account", "kunde-77")
    assert log.count("account.invite") == 2 and "Temporary" not in log


def test_saving_a_new_payment_method_pays_the_failed_invoice_again_by_itself(clean_stack, services):
    from billing_core.domain.invoice_plan import invoice_id_for
    from tests.e2e.test_billing_run import billing_run, record_with, status_is
    from tests.integration.test_billing_run_resume import new_account

    account_id = new_account(clean_stack, services, card="pm_card_chargeCustomerFail")
    period = seed_period(clean_stack)
    assert billing_run(services, period)[0] == 0
    failed = record_with(services, account_id, period, status_is("payment_failed"))

    # The customer saves a working card (a SetupIntent confirmed, as the Billing tab's Payment Element does).
    client = clean_stack.stripe_client()
    intent = client.v1.setup_intents.create(
        params={
            "customer": failed.stripe.customer_id,
            "usage": "off_session",
            "metadata": {"userId": account_id},
            "allowed_payment_method_types": ["card"],
        }
    )
    client.v1.setup_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})

    paid = record_with(services, account_id, period, status_is("paid"))
    assert paid.stripe.invoice_id == failed.stripe.invoice_id  # the same invoice, paid once
    stripe_invoice = client.v1.invoices.retrieve(paid.stripe.invoice_id)
    assert stripe_invoice.status == "paid" and stripe_invoice.amount_paid == 4491
    assert services.invoices.get(account_id, invoice_id_for(period, account_id)).status == "paid"


def test_an_austrian_business_gets_reverse_charge_no_tax_the_legend_and_a_valid_ae_einvoice(clean_stack, services):
    from billing_core.use_cases.einvoices import StoredEInvoices
    from tests.e2e.test_billing_run import billing_run, record_with, status_is
    from tests.integration.test_billing_run_resume import new_account
    from tests.support.xrechnung import assert_valid_xrechnung

    account_id = new_account(clean_stack, services)
    assert (
        billing(
            services,
            "accounts",
            "update",
            account_id,
            "--name",
            "Wiener Kunde GmbH",
            "--country",
            "AT",
            "--vat-id",
            "ATU13585627",
            "--address",
            "Ringstraße 3",
            "--postal-code",
            "1010",
            "--city",
            "Wien",
        )[0]
        == 0
    )
    period = seed_period(clean_stack)
    assert billing_run(services, period)[0] == 0

    record = record_with(services, account_id, period, status_is("paid"))
    assert (record.vat.category, record.tax, record.amount) == ("AE", Decimal(0), Decimal("37.74"))
    stripe_invoice = clean_stack.stripe_client().v1.invoices.retrieve(record.stripe.invoice_id)
    assert stripe_invoice.footer == "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge)"
    assert stripe_invoice.total == 3774 and not stripe_invoice.total_taxes
    customer = clean_stack.stripe_client().v1.customers.retrieve(record.stripe.customer_id)
    assert customer.tax_exempt == "reverse"
    xml = StoredEInvoices(services.documents).file(record, "xrechnung").body
    assert b"<ram:CategoryCode>AE</ram:CategoryCode>" in xml and b"ATU13585627" in xml
    assert_valid_xrechnung(xml)

    # Its e-invoice went out, so it is corrected by a credit note, never voided: part of the base fee back.
    invoice_id = record.invoice_id
    code, _, err = billing(services, "invoices", "void", invoice_id, "--reason", "test")
    assert code == 1 and "paid" in err
    code, out, err = billing(
        services,
        "invoices",
        "credit",
        invoice_id,
        "--line",
        "base-fee",
        "--amount",
        "5.00",
        "--reason",
        "Kulanz",
        "--yes",
    )
    assert code == 0, err
    [stripe_note] = clean_stack.stripe_client().v1.credit_notes.list(params={"invoice": record.stripe.invoice_id}).data
    assert (stripe_note.total, stripe_note.post_payment_amount, stripe_note.out_of_band_amount) == (500, 500, None)
    assert sum(refund.amount_refunded for refund in stripe_note.refunds) == 500
    assert services.invoices.get(account_id, invoice_id).payment.credited == Decimal("5.00")
    [note] = WorkerUseCases(services).credit_notes.notes_of(invoice_id)
    assert note.number == stripe_note.number and note.settlement.value == "refund"
    credit_xml = StoredEInvoices(services.documents).credit_note_file(note, "xrechnung").body
    assert b"<ram:TypeCode>381</ram:TypeCode>" in credit_xml and record.stripe.number.encode() in credit_xml
    assert b"<ram:CategoryCode>AE</ram:CategoryCode>" in credit_xml
    assert_valid_xrechnung(credit_xml)
