"""``billing reconcile --since DATE``: records whose webhooks never arrived are repaired,
and a rerun changes nothing."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime

from billing_cli.cli import main
from billing_core.adapters.dynamodb import DynamoAccountRepository, DynamoInvoiceRepository
from billing_core.bootstrap import WorkerUseCases
from local_stack.demo import worker_services
from tests.support.stripe_events import (
    account_item,
    aws_client,
    billing_record,
    customer_with_card,
    draft_invoice,
    stack_endpoint_disabled,
    wait_for,
)

INVOICES = 5


def test_reconcile_repairs_records_left_behind_and_a_second_run_changes_nothing(clean_stack):
    stack, client = clean_stack, clean_stack.stripe_client()
    dynamodb = aws_client(stack, "dynamodb")
    invoices = DynamoInvoiceRepository(dynamodb, stack.info["tables"]["billing"])
    accounts = DynamoAccountRepository(dynamodb, stack.info["tables"]["payment_methods"])
    keys = []
    with stack_endpoint_disabled(stack):  # Stripe's events for these invoices are never delivered
        for n in range(INVOICES):
            account_id = f"user-{n}-{uuid.uuid4().hex[:6]}"
            invoice_id = f"inv_2024-11_{account_id}"
            customer = customer_with_card(client, account_id)
            accounts.put(account_item(account_id, customer.id))
            draft = draft_invoice(client, customer.id, account_id, invoice_id)
            invoices.create_if_absent(billing_record(account_id, invoice_id, draft.id))
            client.v1.invoices.finalize_invoice(draft.id)
            keys.append((account_id, invoice_id, draft.id))
        wait_for(
            lambda: all(client.v1.invoices.retrieve(k[2]).status == "paid" for k in keys),
            timeout=20,
            what="Stripe to charge every invoice",
        )
    assert {invoices.get(u, i).status for u, i, _ in keys} == {"draft"}
    today = datetime.now(UTC).date().isoformat()
    services = worker_services(stack)

    out = io.StringIO()
    assert main(["reconcile", "--since", today], use_cases=WorkerUseCases(services), out=out) == 0

    summary = json.loads(out.getvalue())
    assert summary["repaired"] >= INVOICES
    repaired = {k: invoices.get(k[0], k[1]) for k in keys}
    for (account_id, _invoice_id, stripe_id), record in repaired.items():
        paid = client.v1.invoices.retrieve(stripe_id)
        assert record.status == "paid"
        assert record.stripe.number == paid.number
        assert record.payment.paid_at == paid.status_transitions.paid_at * 1000
        assert record.stripe.invoice_pdf == paid.invoice_pdf
        assert (
            accounts.get(account_id).payment_method.id
            == client.v1.customers.retrieve(paid.customer).invoice_settings.default_payment_method
        )

    again = io.StringIO()
    assert main(["reconcile", "--since", today], use_cases=WorkerUseCases(services), out=again) == 0

    assert json.loads(again.getvalue())["repaired"] == 0
    assert {k: invoices.get(k[0], k[1]) for k in keys} == repaired


def test_reconcile_rejects_a_malformed_date(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["reconcile", "--since", "last tuesday"])
    assert exit_info.value.code == 2
    assert "must be a date" in capsys.readouterr().err
