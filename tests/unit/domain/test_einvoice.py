"""The e-invoice model: its VAT categories and what an invoice holds of them."""

from __future__ import annotations

from billing_core.domain.einvoice import VatCategory
from tests.unit.einvoice_fixtures import US_BUYER, an_einvoice


def test_the_untaxed_categories_are_those_with_an_exemption_reason():
    assert [category for category in VatCategory if category.untaxed] == [
        VatCategory.REVERSE_CHARGE,
        VatCategory.NOT_TAXABLE,
        VatCategory.SMALL_BUSINESS,
    ]


def test_an_invoice_has_a_category_in_its_lines_or_its_breakdown():
    invoice = an_einvoice(category=VatCategory.NOT_TAXABLE, buyer=US_BUYER)

    assert invoice.has_category(VatCategory.NOT_TAXABLE)
    assert not invoice.has_category(VatCategory.STANDARD)
