"""The invoice job and the run against the local stack (moto DynamoDB/SQS, the Stripe emulator, the SDK).

Jobs run in this process, so a crash can be injected at an exact point; the stack's own worker is
not involved (nothing here enqueues, except the scheduler-replica test, whose jobs it processes).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests

from billing_core.bootstrap import WorkerUseCases, policy_from_settings
from billing_core.domain.costs import Period
from billing_core.domain.invoice_plan import invoice_id_for, plan_invoice
from billing_core.domain.records import Account, SavedPaymentMethod
from billing_core.use_cases.invoice_job import STEPS, InvoiceJob
from local_stack.demo import worker_services
from scheduler_worker.schedule import trigger_billing_run
from tests.support.stripe_events import wait_for


class Crash(Exception):
    """Stands in for the worker process dying at a chosen point."""


def crash_at(step: str, phase: str):
    def observe(seen_step: str, seen_phase: str) -> None:
        if (seen_step, seen_phase) == (step, phase):
            raise Crash(f"{step}/{phase}")

    return observe


def stripe_objects(stack) -> dict[str, int]:
    """Live objects per type in the stack's Stripe emulator."""
    response = requests.get(f"{stack.info['stripe_api_base']}/_emulator/objects", timeout=5)
    response.raise_for_status()
    return response.json()


def new_account(stack, services, *, card: str | None = "pm_card_visa", customer: bool = True) -> str:
    """An account item (and, unless ``customer=False``, its Stripe customer with ``card`` as default)."""
    account_id = f"user-{uuid.uuid4().hex[:10]}"
    account = Account(account_id, email=f"{account_id}@example.com")
    if customer:
        client = stack.stripe_client()
        created = client.v1.customers.create(params={"email": account.email, "metadata": {"userId": account_id}})
        account = dataclasses.replace(account, stripe_customer_id=created.id)
        if card:
            method = client.v1.payment_methods.attach(card, params={"customer": created.id})
            client.v1.customers.update(created.id, params={"invoice_settings": {"default_payment_method": method.id}})
            account = dataclasses.replace(account, payment_method=SavedPaymentMethod(method.id, "card"))
    services.accounts.put(account)
    return account_id


def seed_period(stack) -> Period:
    """The month the local Cost Explorer answers with the seed example."""
    return Period.containing(stack.seeded_costs.previous_month.start)


def seed_plan(stack, services, account_id):
    period = seed_period(stack)
    return plan_invoice(
        period,
        stack.seeded_costs.previous_month,
        Account(account_id),
        # The rate every process bills the seed month at: the one the stack pinned for it.
        dataclasses.replace(policy_from_settings(services.settings), fx=stack.pin_rate(period).fx),
    )


@pytest.fixture
def services(clean_stack):
    return worker_services(clean_stack)


def job(services, observe=None) -> InvoiceJob:
    return InvoiceJob(
        invoices=services.invoices, accounts=services.accounts, payments=services.payments, observe=observe
    )


def lines_of(stack, stripe_invoice_id):
    """The invoice's lines as Stripe holds them (read with the SDK: the gateway only has what use cases need)."""
    invoice = stack.stripe_client().v1.invoices.retrieve(stripe_invoice_id)
    return [(line.description, line.amount) for line in invoice.lines.data]


def test_seed_example_job_creates_a_finalized_37_74_eur_invoice_in_stripe(clean_stack, services):
    account_id = new_account(clean_stack, services)
    plan = seed_plan(clean_stack, services, account_id)

    result = job(services).run(plan)

    invoice = services.payments.retrieve_invoice(result.stripe_invoice_id)
    assert invoice.status in ("open", "paid")  # Stripe charges right after finalizing
    assert invoice.total == 3774 and invoice.currency == "eur"
    assert invoice.metadata == {"userId": account_id, "invoiceId": plan.invoice_id, "period": plan.period.label}
    assert lines_of(clean_stack, result.stripe_invoice_id) == [
        ("Monatliche Grundgebühr", 2000),
        (plan.aws_description, 1774),
    ]
    record = services.invoices.get(account_id, plan.invoice_id)
    assert record.amount == Decimal("37.74") and record.fx.source == "local-stack"
    assert record.aws_breakdown["Amazon CloudFront"] == Decimal("8.47")
    assert services.invoices.find_by_stripe_invoice_id(result.stripe_invoice_id).invoice_id == plan.invoice_id


CRASH_POINTS = [
    (step, phase) for step in STEPS for phase in ("stripe", "saved") if (step, phase) != ("claim", "stripe")
]


@pytest.mark.parametrize(("step", "phase"), CRASH_POINTS)
def test_crash_after_each_step_then_rerun_ends_with_one_invoice_with_the_right_lines(
    clean_stack, services, step, phase
):
    account_id = new_account(clean_stack, services, customer=step != "customer")
    plan = seed_plan(clean_stack, services, account_id)
    with pytest.raises(Crash):
        job(services, observe=crash_at(step, phase)).run(plan)

    result = job(services).run(plan)

    assert stripe_objects(clean_stack)["invoice"] == 1
    assert stripe_objects(clean_stack)["invoiceitem"] == 2
    assert lines_of(clean_stack, result.stripe_invoice_id) == [
        ("Monatliche Grundgebühr", 2000),
        (plan.aws_description, 1774),
    ]
    assert services.invoices.get(account_id, plan.invoice_id).stripe.finalized_at


def test_crash_before_the_customer_was_recorded_then_rerun_makes_one_customer(clean_stack, services):
    account_id = new_account(clean_stack, services, customer=False)
    plan = seed_plan(clean_stack, services, account_id)
    with pytest.raises(Crash):
        job(services, observe=crash_at("customer", "stripe")).run(plan)

    job(services).run(plan)

    assert stripe_objects(clean_stack)["customer"] == 1
    assert services.accounts.get(account_id).stripe_customer_id


def test_two_workers_on_the_same_job_create_one_invoice(clean_stack, services):
    account_id = new_account(clean_stack, services)
    plan = seed_plan(clean_stack, services, account_id)
    start = threading.Barrier(2)
    results, errors = [], []

    def worker() -> None:
        own = worker_services(clean_stack)  # separate clients, as two replicas would have
        start.wait()
        try:
            results.append(job(own).run(plan))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == [] and len(results) == 2
    assert {r.stripe_invoice_id for r in results} == {results[0].stripe_invoice_id}
    assert stripe_objects(clean_stack)["invoice"] == 1 and stripe_objects(clean_stack)["invoiceitem"] == 2


def test_two_scheduler_replicas_firing_together_start_one_run(clean_stack, services):
    # The stack groups costs by SERVICE: one account bills the whole payer.
    account_id = new_account(clean_stack, services)
    first_of_next_month = datetime.combine(seed_period(clean_stack).end, datetime.min.time(), UTC)
    start = threading.Barrier(2)
    results = []

    def replica(owner: str) -> None:
        run = WorkerUseCases(worker_services(clean_stack)).billing_run()
        start.wait()
        results.append(trigger_billing_run(run, owner, first_of_next_month))

    threads = [threading.Thread(target=replica, args=(f"replica-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    started = [r for r in results if r is not None]
    assert len(results) == 2 and len(started) == 1
    assert started[0].enqueued == 1
    record = services.runs.get(seed_period(clean_stack))
    assert record.status == "enqueued" and record.run_id == started[0].run_id
    # The stack's worker bills the enqueued job; let it finish so no work spills into the next test.
    invoice_id = invoice_id_for(seed_period(clean_stack), account_id)
    assert wait_for(
        lambda: getattr(getattr(services.invoices.get(account_id, invoice_id), "stripe", None), "finalized_at", None),
        timeout=60,
        what="the enqueued invoice job to finish",
    )


FREEZE_POINTS = [("create-invoice", "saved"), ("add-lines", "stripe"), ("finalize", "stripe")]


@pytest.mark.parametrize(("step", "phase"), FREEZE_POINTS)
def test_a_worker_frozen_past_its_visibility_resumes_without_moving_the_record_back(
    clean_stack, services, step, phase, caplog
):
    """Worker A freezes mid-job; B takes the job over, finishes it, Stripe charges it; then A wakes up."""
    caplog.set_level("ERROR")
    account_id = new_account(clean_stack, services)
    plan = seed_plan(clean_stack, services, account_id)
    frozen, thawed = threading.Event(), threading.Event()
    away = [0.0]  # how long A was away, as A's clock sees it when it wakes

    def freeze(seen_step: str, seen_phase: str) -> None:
        if (seen_step, seen_phase) == (step, phase):
            frozen.set()
            assert thawed.wait(120)
            away[0] = 60.0  # past the 30 s visibility: SQS had shown its message to B

    worker_a = InvoiceJob(
        invoices=services.invoices,
        accounts=services.accounts,
        payments=services.payments,
        observe=freeze,
        clock=lambda: time.time() + away[0],
    )
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(_run_or_error(worker_a, plan)))
    thread.start()
    try:
        assert frozen.wait(60), "worker A never reached the freeze point"
        taken_over = job(services).run(plan)
        wait_for(
            lambda: services.invoices.get(account_id, plan.invoice_id).status == "paid",
            timeout=60,
            what="the invoice paid (Stripe charged it, the stack's worker applied invoice.paid)",
        )
        before = services.invoices.get(account_id, plan.invoice_id)
    finally:
        thawed.set()
        thread.join(timeout=60)

    [result] = outcome
    assert not isinstance(result, Exception), result
    after = services.invoices.get(account_id, plan.invoice_id)
    assert after.status == "paid" and after.stripe.lines_added == before.stripe.lines_added == frozenset(
        {"base-fee", "aws"}
    )
    assert (after.stripe.finalized_at, after.payment.paid_at) == (before.stripe.finalized_at, before.payment.paid_at)
    assert after.stripe.finalized_at <= after.payment.paid_at
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    assert stripe_objects(clean_stack)["invoice"] == 1 and stripe_objects(clean_stack)["invoiceitem"] == 2
    assert lines_of(clean_stack, taken_over.stripe_invoice_id) == [
        ("Monatliche Grundgebühr", 2000),
        (plan.aws_description, 1774),
    ]


def _run_or_error(worker: InvoiceJob, plan) -> object:
    try:
        return worker.run(plan)
    except Exception as error:  # reported by the test, not lost in the thread
        return error
