"""The XRechnung writer: every invoice the operator issues is a valid XRechnung 3.0 under the official rules."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from billing_core.adapters.einvoice_cii import EInvoiceRejected, xrechnung_xml
from billing_core.domain.einvoice import DocumentType, EInvoiceInvalid, PrecedingInvoice, VatCategory
from billing_core.use_cases.einvoices import einvoice_of
from tests.unit.einvoice_fixtures import (
    AUSTRIAN_BUYER,
    CARD,
    NS,
    SELLER,
    SELLER_SETTINGS,
    SUMMATION,
    US_BUYER,
    a_buyer_account,
    a_credit_note,
    a_finalized_invoice,
    an_einvoice,
    category_tax,
    legend,
    xml_texts,
    xrechnung_validator,  # noqa: F401 (the session fixture "xrechnung")
)

TAX_NUMBER = "27/123/45678"

CASES = {
    "german customer, SEPA": an_einvoice(),
    "german customer, card": an_einvoice(payment=CARD),
    "german customer, English": an_einvoice(language="en"),
    "reverse charge, EU customer": an_einvoice(category=VatCategory.REVERSE_CHARGE, buyer=AUSTRIAN_BUYER),
    "reverse charge, English, card": an_einvoice(
        category=VatCategory.REVERSE_CHARGE, buyer=AUSTRIAN_BUYER, language="en", payment=CARD
    ),
    "non-EU customer": an_einvoice(category=VatCategory.NOT_TAXABLE, buyer=US_BUYER),
    "non-EU customer, seller with tax number": an_einvoice(
        category=VatCategory.NOT_TAXABLE, buyer=US_BUYER, seller=dataclasses.replace(SELLER, tax_number=TAX_NUMBER)
    ),
    "small business with a tax number only": an_einvoice(
        category=VatCategory.SMALL_BUSINESS, seller=dataclasses.replace(SELLER, vat_id=None, tax_number=TAX_NUMBER)
    ),
    "small business with a VAT id, card": an_einvoice(category=VatCategory.SMALL_BUSINESS, payment=CARD),
    "zero AWS costs": an_einvoice(["20.00", "0.00"]),
    "positive and negative corrections": an_einvoice(["20.00", "17.74", "3.10", "-1.25"]),
    "carried credit": an_einvoice(["20.00", "17.74", "-5.00"]),
    "total 0.00 (credit covers it), SEPA": an_einvoice(["20.00", "-20.00"]),
    "total 0.00, card, not taxable": an_einvoice(
        ["20.00", "-20.00"], category=VatCategory.NOT_TAXABLE, buyer=US_BUYER, payment=CARD
    ),
    "buyer without street": an_einvoice(
        buyer=dataclasses.replace(AUSTRIAN_BUYER, street=None), category=VatCategory.REVERSE_CHARGE
    ),
}


def _tree(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


@pytest.mark.parametrize("name", CASES)
def test_each_kind_of_invoice_is_a_valid_xrechnung_with_no_errors(name, xrechnung):
    result = xrechnung.validate(xrechnung_xml(CASES[name]), name)

    assert result.ok, result.format()
    # The one warning allowed: the debited account is the masked IBAN Stripe shows (BR-DE-20).
    assert {finding.id for finding in result.warnings} <= {"BR-DE-20"}, result.format(include_warnings=True)


def test_the_german_invoice_carries_its_amounts_vat_and_xrechnung_ids():
    xml = xrechnung_xml(CASES["german customer, SEPA"])

    assert xml_texts(xml, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == [
        "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
    ]
    assert xml_texts(xml, "//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID") == [
        "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    ]
    assert xml_texts(xml, "//rsm:ExchangedDocument/ram:TypeCode") == ["380"]
    assert xml_texts(xml, "//ram:BuyerReference") == ["K-10023"]
    assert xml_texts(xml, "//ram:IncludedSupplyChainTradeLineItem//ram:LineTotalAmount") == ["20.00", "17.74"]
    assert [
        xml_texts(xml, SUMMATION + field)[0]
        for field in (
            "LineTotalAmount",
            "TaxBasisTotalAmount",
            "TaxTotalAmount",
            "GrandTotalAmount",
            "DuePayableAmount",
        )
    ] == ["37.74", "37.74", "7.17", "44.91", "44.91"]
    header_tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:"
    assert xml_texts(xml, header_tax + "CategoryCode") == ["S"] and xml_texts(
        xml, header_tax + "RateApplicablePercent"
    ) == ["19.00"]
    assert xml_texts(xml, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == ["DE136695976"]
    assert xml_texts(xml, "//ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID") == [
        "rechnung@beispiel-cloud.de"
    ]
    assert xml_texts(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == ["59"]
    assert xml_texts(xml, "//ram:DirectDebitMandateID") == ["pm_1QmandateABC"]
    assert xml_texts(xml, "//ram:CreditorReferenceID") == ["DE98ZZZ09999999999"]
    assert xml_texts(xml, "//ram:ApplicableHeaderTradeSettlement/ram:BillingSpecifiedPeriod/*/*") == [
        "20261101",
        "20261130",
    ]


def test_a_reverse_charge_invoice_names_both_vat_ids_and_its_legend_at_rate_zero():
    xml = xrechnung_xml(CASES["reverse charge, EU customer"])

    header_tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:"
    assert xml_texts(xml, header_tax + "CategoryCode") == ["AE"]
    assert xml_texts(xml, header_tax + "RateApplicablePercent") == ["0.00"]
    assert xml_texts(xml, header_tax + "ExemptionReason") == [
        "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge)"
    ]
    assert xml_texts(xml, "//ram:SpecifiedTaxRegistration/ram:ID") == ["DE136695976", "ATU13585627"]
    assert xml_texts(xml, "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == [
        legend(VatCategory.REVERSE_CHARGE)
    ]


def test_a_not_taxable_invoice_has_no_vat_ids_and_no_line_rate_and_identifies_the_seller_otherwise():
    xml = xrechnung_xml(CASES["non-EU customer"])

    assert xml_texts(xml, "//ram:SpecifiedTaxRegistration/ram:ID") == []  # BR-O-02
    assert xml_texts(xml, "//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent") == []
    assert xml_texts(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent") == [
        "0.00"
    ]  # BR-DE-14
    assert xml_texts(xml, "//ram:SellerTradeParty/ram:ID") == ["DE136695976"]  # BT-29, for BR-CO-26
    with_tax_number = xrechnung_xml(CASES["non-EU customer, seller with tax number"])
    assert xml_texts(with_tax_number, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == [TAX_NUMBER]
    assert _tree(with_tax_number).xpath("//ram:SpecifiedTaxRegistration/ram:ID/@schemeID", namespaces=NS) == ["FC"]


def test_a_credit_line_is_a_negative_quantity_at_a_positive_price():
    xml = xrechnung_xml(CASES["carried credit"])

    assert xml_texts(xml, "//ram:NetPriceProductTradePrice/ram:ChargeAmount") == ["20.00", "17.74", "5.00"]  # BR-27
    assert xml_texts(xml, "//ram:BilledQuantity") == ["1", "1", "-1"]
    assert xml_texts(xml, "//ram:IncludedSupplyChainTradeLineItem//ram:LineTotalAmount") == ["20.00", "17.74", "-5.00"]


def test_a_line_note_is_written_in_the_lines_own_document_and_validates(xrechnung):
    invoice = an_einvoice(["20.00", "17.74", "3.10"])
    note = "Korrektur zu Rechnung INV-2026-0031 vom 01.11.2026"
    invoice = dataclasses.replace(invoice, lines=(*invoice.lines[:2], dataclasses.replace(invoice.lines[2], note=note)))
    xml = xrechnung_xml(invoice)

    assert xml_texts(xml, "//ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content") == [note]  # BT-127
    assert xml_texts(xml, "(//ram:AssociatedDocumentLineDocument)[3]/ram:IncludedNote/ram:Content") == [note]
    result = xrechnung.validate(xml, "line note")
    assert result.ok, result.format()
    assert {finding.id for finding in result.warnings} <= {"BR-DE-20"}, result.format(include_warnings=True)


def test_a_zero_total_has_payment_terms_but_no_due_date():
    xml = xrechnung_xml(CASES["total 0.00 (credit covers it), SEPA"])

    assert xml_texts(xml, SUMMATION + "DuePayableAmount") == ["0.00"]
    assert xml_texts(xml, "//ram:SpecifiedTradePaymentTerms/ram:Description") == [
        "Der Rechnungsbetrag wird per SEPA-Lastschrift eingezogen."
    ]
    assert xml_texts(xml, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/*") == []


def test_a_card_payment_names_only_the_last_four_digits_and_the_holder():
    xml = xrechnung_xml(CASES["german customer, card"])

    assert xml_texts(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == ["48"]
    assert xml_texts(xml, "//ram:ApplicableTradeSettlementFinancialCard/ram:ID") == ["4242"]
    assert xml_texts(xml, "//ram:ApplicableTradeSettlementFinancialCard/ram:CardholderName") == ["Kunde AG"]
    assert xml_texts(xml, "//ram:DirectDebitMandateID") == [] and xml_texts(xml, "//ram:CreditorReferenceID") == []


def test_a_credit_note_naming_its_preceding_invoice_is_a_valid_xrechnung_with_no_errors(xrechnung):
    for name, credit_note in {
        "cancellation, SEPA": a_credit_note(),
        "partial, card, English": a_credit_note(["5.00"], cancels_in_full=False, payment=CARD, language="en"),
        "reverse charge": a_credit_note(category=VatCategory.REVERSE_CHARGE, buyer=AUSTRIAN_BUYER),
    }.items():
        result = xrechnung.validate(xrechnung_xml(credit_note), f"381, {name}")

        assert result.ok, result.format()
        assert {finding.id for finding in result.warnings} <= {"BR-DE-20"}, result.format(include_warnings=True)


def test_a_credit_note_carries_type_381_and_its_preceding_invoice_after_the_summation():
    xml = xrechnung_xml(a_credit_note())

    assert xml_texts(xml, "//rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    reference = "//ram:ApplicableHeaderTradeSettlement/ram:InvoiceReferencedDocument/"
    assert xml_texts(xml, reference + "ram:IssuerAssignedID") == ["INV-2026-0042"]  # BT-25
    assert _tree(xml).xpath(
        reference + "ram:FormattedIssueDateTime/qdt:DateTimeString[@format='102']/text()", namespaces=NS
    ) == ["20261201"]  # BT-26
    settlement = _tree(xml).xpath("//ram:ApplicableHeaderTradeSettlement", namespaces=NS)[0]
    assert [etree.QName(child).localname for child in settlement][-2:] == [
        "SpecifiedTradeSettlementHeaderMonetarySummation",
        "InvoiceReferencedDocument",
    ]


def test_an_invoice_of_a_period_is_380_and_refers_to_no_other():
    xml = xrechnung_xml(an_einvoice())

    assert xml_texts(xml, "//rsm:ExchangedDocument/ram:TypeCode") == ["380"]
    assert xml_texts(xml, "//ram:InvoiceReferencedDocument/*") == []


def test_validation_fails_once_the_preceding_invoices_number_is_blanked(xrechnung):
    xml = xrechnung_xml(a_credit_note()).replace(b">INV-2026-0042</ram:IssuerAssignedID>", b"></ram:IssuerAssignedID>")

    assert "BR-55" in xrechnung.validate(xml, "no BT-25").error_ids()


def test_validation_fails_once_the_buyer_reference_is_removed(xrechnung):
    tree = _tree(xrechnung_xml(an_einvoice()))
    for node in tree.xpath("//ram:BuyerReference", namespaces=NS):
        node.getparent().remove(node)

    result = xrechnung.validate(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"), "no BT-10")

    assert not result.ok and "BR-DE-15" in result.error_ids(), result.format()


def test_validation_fails_once_a_line_amount_no_longer_sums(xrechnung):
    xml = xrechnung_xml(an_einvoice()).replace(b"<ram:LineTotalAmount>17.74<", b"<ram:LineTotalAmount>17.75<")

    assert "BR-CO-10" in xrechnung.validate(xml, "17.75").error_ids()


def test_the_invoice_a_finalized_record_becomes_is_a_valid_xrechnung(xrechnung):
    """What the invoice job hands the writer: the use case's mapping of a record, account and seller."""
    invoice = einvoice_of(a_finalized_invoice(), a_buyer_account(payment="card"), SELLER_SETTINGS, "de")

    result = xrechnung.validate(xrechnung_xml(invoice), "from the record")

    assert result.ok, result.format()
    assert invoice.document_type is DocumentType.COMMERCIAL_INVOICE and invoice.preceding == ()


@settings(max_examples=25, deadline=None)
@given(cents=st.lists(st.integers(min_value=-100_000, max_value=1_000_000), min_size=1, max_size=6))
def test_any_line_amounts_give_a_valid_xrechnung_whose_totals_are_the_inputs(xrechnung, cents):
    amounts = [Decimal(c) / 100 for c in cents]
    taxable = sum(amounts, Decimal(0))
    tax = category_tax(taxable, Decimal(19))
    xml = xrechnung_xml(an_einvoice([f"{amount:.2f}" for amount in amounts]))

    result = xrechnung.validate(xml, f"lines {cents}")

    assert result.ok, result.format()
    assert [
        Decimal(text) for text in xml_texts(xml, "//ram:IncludedSupplyChainTradeLineItem//ram:LineTotalAmount")
    ] == amounts
    header_tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:"
    assert Decimal(xml_texts(xml, header_tax + "BasisAmount")[0]) == taxable
    assert Decimal(xml_texts(xml, header_tax + "CalculatedAmount")[0]) == tax
    assert [
        Decimal(xml_texts(xml, SUMMATION + field)[0])
        for field in (
            "LineTotalAmount",
            "TaxBasisTotalAmount",
            "TaxTotalAmount",
            "GrandTotalAmount",
            "DuePayableAmount",
        )
    ] == [taxable, taxable, tax, taxable + tax, taxable + tax]


# --- drafthorse's XSD check and the writer's own refusals: these run without the rules ---------------------


def test_drafthorses_xsd_check_runs_and_its_refusal_is_an_einvoice_rejected():
    no_line_id = an_einvoice()
    no_line_id = dataclasses.replace(
        no_line_id, lines=(dataclasses.replace(no_line_id.lines[0], line_id=""), *no_line_id.lines[1:])
    )

    with pytest.raises(EInvoiceRejected, match="XSD refused"):
        xrechnung_xml(no_line_id)


def test_without_lxml_the_writer_does_not_import_rather_than_write_unchecked_files():
    code = (
        "import sys; sys.modules['lxml'] = None; sys.modules['lxml.etree'] = None\n"
        "import billing_core.adapters.einvoice_cii"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    assert result.returncode != 0 and "lxml" in result.stderr.strip().splitlines()[-1], result.stderr


def test_the_writer_refuses_what_the_domains_rules_refuse_naming_every_problem():
    """The rules themselves are tested in ``tests/unit/domain/test_einvoice_rules.py``."""
    invoice = an_einvoice(buyer_reference=" ", payment=dataclasses.replace(CARD, card_last4=None))

    with pytest.raises(EInvoiceInvalid, match="^invoice INV-2026-0042: there is no buyer reference; .*no card_last4$"):
        xrechnung_xml(invoice)


def test_a_second_preceding_invoice_is_refused_as_cii_has_room_for_one():
    second = PrecedingInvoice("INV-2026-0031", date(2026, 11, 1))
    credit_note = a_credit_note()
    credit_note = dataclasses.replace(credit_note, preceding=(*credit_note.preceding, second))

    with pytest.raises(EInvoiceRejected, match="room for one preceding invoice"):
        xrechnung_xml(credit_note)


def test_the_issue_date_and_periods_are_written_as_days():
    xml = xrechnung_xml(an_einvoice(issue_date=date(2026, 12, 2)))

    assert xml_texts(xml, "//rsm:ExchangedDocument/ram:IssueDateTime/*") == ["20261202"]
    assert xml_texts(xml, "//ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod/*/*") == [
        "20261101",
        "20261130",
        "20261101",
        "20261130",
    ]
