"""How costs are attributed to customers, and the kinds of charges, in the billing's own words."""

from __future__ import annotations

import pytest

from billing_core.domain.costs import PAYER, AttributionKind, ChargeCategory, ChargeType, CostAttribution


def test_only_attributions_by_account_or_tag_split_the_costs_between_accounts():
    assert not PAYER.splits and PAYER == CostAttribution.payer() == CostAttribution()
    assert CostAttribution.by_account().splits
    assert CostAttribution.by_tag("customer").splits


def test_an_attribution_by_tag_needs_its_key_and_no_other_has_one():
    with pytest.raises(ValueError, match="tag key"):
        CostAttribution(AttributionKind.TAG)
    with pytest.raises(ValueError, match="tag key"):
        CostAttribution.by_tag("")
    with pytest.raises(ValueError, match="tag key"):
        CostAttribution(AttributionKind.ACCOUNT, "customer")


def test_an_attribution_comes_back_from_its_key():
    for attribution in (PAYER, CostAttribution.by_account(), CostAttribution.by_tag("cost:center")):
        assert CostAttribution.from_key(attribution.key) == attribution
    assert [a.key for a in (PAYER, CostAttribution.by_account(), CostAttribution.by_tag("customer"))] == [
        "payer",
        "account",
        "tag:customer",
    ]
    for text in ("LINKED_ACCOUNT", "SERVICE", "tag:", ""):
        with pytest.raises(ValueError):
            CostAttribution.from_key(text)


def test_charge_types_of_one_category_stay_apart_by_name():
    reservation_fee = ChargeType(ChargeCategory.FEE, "RIFee")
    one_time_fee = ChargeType(ChargeCategory.FEE, "Fee")

    assert reservation_fee != one_time_fee and reservation_fee.category is one_time_fee.category
    assert str(reservation_fee) == "RIFee"
