"""The monthly billing through the whole local stack: `billing run` enqueues, the scheduler-worker
process creates the invoices, Stripe (the emulator) charges, webhooks bring the outcome back."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from billing_cli import cli
from billing_core.bootstrap import WorkerUseCases
from billing_core.domain.costs import Period
from billing_core.domain.invoice_plan import invoice_id_for
from billing_core.domain.records import RunStatus
from local_stack.cost_seed import cost_explorer_result, revise_billing_query
from local_stack.demo import wait_for, worker_services
from scheduler_worker.schedule import trigger_billing_run
from tests.integration.test_billing_run_resume import new_account, seed_period, stripe_objects

SETTLE_SECONDS = 60


def billing_run(services, period: Period, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        ["run", "--period", period.label, "--timeout", str(SETTLE_SECONDS), *extra],
        use_cases=WorkerUseCases(services),
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


def record_with(services, account_id, period, predicate):
    def check():
        record = services.invoices.get(account_id, invoice_id_for(period, account_id))
        return record if record and predicate(record) else None

    record = wait_for(check, SETTLE_SECONDS)
    assert record is not None, services.invoices.get(account_id, invoice_id_for(period, account_id))
    return record


def status_is(status):
    return lambda record: record.status == status


def jobs_drained(stack) -> bool:
    attributes = stack.aws_client("sqs").get_queue_attributes(
        QueueUrl=stack.info["queues"]["billing_jobs"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        attributes["ApproximateNumberOfMessages"] == "0" and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    )


def queue_cost_explorer_result(
    stack, period: Period, amounts: dict[str, str], *, earlier: dict[Period, dict[str, str]] | None = None
) -> None:
    """Make the local Cost Explorer answer the next new query (the run's, for ``period`` and the months
    before it) with ``amounts``, and with ``earlier`` months' (final) amounts."""
    result = cost_explorer_result({**(earlier or {}), period: amounts})
    response = requests.post(
        f"{stack.info['aws_endpoint']}/moto-api/static/ce/cost-and-usage-results",
        json={"results": [result]},
        timeout=10,
    )
    response.raise_for_status()


def test_seed_example_end_to_end_is_a_paid_invoice_of_37_74_eur(clean_stack, services):
    account_id = new_account(clean_stack, services)
    period = seed_period(clean_stack)

    code, out, err = billing_run(services, period)

    assert code == 0, err
    assert "44.91" in out and account_id in out
    record = record_with(services, account_id, period, status_is("paid"))
    assert (record.base_fee, record.aws_costs, record.net) == (Decimal("20"), Decimal("17.74"), Decimal("37.74"))
    assert (record.tax, record.amount, record.vat.category) == (Decimal("7.17"), Decimal("44.91"), "S")
    invoice = services.payments.retrieve_invoice(record.stripe.invoice_id)
    assert invoice.status == "paid" and invoice.amount_paid == 4491
    assert (invoice.total_excluding_tax, invoice.total_tax) == (3774, 717)  # one Tax Rate on both lines
    # §14 UStG: the seller's USt-IdNr on the invoice, each line with its service period (Leistungszeitraum).
    stripe_invoice = clean_stack.stripe_client().v1.invoices.retrieve(record.stripe.invoice_id)
    assert [(f.name, f.value) for f in stripe_invoice.custom_fields] == [("USt-IdNr.", "DE136695976")]
    assert {(line.period.start, line.period.end) for line in stripe_invoice.lines.data} == {
        (
            int(datetime(period.year, period.month, 1, tzinfo=UTC).timestamp()),
            int(datetime.combine(period.end, datetime.min.time(), UTC).timestamp()) - 1,
        )
    }


def test_rerun_for_same_period_creates_no_new_stripe_object(clean_stack, services):
    new_account(clean_stack, services)  # the stack groups costs by SERVICE: one account bills the whole payer
    period = seed_period(clean_stack)
    assert billing_run(services, period)[0] == 0
    assert wait_for(lambda: jobs_drained(clean_stack), SETTLE_SECONDS)
    before = stripe_objects(clean_stack)

    code, out, _ = billing_run(services, period)
    assert wait_for(lambda: jobs_drained(clean_stack), SETTLE_SECONDS)

    assert code == 0 and out.count("44.91") == 1
    after = stripe_objects(clean_stack)
    assert {k: v for k, v in after.items() if k != "event"} == {k: v for k, v in before.items() if k != "event"}
    assert after["invoice"] == 1


def test_a_declining_card_ends_in_payment_failed(clean_stack, services):
    account_id = new_account(clean_stack, services, card="pm_card_chargeCustomerFail")
    period = seed_period(clean_stack)

    assert billing_run(services, period)[0] == 0

    record_with(services, account_id, period, status_is("payment_failed"))


def test_a_card_that_needs_authentication_ends_in_action_required(clean_stack, services):
    account_id = new_account(clean_stack, services, card="pm_card_authenticationRequired")
    period = seed_period(clean_stack)

    assert billing_run(services, period)[0] == 0

    record_with(services, account_id, period, status_is("action_required"))


def test_an_account_without_a_payment_method_gets_a_finalized_invoice_marked_as_missing_one(clean_stack, services):
    account_id = new_account(clean_stack, services, card=None)
    period = seed_period(clean_stack)

    code, out, _ = billing_run(services, period)

    assert code == 0 and "no payment method" in out
    record = record_with(services, account_id, period, lambda r: r.stripe.finalized_at)
    assert record.stripe.payment_method_missing is True
    assert services.payments.retrieve_invoice(record.stripe.invoice_id).status == "open"


def test_a_month_without_aws_costs_bills_the_base_fee_alone(clean_stack, services):
    account_id = new_account(clean_stack, services)
    period = Period(2023, 1)
    clean_stack.pin_rate(period)  # the ECB feed the stack serves covers 2026: 2023 is billed at a manual 1.0
    queue_cost_explorer_result(clean_stack, period, {"Tax": "0"})

    assert billing_run(services, period)[0] == 0

    record = record_with(services, account_id, period, status_is("paid"))
    assert (record.aws_costs, record.net, record.aws_breakdown) == (Decimal("0"), Decimal("20"), {})
    lines = clean_stack.stripe_client().v1.invoices.retrieve(record.stripe.invoice_id).lines.data
    assert [line.amount for line in lines] == [2000]  # an AWS line of 0.00 is left off


def test_a_month_with_credits_nets_them_into_the_aws_line(clean_stack, services):
    account_id = new_account(clean_stack, services)
    period = Period(2023, 2)
    clean_stack.pin_rate(period)
    queue_cost_explorer_result(
        clean_stack,
        period,
        {
            "AWS Lambda": "5.23",
            "Amazon CloudFront": "8.47",
            "Amazon DynamoDB": "1.89",
            "Amazon Simple Storage Service": "2.15",
            "Credit": "-7.74",
        },
    )

    assert billing_run(services, period)[0] == 0

    record = record_with(services, account_id, period, status_is("paid"))
    assert (record.aws_costs, record.net) == (Decimal("10"), Decimal("30"))
    assert "Credit" not in record.aws_breakdown and sum(record.aws_breakdown.values()) == Decimal("10")
    assert services.payments.retrieve_invoice(record.stripe.invoice_id).amount_paid == 3570  # 30.00 net + 19 % USt.


def test_a_dry_run_prints_the_plan_and_writes_nothing(clean_stack, services):
    account_id = new_account(clean_stack, services)
    period = seed_period(clean_stack)
    before = stripe_objects(clean_stack)

    code, out, err = billing_run(services, period, "--dry-run")

    assert code == 0 and "nothing written" in err
    assert account_id in out and "17.74" in out and "37.74" in out and "Amazon CloudFront 8.47" in out
    assert services.invoices.get(account_id, invoice_id_for(period, account_id)) is None
    assert services.runs.get(period) is None
    assert stripe_objects(clean_stack) == before


@pytest.mark.parametrize("months_ahead", [0, 1])
def test_the_current_and_a_future_month_are_refused_with_a_non_zero_exit_and_nothing_written(
    clean_stack, services, months_ahead
):
    account_id = new_account(clean_stack, services)
    period = Period.containing(datetime.now(UTC)).shifted(months_ahead)

    code, out, err = billing_run(services, period)

    assert code == 3 and f"{period.label} has not ended yet" in err
    assert services.invoices.get(account_id, invoice_id_for(period, account_id)) is None
    assert services.runs.get(period) is None


def test_the_billing_command_reaches_the_local_stack_through_its_stack_json(clean_stack, services, monkeypatch):
    account_id = new_account(clean_stack, services)
    period = seed_period(clean_stack)
    for variable in ("AWS_ENDPOINT_URL", "STRIPE_API_BASE", "BILLING_TABLE", "PAYMENT_METHODS_TABLE"):
        monkeypatch.delenv(variable, raising=False)  # only the file says where the stack is
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(
        ["--stack", str(clean_stack.stack_file), "run", "--period", period.label, "--dry-run"], out=out, err=err
    )

    assert code == 0, err.getvalue()
    assert account_id in out.getvalue() and "37.74" in out.getvalue()


def test_a_local_aws_endpoint_with_live_stripe_is_refused(clean_stack, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", clean_stack.info["aws_endpoint"])
    monkeypatch.delenv("STRIPE_API_BASE", raising=False)
    period = seed_period(clean_stack)
    err = io.StringIO()

    code = cli.main(["run", "--period", period.label, "--dry-run"], out=io.StringIO(), err=err)

    assert code == 2 and "live Stripe" in err.getvalue()


def test_a_credit_after_a_month_was_billed_is_a_negative_correction_clamped_at_zero_and_carried_on(
    clean_stack, services
):
    account_id = new_account(clean_stack, services)
    march, april = Period(2023, 3), Period(2023, 4)
    clean_stack.pin_rate(march), clean_stack.pin_rate(april)
    queue_cost_explorer_result(clean_stack, march, {"AWS Lambda": "30"})
    assert billing_run(services, march)[0] == 0
    assert record_with(services, account_id, march, status_is("paid")).net == Decimal("50.0")

    # A late refund: March finally cost nothing. April bills 20.00 - 30.00: clamped at 0.00, 10.00 on.
    queue_cost_explorer_result(clean_stack, april, {"AWS Lambda": "0"}, earlier={march: {"AWS Lambda": "-2"}})
    assert billing_run(services, april)[0] == 0

    record = record_with(services, account_id, april, lambda r: r.status in ("open", "paid"))
    assert [(c.period, c.amount) for c in record.true_up.corrections] == [(march, Decimal("-30.00"))]
    assert (record.net, record.true_up.carried_out) == (Decimal("0.00"), Decimal("10.00"))
    lines = clean_stack.stripe_client().v1.invoices.retrieve(record.stripe.invoice_id).lines.data
    assert sorted(line.amount for line in lines) == [-3000, 1000, 2000]
    assert services.invoices.get(account_id, invoice_id_for(march, account_id)).corrected_by == {record.invoice_id}

    # A rerun of April applies the correction once: same record, same Stripe invoice.
    assert billing_run(services, april)[0] == 0
    again = services.invoices.get(account_id, invoice_id_for(april, account_id))
    assert (
        again.stripe.invoice_id == record.stripe.invoice_id and again.true_up.corrections == record.true_up.corrections
    )


def test_billing_report_of_the_seed_month_reconciles_with_cost_explorer_and_keeps_tax_out(clean_stack, services):
    account_id = new_account(clean_stack, services)
    period = seed_period(clean_stack)
    assert billing_run(services, period)[0] == 0
    record_with(services, account_id, period, status_is("paid"))
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(
        ["--stack", str(clean_stack.stack_file), "report", "--period", period.label, "--format", "json"],
        out=out,
        err=err,
    )

    assert code == 0, err.getvalue()
    report = json.loads(out.getvalue())
    explorer = report["costExplorer"]
    assert explorer["excluded"] == {"Tax": "3.3706000000"}  # 19% of the seed month: never passed on
    assert Decimal(explorer["allocated"]) == Decimal("17.7399999999")  # the seed services, unrounded
    assert explorer["unallocated"] == {} and Decimal(explorer["groupingDifference"]) == 0
    assert Decimal(explorer["payerTotal"]) == Decimal("21.1105999999")
    assert explorer["requests"] == 2
    (billed,) = report["accounts"]
    assert (billed["account"], billed["total"], billed["awsLine"]) == (account_id, "37.74", "17.74")


def test_a_period_is_billed_at_the_ecb_rate_read_from_an_ecb_feed_over_http(clean_stack, tmp_path):
    """The run reads the real ECB 90-day file (from ../shared/fx, served over HTTP) instead of FX_RATE."""
    from pathlib import Path

    from flask import Flask

    from local_stack.demo import worker_services
    from tests.support.servers import WsgiServer

    feed_file = Path(__file__).resolve().parents[3] / "shared" / "fx" / "eurofxref-hist-90d.xml"
    if not feed_file.exists():
        pytest.skip("needs ../shared/fx")
    app = Flask(__name__)
    app.add_url_rule(
        "/eurofxref-hist-90d.xml", "feed", lambda: (feed_file.read_bytes(), 200, {"Content-Type": "text/xml"})
    )
    with WsgiServer(app) as feed:
        services = worker_services(
            clean_stack,
            fx_rate=None,
            fx_source=None,
            fx_date=None,
            ecb_feed_url=f"{feed.base_url}/eurofxref-hist-90d.xml",
            ecb_history_url=f"{feed.base_url}/eurofxref-hist-90d.xml",
        )
        account_id = new_account(clean_stack, services)
        december = Period(2024, 12)
        queue_cost_explorer_result(
            clean_stack,
            december,
            {
                "AWS Lambda": "5.2312345678",
                "Amazon Simple Storage Service": "2.1487654321",
                "Amazon CloudFront": "8.4700000001",
                "Amazon DynamoDB": "1.8899999999",
            },
        )

        code, out, err = billing_run(services, december)

    assert code == 0, err
    record = record_with(services, account_id, december, status_is("paid"))
    # 17.7399999999 USD / 1.0389 (ECB, 2024-12-31) = 17.0757... EUR
    assert (record.aws_costs, record.net) == (Decimal("17.08"), Decimal("37.08"))
    assert (record.fx.rate, record.fx.as_of.isoformat()) == (Decimal("1.0389"), "2024-12-31")
    stored = services.period_rates.get(december)
    assert stored.feed.endswith("eurofxref-hist-90d.xml") and stored.fx.source == "ECB euro reference rate"
    invoice = clean_stack.stripe_client().v1.invoices.retrieve(record.stripe.invoice_id)
    assert invoice.description == "1 EUR = 1,0389 USD, EZB-Referenzkurs vom 31.12.2024"


def at(moment: datetime):
    """A clock for the billing run that stays at ``moment``."""
    return moment.timestamp


def test_an_estimated_month_waits_and_the_daily_check_bills_it_once_cost_explorer_marks_it_final(clean_stack, services):
    account_id = new_account(clean_stack, services)
    may = Period(2023, 5)
    clean_stack.pin_rate(may)
    endpoint = clean_stack.info["aws_endpoint"]
    revise_billing_query(endpoint, may, {may: {"AWS Lambda": "10"}}, estimated={may})
    first = datetime(2023, 6, 1, tzinfo=UTC)

    waiting = trigger_billing_run(WorkerUseCases(services).billing_run(clock=at(first)), "replica-a", now=first)

    assert waiting is not None and waiting.waiting_for_final_costs
    assert services.runs.get(may).status is RunStatus.WAITING_FOR_FINAL_COSTS
    assert services.invoices.get(account_id, invoice_id_for(may, account_id)) is None and jobs_drained(clean_stack)

    # AWS closes May on the 4th, 12.50 in the end; the daily check at 06:00 that day bills it.
    revise_billing_query(endpoint, may, {may: {"AWS Lambda": "12.5"}})
    check = first + timedelta(days=3, hours=6)
    billed = trigger_billing_run(WorkerUseCases(services).billing_run(clock=at(check)), "replica-a", now=check)
    again = trigger_billing_run(WorkerUseCases(services).billing_run(clock=at(check)), "replica-b", now=check)

    assert billed is not None and billed.enqueued >= 1 and not billed.costs_estimated
    assert again is None
    record = record_with(services, account_id, may, status_is("paid"))
    assert (record.net, record.costs_estimated) == (Decimal("32.50"), False)
    assert services.runs.get(may).status is RunStatus.ENQUEUED


def test_on_the_deadline_day_an_estimated_month_is_billed_and_flagged_estimated(clean_stack, services):
    account_id = new_account(clean_stack, services)
    june = Period(2023, 6)
    clean_stack.pin_rate(june)
    revise_billing_query(clean_stack.info["aws_endpoint"], june, {june: {"AWS Lambda": "4.2"}}, estimated={june})
    seventh, eighth = datetime(2023, 7, 7, 6, tzinfo=UTC), datetime(2023, 7, 8, 6, tzinfo=UTC)

    assert trigger_billing_run(
        WorkerUseCases(services).billing_run(clock=at(seventh)), "a", now=seventh
    ).waiting_for_final_costs
    billed = trigger_billing_run(WorkerUseCases(services).billing_run(clock=at(eighth)), "a", now=eighth)

    assert billed is not None and billed.costs_estimated
    record = record_with(services, account_id, june, status_is("paid"))
    assert (record.net, record.costs_estimated) == (Decimal("24.20"), True)
    assert services.runs.get(june).costs_estimated is True


def test_a_month_the_ecb_feed_covers_is_billed_at_the_ecb_rate_the_local_stack_serves(clean_stack, services):
    account_id = new_account(clean_stack, services)
    october = Period(2026, 10)
    revise_billing_query(clean_stack.info["aws_endpoint"], october, {october: {"AWS Lambda": "17.74"}})

    code, _, err = billing_run(services, october)

    assert code == 0, err
    record = record_with(services, account_id, october, status_is("paid"))
    # 17.74 USD / 1.1172 (the ECB's rate of Friday 2026-10-30; the 31st is a Saturday) = 15.8790... EUR
    assert (record.fx.rate, record.fx.as_of, record.fx.source) == (
        Decimal("1.1172"),
        date(2026, 10, 30),
        "ECB euro reference rate",
    )
    assert record.net == Decimal("35.88")
    stored = services.period_rates.get(october)
    assert stored.feed == clean_stack.info["aws_endpoint"] + "/stats/eurofxref/eurofxref-hist-90d.xml"
    invoice = clean_stack.stripe_client().v1.invoices.retrieve(record.stripe.invoice_id)
    assert invoice.description == "1 EUR = 1,1172 USD, EZB-Referenzkurs vom 30.10.2026"


def test_billing_run_wait_follows_the_payment_to_its_outcome_and_the_default_says_payment_pending(
    clean_stack, services
):
    account_id = new_account(clean_stack, services)
    july, august = Period(2023, 7), Period(2023, 8)
    clean_stack.pin_rate(july), clean_stack.pin_rate(august)
    queue_cost_explorer_result(clean_stack, july, {"AWS Lambda": "1"})

    code, out, err = billing_run(services, july)  # waits for finalization only

    assert code == 0, err
    assert "invoices finalized" in err and "100%" in err
    (row,) = out.splitlines()[2:]
    # The emulator charges 2 s after finalizing, as Stripe does some time later: not "open", which reads as unpaid.
    assert "finalized, payment pending" in row or " paid " in row, row

    # August is charged to a card that declines; --wait follows it to payment_failed.
    client = clean_stack.stripe_client()
    customer = services.accounts.get(account_id).stripe_customer_id
    card = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", params={"customer": customer})
    client.v1.customers.update(customer, params={"invoice_settings": {"default_payment_method": card.id}})
    queue_cost_explorer_result(clean_stack, august, {"AWS Lambda": "1"})
    code, out, err = billing_run(services, august, "--wait")

    assert code == 0, err
    assert "invoices with a payment outcome" in err and "100%" in err
    (row,) = out.splitlines()[2:]
    assert row.split()[2] == "payment_failed", row


def test_without_the_sellers_details_the_run_is_refused_naming_them_and_nothing_is_written(clean_stack):
    services = worker_services(clean_stack, seller_vat_id=None, seller_contact_phone=None)
    account_id = new_account(clean_stack, services)
    period = seed_period(clean_stack)

    code, _, err = billing_run(services, period)

    assert code == 3 and "SELLER_CONTACT_PHONE" in err and "SELLER_VAT_ID or SELLER_TAX_NUMBER" in err
    assert services.invoices.get(account_id, invoice_id_for(period, account_id)) is None
    assert services.runs.get(period) is None
