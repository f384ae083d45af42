"""The planning view of stored accounts."""
from decimal import Decimal

from billing_core.use_cases.accounts import account_from_item


def test_an_account_without_scope_bills_the_whole_payer_account():
    account = account_from_item({"userId": "u1", "costScope": ""})
    assert (account.user_id, account.cost_scope, account.base_fee_override) == ("u1", None, None)


def test_scope_and_base_fee_override_are_taken_from_the_item():
    account = account_from_item({"userId": "u1", "costScope": "123456789012", "baseFeeOverride": Decimal("35.00")})
    assert account.cost_scope == "123456789012"
    assert account.base_fee_override == Decimal("35.00")


def test_a_missing_item_is_a_new_account_of_the_given_user():
    account = account_from_item(None, "u2")
    assert (account.user_id, account.cost_scope) == ("u2", None)
