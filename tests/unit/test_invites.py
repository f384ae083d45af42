"""Invitations never move a person between customers (one account per person, operators stay operators), and
account ids are ones every URL, file name and key can carry."""

from __future__ import annotations

import pytest

from billing_core.domain.account_profile import InvalidAccountField
from billing_core.domain.costs import CostAttribution
from billing_core.domain.records import Account
from billing_core.use_cases.operator_accounts import AccountExists, AccountProfile, OperatorAccounts, valid_account_id
from tests.support.fakes import (
    FakeAccountRepository,
    FakeAuditLog,
    FakeMemberships,
    FakePaymentGateway,
    FakeUserDirectory,
)


class Operator:
    def __init__(self) -> None:
        self.accounts = FakeAccountRepository()
        self.memberships = FakeMemberships()
        self.users = FakeUserDirectory()
        self.audit = FakeAuditLog()
        self.use_case = OperatorAccounts(
            self.accounts,
            FakePaymentGateway(),
            self.audit,
            attribution=CostAttribution.payer(),
            memberships=self.memberships,
            users=self.users,
        )
        for account_id in ("kunde-77", "kunde-78"):
            self.use_case.create(
                AccountProfile(name=f"{account_id} GmbH", email=f"billing@{account_id}.de"),
                actor="operator:test",
                account_id=account_id,
            )

    def invite(self, account_id: str, email: str):
        return self.use_case.invite(account_id, email, actor="operator:test")


@pytest.fixture
def operator() -> Operator:
    return Operator()


def test_an_admin_whose_account_came_from_their_own_card_save_is_not_moved_into_another(operator):
    # Anna signed in and saved her card: her account is keyed by her sub.
    operator.users.add_user("anna@own.de", "sub-anna")
    operator.accounts.put(Account("sub-anna", stripe_customer_id="cus_anna", email="anna@own.de"))

    with pytest.raises(AccountExists, match="account of their own \\(sub-anna\\)"):
        operator.invite("kunde-77", "anna@own.de")

    assert operator.memberships.account_of("sub-anna") is None
    assert "sub-anna" not in operator.users.admins  # refused before anything was changed
    assert [entry.action for entry in operator.audit.entries(account_id="kunde-77")] == ["account.create"]


def test_a_member_of_another_account_is_refused_and_the_same_invitation_again_changes_nothing(operator):
    first = operator.invite("kunde-77", "ben@zwei.de")

    again = operator.invite("kunde-77", "ben@zwei.de")
    with pytest.raises(AccountExists, match="admin of account kunde-77"):
        operator.invite("kunde-78", "ben@zwei.de")

    assert again.sub == first.sub and not again.created
    assert operator.memberships.account_of(first.sub) == "kunde-77"


def test_an_address_in_other_letters_is_the_same_person(operator):
    first = operator.invite("kunde-77", "ben@zwei.de")

    with pytest.raises(AccountExists, match="kunde-77"):
        operator.invite("kunde-78", "BEN@Zwei.DE")
    same = operator.invite("kunde-77", "Ben@zwei.de")

    assert same.sub == first.sub
    assert set(operator.users.users) == {"ben@zwei.de"}  # one user, not two


def test_an_operator_is_not_made_a_customers_admin(operator):
    operator.users.add_user("ops@betreiber.de", "sub-ops", operator=True)

    with pytest.raises(AccountExists, match="is an operator"):
        operator.invite("kunde-77", "ops@betreiber.de")

    assert "sub-ops" not in operator.users.admins
    assert operator.memberships.account_of("sub-ops") is None


@pytest.mark.parametrize("account_id", [".", "..", "a..b", "-kunde", "kunde/1", "", "x" * 129, "kunde 1"])
def test_an_account_id_that_could_not_name_the_account_everywhere_is_refused(operator, account_id):
    with pytest.raises(InvalidAccountField, match="id"):
        operator.use_case.create(
            AccountProfile(name="Punkt GmbH", email="billing@punkt.de"), actor="operator:test", account_id=account_id
        )
    assert operator.accounts.get(account_id) is None


def test_ordinary_account_ids_and_cognito_subs_are_account_ids():
    for account_id in ("kunde-77", "acct_3f2a9c", "d5901583-1cce-45a8-b6bc-a102b3b001e2", "team.a:eu@1"):
        assert valid_account_id(account_id) == account_id
