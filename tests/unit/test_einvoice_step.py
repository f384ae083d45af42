"""The invoice job's e-invoice step: both files written once after finalizing, valid, equal to Stripe's totals."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import facturx
from lxml import etree

from billing_core.adapters.einvoice_files import EInvoiceFiles
from billing_core.domain.account_profile import PostalAddress
from billing_core.domain.costs import CostLine, CostReport, Period
from billing_core.domain.invoice_plan import BillingPolicy, FxRate, plan_invoice
from billing_core.domain.records import Account, SavedPaymentMethod
from billing_core.domain.seller import Seller
from billing_core.domain.tax import TaxPolicy
from billing_core.use_cases.einvoices import EInvoices, StoredEInvoices
from billing_core.use_cases.invoice_job import InvoiceJob
from tests.support.fakes import FakeAccountRepository, FakeDocumentStore, FakeInvoiceRepository, FakePaymentGateway
from tests.support.xrechnung import assert_valid_xrechnung

PERIOD = Period(2026, 11)
POLICY = BillingPolicy(fx=FxRate(Decimal("1.0"), "test", date(2026, 11, 30)))
SELLER = Seller(
    name="Beispiel Hosting GmbH",
    street="Musterstraße 1",
    postal_code="10115",
    city="Berlin",
    country="DE",
    vat_id="DE136695976",
    contact_name="Erika Mustermann",
    contact_phone="+49 30 1234567",
    contact_email="rechnung@beispiel-hosting.de",
    sepa_creditor_id="DE98ZZZ09999999999",
)
NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


class World:
    def __init__(self) -> None:
        self.stripe = FakePaymentGateway()
        self.invoices = FakeInvoiceRepository()
        self.accounts = FakeAccountRepository()
        self.documents = FakeDocumentStore()

    def account(self, **profile) -> Account:
        customer = self.stripe.create_customer(account_id="u1", idempotency_key="setup:u1")
        defaults = {
            "name": "Muster Kunde GmbH",
            "email": "einkauf@kunde.example",
            "country": "DE",
            "address": PostalAddress("Kundenweg 7", "80331", "München"),
            "payment_method": SavedPaymentMethod("pm_sepa_1", "sepa_debit", last4="3000"),
        }
        account = Account("u1", stripe_customer_id=customer.id, **{**defaults, **profile})
        self.accounts.put(account)
        return account

    def job(self, observe=None, writer=None) -> InvoiceJob:
        writer = writer or EInvoiceFiles()
        einvoices = EInvoices(invoices=self.invoices, documents=self.documents, writer=writer, seller=SELLER)
        return InvoiceJob(
            invoices=self.invoices,
            accounts=self.accounts,
            payments=self.stripe,
            tax=TaxPolicy(),
            seller=SELLER,
            einvoices=einvoices,
            clock=lambda: 1_764_547_200.0,
            observe=observe,
        )

    def plan(self, account: Account, aws: str = "17.74"):
        report = CostReport(PERIOD.start, PERIOD.end, "USD", False, (CostLine("Amazon EC2", Decimal(aws)),))
        return plan_invoice(PERIOD, report, account, POLICY)


def _amount(xml: bytes, name: str) -> Decimal:
    return Decimal(etree.fromstring(xml).find(f".//ram:{name}", NS).text)


def test_a_finalized_invoice_gets_a_valid_xrechnung_and_zugferd_with_stripes_totals():
    world = World()
    plan = world.plan(world.account(buyer_reference="991-12345-67"))
    world.job().run(plan)
    record = world.invoices.get("u1", plan.invoice_id)
    stored = StoredEInvoices(world.documents)
    xml = stored.file(record, "xrechnung").body
    assert_valid_xrechnung(xml)
    stripe_invoice = world.stripe.invoices[record.stripe.invoice_id]
    assert _amount(xml, "GrandTotalAmount") * 100 == stripe_invoice["total"] == 4491
    assert _amount(xml, "TaxBasisTotalAmount") * 100 == stripe_invoice["total_excluding_tax"] == 3774
    assert _amount(xml, "DuePayableAmount") == record.amount
    assert etree.fromstring(xml).find(".//ram:BuyerReference", NS).text == "991-12345-67"
    pdf = stored.file(record, "zugferd")
    assert pdf.file_name == f"Rechnung-{record.stripe.number}.pdf"
    assert facturx.get_xml_from_pdf(pdf.body, check_xsd=False)[1] == xml


def test_the_files_are_written_once_even_when_the_job_runs_again():
    world = World()
    plan = world.plan(world.account())
    world.job().run(plan)
    first = dict(world.documents.files)
    world.job().run(plan)
    assert world.documents.files == first and len(first) == 2


def test_a_crash_after_finalizing_is_resumed_by_the_next_run():
    world = World()
    plan = world.plan(world.account())

    def crash(step: str, phase: str) -> None:
        if (step, phase) == ("finalize", "saved"):
            raise RuntimeError("worker died")

    try:
        world.job(observe=crash).run(plan)
    except RuntimeError:
        pass
    assert world.invoices.get("u1", plan.invoice_id).einvoice.xml is None
    result = world.job().run(plan)
    assert result.already_done
    assert world.invoices.get("u1", plan.invoice_id).einvoice.xml is not None
    assert len(world.stripe.calls_to("finalize_invoice")) == 1


def test_a_buyer_without_an_address_is_billed_and_the_record_says_why_there_is_no_einvoice():
    world = World()
    plan = world.plan(world.account(address=None))
    world.job().run(plan)
    record = world.invoices.get("u1", plan.invoice_id)
    assert record.status.value == "open" and record.einvoice.xml is None
    assert "the buyer has no postal_code" in record.einvoice.error
    assert not world.documents.files
    # Once the operator adds the address, the next run writes the files.
    world.accounts.put(
        dataclasses.replace(world.accounts.get("u1"), address=PostalAddress("Kundenweg 7", "80331", "München"))
    )
    world.job().run(plan)
    assert world.invoices.get("u1", plan.invoice_id).einvoice.error is None
    assert len(world.documents.files) == 2


class CountingWriter(EInvoiceFiles):
    """The real writer, counting the invoices handed to it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def xrechnung(self, invoice):
        self.asked.append(invoice.number)
        return super().xrechnung(invoice)


def test_the_domains_rules_refuse_an_incomplete_einvoice_before_the_writer_is_asked():
    world, writer = World(), CountingWriter()
    plan = world.plan(world.account(address=None))

    world.job(writer=writer).run(plan)

    assert "the buyer has no postal_code" in world.invoices.get("u1", plan.invoice_id).einvoice.error
    assert writer.asked == []


def test_reverse_charge_is_category_ae_with_its_legend_and_no_tax():
    world = World()
    plan = world.plan(
        world.account(country="AT", vat_id="ATU13585627", address=PostalAddress("Ringstraße 3", "1010", "Wien"))
    )
    world.job().run(plan)
    xml = StoredEInvoices(world.documents).file(world.invoices.get("u1", plan.invoice_id), "xrechnung").body
    assert_valid_xrechnung(xml)
    assert b"<ram:CategoryCode>AE</ram:CategoryCode>" in xml
    assert b"Reverse Charge" in xml
    assert _amount(xml, "GrandTotalAmount") == Decimal("37.74")
