"""Stripe's customer balance in the books: the minimum charge, credits to the balance, the check before finalizing."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from billing_core.adapters.einvoice_cii import xrechnung_xml
from billing_core.adapters.einvoice_files import EInvoiceFiles
from billing_core.domain.costs import CostLine, CostReport, Period
from billing_core.domain.credit_notes import CreditRequest, Settlement
from billing_core.domain.customer_balance import BalanceUse, balance_applied, books_balance
from billing_core.domain.invoice_plan import plan_invoice
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Invoice
from billing_core.use_cases.credit_notes import CreditNotes
from billing_core.use_cases.customer_balance import books_balance_before
from billing_core.use_cases.einvoices import einvoice_of
from billing_core.use_cases.invoice_job import CustomerBalanceMismatch, InvoiceJob
from tests.support.billing_world import POLICY, World
from tests.support.fakes import FakeAuditLog, FakeCreditNotes
from tests.unit.einvoice_fixtures import (
    SELLER_SETTINGS,
    a_buyer_account,
    pdf_text,
    xml_texts,
    xrechnung_validator,  # noqa: F401 (the session fixture "xrechnung")
)

NOVEMBER, DECEMBER = Period(2026, 11), Period(2026, 12)
TOTALS = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
NOTES = "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content"


class Books(World):
    """One German account billed month by month through the invoice job, with the balance checked."""

    def __init__(self) -> None:
        super().__init__()
        self.notes = FakeCreditNotes()
        self.customer = self.account(country="DE")

    def job(self, **options) -> InvoiceJob:
        return super().job(books_balance=books_balance_before(self.invoices, self.notes), **options)

    def bill_month(self, period: Period, base_fee: str, aws: str) -> Invoice:
        account = dataclasses.replace(self.customer, base_fee_override=Decimal(base_fee))
        self.accounts.put(account)
        report = CostReport(period.start, period.end, "USD", False, (CostLine("Amazon EC2", Decimal(aws)),))
        plan = plan_invoice(period, report, account, POLICY)
        self.job().run(plan)
        return self.invoices.get(account.account_id, plan.invoice_id)

    def pay(self, record: Invoice) -> Invoice:
        self.stripe.set_default_payment_method(
            customer_id=record.stripe.customer_id, payment_method_id="pm_card_visa", idempotency_key="pm"
        )
        self.stripe.pay_invoice(record.stripe.invoice_id, idempotency_key=f"pay-{record.invoice_id}")
        return self.invoices.update(record.account_id, record.invoice_id, {"status": InvoiceStatus.PAID})

    def stripe_balance(self) -> int:
        return self.stripe.customers[self.customer.stripe_customer_id]["balance"]


def test_stripes_rule_for_applying_a_balance():
    assert balance_applied(4491, 30) == 30  # owed: added in full
    assert balance_applied(4491, -1190) == -1190  # a credit: deducted
    assert balance_applied(500, -1190) == -500  # never below 0.00: the rest stays on the balance
    assert BalanceUse.of(30, 0, 30, "eur") == BalanceUse(Decimal(0), Decimal("0.30"))
    assert BalanceUse.of(4491, 30, 0, "eur") == BalanceUse(Decimal("0.30"), Decimal(0))
    assert BalanceUse.of(500, -1190, -690, "eur") == BalanceUse(Decimal("-5.00"), Decimal(0))


def test_an_invoice_below_the_minimum_charge_is_carried_to_the_balance_and_collected_by_the_next():
    books = Books()
    small = books.bill_month(NOVEMBER, "0.10", "0.15")  # 0.25 net + 0.05 VAT

    assert small.amount == Decimal("0.30")
    assert small.payment.carried_to_balance == Decimal("0.30") and small.amount_due == Decimal(0)
    stripe_small = books.stripe.retrieve_invoice(small.stripe.invoice_id)
    assert (stripe_small.status, stripe_small.amount_due) == ("paid", 0)
    assert books.stripe_balance() == 30

    december = books.bill_month(DECEMBER, "20.00", "17.74")

    assert december.payment.balance_applied == Decimal("0.30")
    assert december.amount_due == december.amount + Decimal("0.30") == Decimal("45.21")
    assert books.stripe.retrieve_invoice(december.stripe.invoice_id).amount_due == 4521
    assert books.stripe_balance() == 0
    assert books_balance(books.invoices.list_for_account("u1").items, []) == Decimal(0)


def test_a_credit_note_to_the_balance_is_deducted_from_the_next_invoice_as_prepaid():
    books = Books()
    november = books.pay(books.bill_month(NOVEMBER, "20.00", "17.74"))
    CreditNotes(books.invoices, books.notes, books.stripe, FakeAuditLog()).credit(
        november.invoice_id,
        CreditRequest(reason="Rabatt", lines={"base-fee": Decimal("10.00")}, settlement=Settlement.BALANCE),
        actor="operator:ops",
    )
    assert books.stripe_balance() == -1190

    december = books.bill_month(DECEMBER, "20.00", "17.74")

    assert december.payment.balance_applied == Decimal("-11.90")
    assert december.amount_due == Decimal("33.01")  # 44.91 - 11.90
    assert books.stripe.retrieve_invoice(december.stripe.invoice_id).amount_due == 3301


def test_an_unexplained_balance_at_stripe_stops_the_invoice_before_it_is_finalized():
    books = Books()
    books.bill_month(NOVEMBER, "20.00", "17.74")
    books.stripe.customers[books.customer.stripe_customer_id]["balance"] = -500  # changed outside the books

    with pytest.raises(CustomerBalanceMismatch, match="balance of -500 .* the books explain 0"):
        books.bill_month(DECEMBER, "20.00", "17.74")

    december = books.invoices.get("u1", "inv_2026-12_u1")
    assert december.status is InvoiceStatus.DRAFT and not december.stripe.finalized_at
    assert books.stripe.retrieve_invoice(december.stripe.invoice_id).status == "draft"


def _einvoice(record: Invoice, language: str = "de"):
    return einvoice_of(record, a_buyer_account(), SELLER_SETTINGS, language)


def test_the_e_invoice_of_a_small_invoice_says_it_is_collected_with_the_next(xrechnung):
    books = Books()
    small = books.bill_month(NOVEMBER, "0.10", "0.15")

    einvoice = _einvoice(small)
    xml = xrechnung_xml(einvoice)

    assert xml_texts(xml, TOTALS + "ram:DuePayableAmount") == ["0.30"]
    assert any("unter dem Mindestbetrag einer Abbuchung (0,50 EUR)" in note for note in xml_texts(xml, NOTES))
    result = xrechnung.validate(xml, "small.xml")
    assert result.ok, result.format()


def test_the_e_invoice_of_the_next_invoice_shows_the_credit_deducted_as_prepaid(xrechnung):
    books = Books()
    november = books.pay(books.bill_month(NOVEMBER, "20.00", "17.74"))
    CreditNotes(books.invoices, books.notes, books.stripe, FakeAuditLog()).credit(
        november.invoice_id,
        CreditRequest(reason="Rabatt", lines={"base-fee": Decimal("10.00")}, settlement=Settlement.BALANCE),
        actor="operator:ops",
    )
    december = books.bill_month(DECEMBER, "20.00", "17.74")

    einvoice = _einvoice(december, "en")
    xml = xrechnung_xml(einvoice)
    pdf = EInvoiceFiles().zugferd(einvoice, xml)

    assert xml_texts(xml, TOTALS + "ram:GrandTotalAmount") == ["44.91"]
    assert xml_texts(xml, TOTALS + "ram:TotalPrepaidAmount") == ["11.90"]
    assert xml_texts(xml, TOTALS + "ram:DuePayableAmount") == ["33.01"]
    assert "Credit applied" in pdf_text(pdf) and "€33.01" in pdf_text(pdf)
    result = xrechnung.validate(xml, "prepaid.xml")
    assert result.ok, result.format()


def test_the_e_invoice_of_the_next_invoice_names_the_small_amount_it_collects():
    books = Books()
    books.bill_month(NOVEMBER, "0.10", "0.15")
    december = books.bill_month(DECEMBER, "20.00", "17.74")

    xml = xrechnung_xml(_einvoice(december))

    assert xml_texts(xml, TOTALS + "ram:DuePayableAmount") == ["44.91"]  # its own supply; the 0.30 is a note
    [note] = [n for n in xml_texts(xml, NOTES) if "Mindestbetrag" in n]
    assert "0,30 EUR" in note and "45,21 EUR" in note


TERMS = "//ram:SpecifiedTradePaymentTerms/ram:Description"


def test_the_payment_terms_say_how_the_amount_is_paid_when_nothing_is_charged_now(xrechnung):
    books = Books()
    small = books.bill_month(NOVEMBER, "0.10", "0.15")
    assert xml_texts(xrechnung_xml(_einvoice(small)), TERMS) == [
        "Der Rechnungsbetrag wird mit der nächsten Rechnung eingezogen."
    ]
    # December's 0.30 is collected with it; then a credit larger than January's invoice pays all of it.
    december = books.pay(books.bill_month(DECEMBER, "20.00", "17.74"))
    CreditNotes(books.invoices, books.notes, books.stripe, FakeAuditLog()).cancel(
        december.invoice_id, reason="Storno", actor="operator:ops", settlement=Settlement.BALANCE
    )
    january = books.bill_month(Period(2027, 1), "5.00", "0.00")

    assert (january.amount, january.payment.balance_applied, january.amount_due) == (
        Decimal("5.95"),
        Decimal("-5.95"),
        Decimal(0),
    )
    xml = xrechnung_xml(_einvoice(january))
    assert xml_texts(xml, TERMS) == ["Der Rechnungsbetrag ist mit Ihrem Guthaben verrechnet; es wird nichts abgebucht."]
    assert xml_texts(xml, TOTALS + "ram:DuePayableAmount") == ["0.00"]
    result = xrechnung.validate(xml, "paid-by-credit.xml")
    assert result.ok, result.format()
