"""How records are stored: accounts and invoices to and from DynamoDB items, and what invalid items raise."""

from decimal import Decimal

import pytest

from billing_core.adapters.dynamodb_items import (
    INVOICE_CODECS,
    account_from_item,
    account_item,
    changes_to_update,
    invoice_from_item,
    invoice_item,
)
from billing_core.domain.records import Account, SavedPaymentMethod, SetupFailure
from billing_core.errors import InvalidStoredRecord
from tests.support.records import an_invoice

TABLE = "payment-methods"


def test_an_account_without_scope_bills_the_whole_payer_account():
    account = account_from_item({"userId": "u1", "costScope": ""}, TABLE)
    assert (account.account_id, account.cost_scope, account.base_fee_override) == ("u1", None, None)


def test_scope_and_base_fee_override_are_taken_from_the_item():
    account = account_from_item(
        {"userId": "u1", "costScope": "123456789012", "baseFeeOverride": Decimal("35.00")}, TABLE
    )
    assert account.cost_scope == "123456789012"
    assert account.base_fee_override == Decimal("35.00")


@pytest.mark.parametrize(
    ("item", "attribute"),
    [
        ({"userId": "u1", "baseFeeOverride": "25.00"}, "baseFeeOverride"),  # a string, not a number
        ({"userId": "u1", "costScope": {"account": "123456789012"}}, "costScope"),
        ({"userId": "u1", "baseFeeOverride": Decimal("-1.00")}, "item"),
        ({"userId": "u1", "baseFeeOverride": Decimal("25.001")}, "item"),
        ({"costScope": "123456789012"}, "userId"),
    ],
)
def test_an_invalid_account_item_is_an_error_naming_the_item_and_attribute(item, attribute):
    with pytest.raises(InvalidStoredRecord) as raised:
        account_from_item(item, TABLE)
    assert raised.value.table == TABLE and raised.value.field == attribute
    assert raised.value.key == f"userId={item.get('userId')}" and raised.value.record_id == item.get("userId")


def test_an_account_comes_back_from_its_item_as_it_was():
    account = Account(
        "u1",
        cost_scope="123456789012",
        base_fee_override=Decimal("35.00"),
        stripe_customer_id="cus_1",
        email="admin@example.com",
        payment_method=SavedPaymentMethod("pm_1", "card", "visa", "4242"),
        payment_method_changed_at=5,
        last_setup_error=SetupFailure("seti_1", "card_declined", "insufficient_funds"),
        setup_failed_at=6,
        customer_synced_at=7,
        created_at=1,
        updated_at=8,
    )
    item = account_item(account)
    assert item["defaultPaymentMethod"] == item["paymentMethod"] == "pm_1" and item["brand"] == "visa"
    assert account_from_item(item, TABLE) == account


def test_an_invoice_comes_back_from_its_item_as_it_was():
    invoice = an_invoice(
        stripe_invoice_id="in_1", number="A-1", lines_added=frozenset({"aws", "base-fee"}), key_generation=2, paid_at=9
    )
    item = invoice_item(invoice)
    assert item["amount"] == Decimal("37.74") and item["period"]["label"] == "2024-11"
    assert item["linesAdded"] == {"aws", "base-fee"} and item["status"] == "pending"
    assert invoice_from_item(item, "billing") == invoice


def test_an_invoice_item_with_money_stored_as_text_is_refused():
    item = invoice_item(an_invoice())
    item["amount"] = "37.74"
    with pytest.raises(InvalidStoredRecord, match="amount is a str, expected a number"):
        invoice_from_item(item, "billing")


def test_setting_a_field_to_none_removes_its_attributes():
    update = changes_to_update({"number": None, "stripe_total": 3774}, INVOICE_CODECS)
    assert (update.assign, update.remove) == ({"stripeTotal": 3774}, ["number"])


def test_write_once_fields_are_set_only_if_absent_and_never_removed_and_lines_only_grow():
    update = changes_to_update({"finalized_at": 5, "paid_at": None, "lines_added": frozenset({"aws"})}, INVOICE_CODECS)
    assert (update.assign, update.set_once, update.add, update.remove) == (
        {},
        {"finalizedAt": 5},
        {"linesAdded": {"aws"}},
        [],
    )
