"""Under Stripe Tax a month that finally cost less is settled by a credit note on its invoice, never a negative line."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing_core.adapters.einvoice_files import EInvoiceFiles
from billing_core.domain.account_profile import PostalAddress
from billing_core.domain.costs import PAYER, CostLine, Period
from billing_core.domain.credit_notes import CreditNoteState, CreditRequest, Settlement
from billing_core.domain.fx import FxRate
from billing_core.domain.invoice_plan import BillingPolicy
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.tax import TaxMode, TaxPolicy
from billing_core.errors import StripeUnavailable
from billing_core.ports.stripe import CustomerDetails
from billing_core.use_cases.billing_run import BillingRun
from billing_core.use_cases.credit_notes import CreditNotes
from billing_core.use_cases.einvoices import EInvoices, einvoice_of
from billing_core.use_cases.invoice_job import InvoiceJob, NegativeLineUnderStripeTax
from billing_core.use_cases.invoice_messages import plan_from_message, plan_to_message
from billing_core.use_cases.invoice_records import correction_credits
from billing_core.use_cases.period_report import period_report
from billing_core.use_cases.reissue import Reissue
from tests.support.fakes import (
    FakeAccountRepository,
    FakeAuditLog,
    FakeCostSource,
    FakeCreditNotes,
    FakeDocumentStore,
    FakeInvoiceRepository,
    FakeLeases,
    FakePaymentGateway,
    FakeQueue,
    FakeRunRecords,
)
from tests.support.records import an_account
from tests.unit.einvoice_fixtures import (
    SELLER_SETTINGS,
    a_buyer_account,
    xml_texts,
    xrechnung_validator,  # noqa: F401 (the session fixture "xrechnung")
)

OCT, NOV, DEC = Period(2026, 10), Period(2026, 11), Period(2026, 12)
ONE_TO_ONE = FxRate(Decimal("1"), "manual", OCT.start)
STRIPE_TAX = TaxPolicy(TaxMode.STRIPE_TAX)
RATES = TaxPolicy(TaxMode.RATES)
OCTOBERS_CORRECTION = "Korrektur AWS Infrastruktur (Okt 2026)"
DOCUMENT_NOTES = "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content"


class Crash(Exception):
    """A worker dying at one point of the job."""


class World:
    """A German business customer on the fake Stripe, billed month after month by the run and the job."""

    def __init__(self, tax: TaxPolicy = STRIPE_TAX) -> None:
        self.tax = tax
        self.stripe = FakePaymentGateway()
        details = CustomerDetails(
            name="Kunde AG", address=PostalAddress("Hauptstr. 1", "10115", "Berlin"), country="DE"
        )
        customer = self.stripe.create_customer(account_id="u1", details=details, idempotency_key="setup:u1")
        self.customer_id = customer.id
        self.stripe.set_default_payment_method(
            customer_id=customer.id, payment_method_id="pm_card_visa", idempotency_key="pm:u1"
        )
        self.account = an_account("u1", stripe_customer_id=customer.id, country="DE", name="Kunde AG")
        self.accounts = FakeAccountRepository([self.account])
        self.invoices = FakeInvoiceRepository()
        self.notes = FakeCreditNotes()
        self.audit = FakeAuditLog()
        self.costs = FakeCostSource()
        self.queue = FakeQueue()

    def credit_notes(self) -> CreditNotes:
        return CreditNotes(self.invoices, self.notes, self.stripe, self.audit)

    def job(self, now: float, observe=None, einvoices=None) -> InvoiceJob:
        return InvoiceJob(
            invoices=self.invoices,
            accounts=self.accounts,
            payments=self.stripe,
            clock=lambda: now,
            tax=self.tax,
            credit_notes=self.credit_notes(),
            observe=observe,
            einvoices=einvoices,
        )

    def plan(self, period: Period, aws_usd: str, finals: dict[Period, str] | None = None):
        self.costs.lines = (CostLine("AWS Lambda", Decimal(aws_usd)),)
        self.costs.monthly = {
            month: (CostLine("AWS Lambda", Decimal(amount)),) for month, amount in (finals or {}).items()
        }
        now = datetime(period.end.year, period.end.month, 2, tzinfo=UTC).timestamp()
        run = BillingRun(
            accounts=self.accounts,
            costs=self.costs,
            leases=FakeLeases(),
            runs=FakeRunRecords(),
            billing_jobs=self.queue,
            policy=BillingPolicy(fx=ONE_TO_ONE),
            attribution=PAYER,
            invoices=self.invoices,
            correction_months=3,
            clock=lambda: now,
            tax=self.tax,
        )
        before = len(self.queue.messages)
        run.start(period, owner="test", trigger="cli")
        ((plan, run_id),) = [plan_from_message(m.body) for m in self.queue.messages[before:]]
        return plan, run_id, now

    def bill(self, period: Period, aws_usd: str, *, finals: dict[Period, str] | None = None, observe=None):
        """Run the month (its costs ``aws_usd``, earlier months' final costs ``finals``) and its job."""
        plan, run_id, now = self.plan(period, aws_usd, finals)
        self.job(now, observe).run(plan, run_id=run_id)
        return self.invoices.get("u1", plan.invoice_id)

    def paid(self, record) -> None:
        """The customer paid ``record`` (Stripe and the record agree)."""
        self.stripe.pay_invoice(record.stripe.invoice_id, idempotency_key=f"pay:{record.invoice_id}")
        self.invoices.update("u1", record.invoice_id, {"status": InvoiceStatus.PAID})

    def stripe_lines(self, record) -> list[tuple[str, int]]:
        invoice = self.stripe.invoices[record.stripe.invoice_id]
        return [(line["metadata"]["line"], line["amount"]) for line in invoice["lines"]["data"]]

    def stripe_invoice(self, record):
        return self.stripe.retrieve_invoice(record.stripe.invoice_id)

    def notes_of(self, record):
        return self.notes.list_for_invoice(record.invoice_id)


def test_a_downward_correction_is_a_credit_note_on_the_paid_month_and_the_next_invoice_collects_less():
    world = World()
    october = world.bill(OCT, "17.74")
    world.paid(october)
    assert (october.net, october.tax, october.amount) == (Decimal("37.74"), Decimal("7.17"), Decimal("44.91"))

    november = world.bill(NOV, "10.00", finals={OCT: "15.00"})

    # November bills its own month, positive lines only; the correction stays in its true-up.
    assert world.stripe_lines(november) == [("base-fee", 2000), ("aws", 1000)]
    assert (november.net, november.tax, november.amount) == (Decimal("30.00"), Decimal("5.70"), Decimal("35.70"))
    (correction,) = november.true_up.corrections
    assert (correction.period, correction.amount, correction.by_credit_note) == (OCT, Decimal("-2.74"), True)
    assert november.status is InvoiceStatus.OPEN
    # October's invoice gets one credit note of exactly the correction; Stripe Tax computes its VAT.
    (note,) = world.notes_of(october)
    assert note.state is CreditNoteState.ISSUED and note.settlement is Settlement.BALANCE
    assert [(line.kind, line.net) for line in note.lines] == [("aws", Decimal("2.74"))]
    (stripe_note,) = world.stripe.list_credit_notes(october.stripe.invoice_id)
    assert stripe_note.total_tax == 52 and (note.tax, note.gross) == (Decimal("0.52"), Decimal("3.26"))
    assert stripe_note.total == 326 and stripe_note.metadata["trueUpInvoiceId"] == november.invoice_id
    assert (note.true_up_invoice_id, note.true_up_period, note.reason) == (
        november.invoice_id,
        OCT,
        OCTOBERS_CORRECTION,
    )
    assert world.invoices.get("u1", october.invoice_id).payment.credited == Decimal("3.26")
    # The credit was on the balance before November was finalized: Stripe took it off November.
    stripe_november = world.stripe_invoice(november)
    assert stripe_november.total == 3570 and stripe_november.starting_balance == -326
    assert stripe_november.amount_due == 3570 - 326
    assert world.stripe.customers[world.customer_id]["balance"] == 0


def test_the_credit_note_of_an_open_month_reduces_what_it_still_asks():
    world = World()
    october = world.bill(OCT, "17.74")

    world.bill(NOV, "10.00", finals={OCT: "15.00"})

    (note,) = world.notes_of(october)
    assert note.settlement is Settlement.PRE_PAYMENT and note.gross == Decimal("3.26")
    assert world.stripe_invoice(october).amount_due == 4491 - 326
    assert world.stripe.customers[world.customer_id]["balance"] == 0


def test_the_following_months_true_up_does_not_correct_the_month_again():
    world = World()
    october = world.bill(OCT, "17.74")
    world.bill(NOV, "10.00", finals={OCT: "15.00"})

    december = world.bill(DEC, "10.00", finals={OCT: "15.00", NOV: "10.00"})

    assert december.true_up.corrections == () and december.amount == Decimal("35.70")
    assert len(world.notes_of(october)) == 1
    # A later revision is corrected by only the difference, by a second credit note.
    january = world.bill(Period(2027, 1), "10.00", finals={OCT: "14.00", NOV: "10.00", DEC: "10.00"})
    assert [(c.period, c.amount, c.by_credit_note) for c in january.true_up.corrections] == [
        (OCT, Decimal("-1.00"), True)
    ]
    assert [n.net for n in world.notes_of(october)] == [Decimal("2.74"), Decimal("1.00")]


@pytest.mark.parametrize("crash_at", [("credit-notes", "saved"), ("create-invoice", "stripe")])
def test_a_rerun_after_a_crash_past_the_credit_note_issues_no_second(crash_at):
    world = World()
    october = world.bill(OCT, "17.74")

    def crash(step, phase):
        if (step, phase) == crash_at:
            raise Crash

    with pytest.raises(Crash):
        world.bill(NOV, "10.00", finals={OCT: "15.00"}, observe=crash)
    assert len(world.notes_of(october)) == 1

    november = world.bill(NOV, "10.00", finals={OCT: "12.00"})  # a rerun: the claim wins, the note is found

    assert [n.net for n in world.notes_of(october)] == [Decimal("2.74")]
    assert len(world.stripe.list_credit_notes(october.stripe.invoice_id)) == 1
    assert november.status is InvoiceStatus.OPEN and world.stripe_lines(november) == [("base-fee", 2000), ("aws", 1000)]


def test_a_credit_note_stripe_created_but_whose_answer_was_lost_is_found_not_issued_again():
    world = World()
    october = world.bill(OCT, "17.74")
    world.stripe.fail_after_execution_next("create_credit_note")

    with pytest.raises(StripeUnavailable):
        world.bill(NOV, "10.00", finals={OCT: "15.00"})
    assert [n.state for n in world.notes_of(october)] == [CreditNoteState.PENDING]

    november = world.bill(NOV, "10.00", finals={OCT: "15.00"})

    assert [n.state for n in world.notes_of(october)] == [CreditNoteState.ISSUED]
    assert len(world.stripe.list_credit_notes(october.stripe.invoice_id)) == 1
    assert world.stripe.list_credit_notes(october.stripe.invoice_id)[0].total == 326
    assert november.stripe.finalized_at is not None


def test_an_upward_correction_is_still_a_line():
    world = World()
    october = world.bill(OCT, "17.74")

    november = world.bill(NOV, "10.00", finals={OCT: "18.00"})

    assert world.stripe_lines(november) == [("base-fee", 2000), ("aws", 1000), ("correction:2026-10", 26)]
    assert [c.by_credit_note for c in november.true_up.corrections] == [False]
    assert november.net == Decimal("30.26") and world.notes_of(october) == []


def test_under_tax_rates_a_downward_correction_stays_a_negative_line():
    world = World(RATES)
    october = world.bill(OCT, "17.74")

    november = world.bill(NOV, "10.00", finals={OCT: "15.00"})

    assert world.stripe_lines(november) == [("base-fee", 2000), ("aws", 1000), ("correction:2026-10", -274)]
    assert november.net == Decimal("27.26") and [c.by_credit_note for c in november.true_up.corrections] == [False]
    assert world.notes_of(october) == []


def test_what_the_months_aws_line_lacks_is_credited_from_the_later_upward_correction():
    world = World()
    october = world.bill(OCT, "10.00")
    november = world.bill(NOV, "10.00", finals={OCT: "15.00"})  # +5.00, a line on November

    december = world.bill(DEC, "10.00", finals={OCT: "2.00", NOV: "10.00"})  # 15.00 billed, 2.00 final

    assert [(c.amount, c.by_credit_note) for c in december.true_up.corrections] == [(Decimal("-13.00"), True)]
    (on_october,) = world.notes_of(october)
    (on_november,) = world.notes_of(november)
    assert [(line.kind, line.net) for line in on_october.lines] == [("aws", Decimal("10.00"))]
    assert [(line.kind, line.net) for line in on_november.lines] == [("correction:2026-10", Decimal("3.00"))]
    assert on_october.tax == Decimal("1.90") and on_november.tax == Decimal("0.57")
    assert {n.true_up_invoice_id for n in (on_october, on_november)} == {december.invoice_id}
    # January finds October billed at its final 2.00 and corrects nothing.
    january = world.bill(Period(2027, 1), "10.00", finals={OCT: "2.00", NOV: "10.00", DEC: "10.00"})
    assert january.true_up.corrections == ()


def test_the_operators_goodwill_credit_is_not_a_correction_of_the_month():
    world = World()
    october = world.bill(OCT, "17.74")
    world.credit_notes().credit(
        october.invoice_id, CreditRequest(reason="Kulanz", lines={"aws": Decimal("5.00")}), actor="operator:ops"
    )

    november = world.bill(NOV, "10.00", finals={OCT: "15.00"})

    assert [c.amount for c in november.true_up.corrections] == [Decimal("-2.74")]
    goodwill, correction = world.notes_of(october)
    assert not goodwill.from_true_up and correction.from_true_up and correction.net == Decimal("2.74")
    report = period_report(
        OCT,
        costs=world.costs,
        accounts=world.accounts,
        invoices=world.invoices,
        attribution=PAYER,
        excluded=(),
        invoice_currency="eur",
        credit_notes=world.notes,
    )
    assert [part.credited for part in report.accounts] == [Decimal("5.00")]  # the goodwill only


def test_a_cancelled_invoice_that_carried_a_credit_note_correction_does_not_make_the_month_corrected_again():
    world = World()
    october = world.bill(OCT, "17.74")
    november = world.bill(NOV, "10.00", finals={OCT: "15.00"})
    world.credit_notes().cancel(november.invoice_id, reason="falscher Kunde", actor="operator:ops")

    december = world.bill(DEC, "10.00", finals={OCT: "15.00"})

    # October's credit note stands whatever became of November: October is billed at its final 15.00.
    assert december.true_up.corrections == ()
    assert [n.net for n in world.notes_of(october)] == [Decimal("2.74")]


def test_a_credit_carried_from_before_stripe_tax_is_refused_before_the_claim():
    world = World(RATES)
    world.bill(OCT, "50.00")
    world.bill(NOV, "0", finals={OCT: "-5"})  # 20 - 50: 0.00 charged, 30.00 carried on
    world.tax = STRIPE_TAX

    plan, run_id, now = world.plan(DEC, "40.00", finals={OCT: "-5", NOV: "0"})
    with pytest.raises(NegativeLineUnderStripeTax, match="30.00"):
        world.job(now).run(plan, run_id=run_id)

    assert world.invoices.get("u1", plan.invoice_id) is None


def test_the_new_invoices_einvoice_names_the_credit_note_that_settled_the_correction():
    world = World()
    october = world.bill(OCT, "17.74")
    november = world.bill(NOV, "10.00", finals={OCT: "15.00"})
    (note,) = world.notes_of(october)
    october = world.invoices.get("u1", october.invoice_id)

    settled = correction_credits(world.invoices, world.notes, november)
    german = einvoice_of(november, world.account, SELLER_SETTINGS, "de", corrected=[october], settled=settled)
    english = einvoice_of(november, world.account, SELLER_SETTINGS, "en", corrected=[october], settled=settled)

    day, iso_day = "02.11.2026", "2026-11-02"
    assert (
        f"Die Korrektur für Okt 2026 ist mit der Rechnungskorrektur {note.number} zu Rechnung "
        f"{october.stripe.number} vom {day} ausgeglichen." in german.notes
    )
    assert (
        f"The correction of Oct 2026 is settled by credit note {note.number} on invoice "
        f"{october.stripe.number} of {iso_day}." in english.notes
    )
    assert not any("Gutschrift" in text for text in german.notes)
    # No line corrects October: the e-invoice names no preceding invoice, its lines are November's.
    assert german.preceding == () and [line.net_amount for line in german.lines] == [Decimal("20.00"), Decimal("10.00")]


def test_a_reissue_carries_the_correction_its_cancelled_invoice_settled_without_a_second_credit_note():
    world = World()
    october = world.bill(OCT, "17.74")
    november = world.bill(NOV, "10.00", finals={OCT: "15.00"})
    world.credit_notes().cancel(november.invoice_id, reason="falsche Anschrift", actor="operator:ops")
    now = datetime(2026, 12, 3, tzinfo=UTC).timestamp()
    reissue = Reissue(
        world.invoices, world.accounts, world.notes, world.job(now), BillingPolicy(fx=ONE_TO_ONE), world.audit
    )

    reissued = reissue.reissue(november.invoice_id, actor="operator:ops").reissue

    record = world.invoices.get("u1", reissued.invoice_id)
    assert [(c.amount, c.by_credit_note) for c in record.true_up.corrections] == [(Decimal("-2.74"), True)]
    assert record.net == Decimal("30.00") and world.stripe_lines(record) == [("base-fee", 2000), ("aws", 1000)]
    assert [n.net for n in world.notes_of(october)] == [Decimal("2.74")]
    # December counts October's correction once: nothing is corrected again.
    december = world.bill(DEC, "10.00", finals={OCT: "15.00", NOV: "10.00"})
    assert december.true_up.corrections == ()


def test_the_run_plans_the_correction_as_settled_by_credit_note_and_the_job_message_keeps_it():
    world = World()
    world.bill(OCT, "17.74")

    plan, _, _ = world.plan(NOV, "10.00", finals={OCT: "15.00"})

    assert [(c.amount, c.by_credit_note) for c in plan.true_up.corrections] == [(Decimal("-2.74"), True)]
    assert plan.total == Decimal("30.00") and [line.amount for line in plan.lines] == [Decimal("20"), Decimal("10.00")]
    assert plan_from_message(plan_to_message(plan, "run-1"))[0] == plan


def test_the_einvoice_step_writes_the_credit_note_note_into_the_xrechnung(xrechnung):
    world = World()
    world.accounts.put(dataclasses.replace(a_buyer_account(), account_id="u1", stripe_customer_id=world.customer_id))
    october = world.bill(OCT, "17.74")
    documents = FakeDocumentStore()
    einvoices = EInvoices(
        invoices=world.invoices,
        documents=documents,
        writer=EInvoiceFiles(),
        seller=SELLER_SETTINGS,
        credit_notes=world.notes,
    )
    plan, run_id, now = world.plan(NOV, "10.00", finals={OCT: "15.00"})
    world.job(now, einvoices=einvoices).run(plan, run_id=run_id)

    november = world.invoices.get("u1", plan.invoice_id)
    (note,) = world.notes_of(october)
    xml = documents.get(november.einvoice.xml)
    notes = xml_texts(xml, DOCUMENT_NOTES)
    assert any(f"Rechnungskorrektur {note.number} zu Rechnung" in text for text in notes), notes
    result = xrechnung.validate(xml, "stripe-tax-settled-correction")
    assert result.ok, result.format()
