"""The invoice job against the local stack when Stripe fails the way Stripe fails.

- a 500 after a step took effect, saved under its idempotency key and replayed with
  ``Stripe-Should-Retry: false`` (the key is spent: the job must look and use fresh keys);
- a finalization Stripe refuses (``invoice.finalization_failed``), recorded on the record by both the
  job and the event consumer, then retried.
"""

from __future__ import annotations

import pytest
import requests

from billing_core.errors import StripeFailedAfterExecution
from billing_core.use_cases.invoice_job import InvoiceFinalizationFailed
from local_stack.demo import worker_services
from tests.integration.test_billing_run_resume import job, lines_of, new_account, seed_plan
from tests.support.stripe_events import wait_for


@pytest.fixture
def services(clean_stack):
    return worker_services(clean_stack)


def _knobs(stack, **values) -> None:
    requests.post(f"{stack.info['stripe_api_base']}/_emulator/config", json=values, timeout=5).raise_for_status()


def _requests(stack) -> dict[str, int]:
    response = requests.get(f"{stack.info['stripe_api_base']}/_emulator/requests", timeout=5)
    response.raise_for_status()
    return response.json()["requests"]


@pytest.mark.parametrize(
    "route", ["POST /v1/invoices", "POST /v1/invoices/{id}/add_lines", "POST /v1/invoices/{id}/finalize"]
)
def test_a_500_after_execution_at_any_step_still_ends_in_one_invoice_with_two_lines(clean_stack, services, route):
    stack = clean_stack
    account_id = new_account(stack, services)
    plan = seed_plan(stack, services, account_id)
    steps_before = {
        "POST /v1/invoices": 0,
        "POST /v1/invoices/{id}/add_lines": 1,
        "POST /v1/invoices/{id}/finalize": 2,
    }[route]
    worker = job(services)
    if steps_before:
        # Let the earlier steps through, then fail the chosen one after it took effect.
        def arm(step: str, phase: str) -> None:
            if phase == "saved" and step == ("create-invoice", "add-lines")[steps_before - 1]:
                _knobs(stack, fault_after_execution_next_n=1)

        worker = type(worker)(
            invoices=services.invoices, accounts=services.accounts, payments=services.payments, observe=arm
        )
    else:
        _knobs(stack, fault_after_execution_next_n=1)

    with pytest.raises(StripeFailedAfterExecution):
        worker.run(plan)
    assert services.invoices.get(account_id, plan.invoice_id).stripe.key_generation == 1

    result = job(services).run(plan)

    assert result.status in ("open", "paid")
    customer = services.accounts.get(account_id).stripe_customer_id
    invoices = [i for i in services.payments.list_invoices(customer) if i.status != "void"]
    assert len(invoices) == 1
    assert lines_of(clean_stack, invoices[0].id) == [(plan.base_fee_description, 2000), (plan.aws_description, 1774)]


def test_a_refused_finalization_is_recorded_and_the_retry_finalizes(clean_stack, services):
    stack = clean_stack
    account_id = new_account(stack, services)
    plan = seed_plan(stack, services, account_id)
    _knobs(stack, finalization_failures_next_n=1)

    with pytest.raises(InvoiceFinalizationFailed):
        job(services).run(plan)
    record = services.invoices.get(account_id, plan.invoice_id)
    assert record.status == "draft" and "could not be finalized" in record.stripe.finalization_error

    result = job(services).run(plan)

    assert result.status in ("open", "paid")
    # The stack's worker applies invoice.paid; the finalization error is gone once it finalized.
    paid = wait_for(
        lambda: (r := services.invoices.get(account_id, plan.invoice_id)).status == "paid" and r,
        timeout=60,
        what="the invoice to be paid",
    )
    assert paid.stripe.finalization_error is None


def test_a_normal_invoice_costs_three_stripe_requests_on_the_stack(clean_stack, services):
    stack = clean_stack
    account_id = new_account(stack, services)
    plan = seed_plan(stack, services, account_id)
    before = _requests(stack)

    job(services).run(plan)

    after = _requests(stack)
    sent = {route: after.get(route, 0) - before.get(route, 0) for route in after}
    assert {route: n for route, n in sent.items() if n} == {
        "POST /v1/invoices": 1,
        "POST /v1/invoices/{id}/add_lines": 1,
        "POST /v1/invoices/{id}/finalize": 1,
    }
