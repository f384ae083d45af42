"""The seller every invoice names (§14 UStG): validated, and the run refuses to start while it is incomplete."""

from __future__ import annotations

import pytest

from billing_core.domain.costs import PAYER, Period
from billing_core.domain.errors import ConfigurationError
from billing_core.domain.invoice_plan import BillingPolicy
from billing_core.domain.seller import Seller, SellerIncomplete, valid_vat_id
from billing_core.use_cases.billing_run import BillingRun, lease_name
from tests.support.fakes import FakeAccountRepository, FakeCostSource, FakeLeases, FakeQueue, FakeRunRecords

COMPLETE = dict(
    name="Beispiel Hosting GmbH",
    street="Musterstraße 1",
    postal_code="10115",
    city="Berlin",
    country="DE",
    vat_id="DE 136 695 976",
    contact_name="Erika Mustermann",
    contact_phone="+49 30 1234567",
    contact_email="rechnung@beispiel-hosting.de",
)


def test_a_complete_seller_compacts_its_vat_id_and_creditor_id():
    seller = Seller(**COMPLETE, sepa_creditor_id="DE98 ZZZ0 9999 9999 99")

    assert seller.missing() == [] and seller.vat_id == "DE136695976"
    assert seller.sepa_creditor_id == "DE98ZZZ09999999999"


@pytest.mark.parametrize("bad", ["DE136695970", "DE12345", "XX136695976", "136695976"])
def test_a_vat_id_with_a_wrong_check_digit_format_or_country_is_refused(bad):
    with pytest.raises(ConfigurationError, match="not a valid EU VAT id"):
        valid_vat_id(bad)


def test_a_wrong_creditor_id_is_refused():
    with pytest.raises(ConfigurationError, match="SEPA_CREDITOR_ID"):
        Seller(**COMPLETE, sepa_creditor_id="DE99ZZZ09999999999")


def test_missing_fields_are_named_by_their_settings_and_a_tax_number_replaces_the_vat_id():
    partial = Seller(name="Beispiel Hosting GmbH", city=" ", vat_id=None)

    assert partial.missing() == [
        "SELLER_STREET",
        "SELLER_POSTAL_CODE",
        "SELLER_CITY",
        "SELLER_COUNTRY",
        "SELLER_CONTACT_NAME",
        "SELLER_CONTACT_PHONE",
        "SELLER_CONTACT_EMAIL",
        "SELLER_VAT_ID or SELLER_TAX_NUMBER",
    ]
    assert Seller(**{**COMPLETE, "vat_id": None}, tax_number="27/123/45678").missing() == []


def test_the_run_refuses_to_start_without_the_seller_and_writes_nothing():
    leases, runs, queue = FakeLeases(), FakeRunRecords(), FakeQueue()
    run = BillingRun(
        accounts=FakeAccountRepository(),
        costs=FakeCostSource(()),
        leases=leases,
        runs=runs,
        billing_jobs=queue,
        policy=BillingPolicy(currency="USD"),
        attribution=PAYER,
        seller=Seller(name="Beispiel Hosting GmbH"),
    )

    with pytest.raises(SellerIncomplete, match="SELLER_STREET.*SELLER_VAT_ID or SELLER_TAX_NUMBER"):
        run.start(Period(2024, 11), owner="a", trigger="cli")
    assert runs.get(Period(2024, 11)) is None and queue.messages == []
    assert leases.acquire_lease(lease_name(Period(2024, 11)), "b", 60)  # never taken
