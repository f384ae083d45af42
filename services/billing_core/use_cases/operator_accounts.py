"""The operator's accounts: create, change, disable and enable customer accounts, each action audited.

Creating an account creates its Stripe customer once: the customer is created under the idempotency
key ``customer:<account id>`` (the key the Billing tab uses too) and recorded only if the account has
none, so a retried or concurrent ``create`` ends with one account and one customer:

    create acct_x ─> account has a customer? ── yes ─> same profile? ── yes ─> done (nothing new)
                              │ no                          └─ no ─> AccountExists
                              └─> Stripe customer (key customer:acct_x) ─> record it if absent ─> audit

A change goes to Stripe first (name, e-mail, address, locale), then to the account, then to the audit
log: a crash in between is repaired by running the same command again.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, cast

from billing_core.domain.account_profile import (
    InvalidAccountField,
    PostalAddress,
    valid_address,
    valid_base_fee_amount,
    valid_buyer_reference,
    valid_cost_scope,
    valid_country,
    valid_customer_vat_id,
    valid_email,
    valid_language,
    valid_name,
)
from billing_core.domain.audit import AuditEntry
from billing_core.domain.costs import CostAttribution
from billing_core.domain.invoice_mail import InvalidMailAddress, valid_recipients
from billing_core.domain.membership import DirectoryUser, InvitedUser, Membership
from billing_core.domain.records import Account, AccountChanges
from billing_core.domain.tax import TaxPolicy
from billing_core.errors import BillingError, InvalidStoredRecord, SettingsError
from billing_core.ports import AccountRepository, AuditLog, Memberships, PaymentGateway, UserDirectory
from billing_core.ports.stripe import CustomerDetails


class AccountNotFound(BillingError):
    """No account has that id."""


class AccountExists(BillingError):
    """An account with that id exists with other values: ``update`` changes it."""


@dataclass(frozen=True)
class AccountProfile:
    """What an operator sets on an account; ``None`` leaves a field as it is (or unset, on create).

    The values are validated already (``billing_core.domain.account_profile``); the cost scope is
    checked here against how costs are grouped.
    """

    name: str | None = None
    email: str | None = None
    cost_scope: str | None = None
    base_fee_override: Decimal | None = None
    language: str | None = None
    country: str | None = None
    address: PostalAddress | None = None
    vat_id: str | None = None
    buyer_reference: str | None = None  # Leitweg-ID or order reference for the e-invoice (BT-10)
    invoice_emails: tuple[str, ...] | None = None  # who gets the invoices by e-mail

    @classmethod
    def from_text(
        cls,
        *,
        name: str | None = None,
        email: str | None = None,
        cost_scope: str | None = None,
        base_fee: str | None = None,
        language: str | None = None,
        country: str | None = None,
        address: tuple[str, str, str] | None = None,
        vat_id: str | None = None,
        buyer_reference: str | None = None,
        invoice_emails: list[str] | None = None,
    ) -> AccountProfile:
        """The profile an operator typed (CLI or API), each value given validated (``InvalidAccountField``).

        ``address`` is (street, postal code, city). The cost scope is checked when it is used,
        against how costs are grouped.
        """
        return cls(
            name=None if name is None else valid_name(name),
            email=None if email is None else valid_email(email),
            cost_scope=cost_scope,
            base_fee_override=None if base_fee is None else valid_base_fee_amount(base_fee),
            language=None if language is None else valid_language(language),
            country=None if country is None else valid_country(country),
            address=None if address is None else valid_address(*address),
            vat_id=None if vat_id is None else valid_customer_vat_id(vat_id),
            buyer_reference=None if buyer_reference is None else valid_buyer_reference(buyer_reference),
            invoice_emails=None if not invoice_emails else _invoice_recipients(invoice_emails),
        )

    def given(self) -> dict[str, object]:
        """The fields that are set, by record field name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def _invoice_recipients(addresses: list[str]) -> tuple[str, ...]:
    try:
        return valid_recipients(addresses)
    except InvalidMailAddress as bad:
        raise InvalidAccountField("invoice e-mail", str(bad)) from None


_CUSTOMER_FIELDS = ("name", "email", "address", "country", "language")  # a VAT id is set on create only


class OperatorAccounts:
    """Account administration for the operator (CLI and operator API)."""

    def __init__(
        self,
        accounts: AccountRepository,
        payments: PaymentGateway,
        audit: AuditLog,
        *,
        attribution: CostAttribution,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: f"acct_{uuid.uuid4().hex[:16]}",
        memberships: Memberships | None = None,
        users: UserDirectory | None = None,
        tax: TaxPolicy | None = None,
    ) -> None:
        self._tax = tax
        self._memberships = memberships
        self._users = users
        self._accounts = accounts
        self._payments = payments
        self._audit = audit
        self._attribution = attribution
        self._clock = clock
        self._new_id = new_id

    def get(self, account_id: str) -> Account:
        """The account; ``AccountNotFound`` if there is none."""
        account = self._accounts.get(account_id)
        if account is None:
            raise AccountNotFound(f"no account {account_id!r}")
        return account

    def all_accounts(self) -> Iterator[Account | InvalidStoredRecord]:
        """Every account (an unreadable item comes as its error, so one bad item hides no other)."""
        return self._accounts.list_accounts()

    def create(
        self, profile: AccountProfile, *, actor: str, account_id: str | None = None, reason: str | None = None
    ) -> Account:
        """A new account with its Stripe customer; repeating the same create returns the same account."""
        if not profile.name or not profile.email:
            raise InvalidAccountField("name" if not profile.name else "email", "is needed to create an account")
        self._check_scope(profile)
        account_id = valid_account_id(account_id) if account_id is not None else self._new_id()
        existing = self._accounts.get(account_id)
        if existing is not None and existing.stripe_customer_id is not None:
            if _differences(existing, profile.given()):
                raise AccountExists(f"account {account_id} exists with other values; use `billing accounts update`")
            return existing
        customer = self._payments.create_customer(
            account_id=account_id,
            idempotency_key=f"customer:{account_id}",
            details=dataclasses.replace(
                _details(profile), tax_exempt=self._tax_exempt(profile.country, profile.vat_id)
            ),
        )
        now = self._now_ms()
        changes: AccountChanges = {"created_at": now, "updated_at": now}
        changes.update(profile.given())  # type: ignore[typeddict-item]
        if not self._accounts.set_stripe_customer_id_if_absent(account_id, customer.id, changes):
            return self.get(account_id)  # a concurrent create recorded its customer first (the same one)
        created = self.get(account_id)
        self._audit.record(
            AuditEntry(
                entry_id=f"create:{account_id}",
                at=now,
                actor=actor,
                action="account.create",
                account_id=account_id,
                after=_shown(profile.given()) | {"stripeCustomer": customer.id},
                reason=reason,
            )
        )
        return created

    def update(
        self,
        account_id: str,
        profile: AccountProfile,
        *,
        actor: str,
        reason: str | None = None,
        clear: tuple[str, ...] = (),
    ) -> Account:
        """Change the fields given (and remove those in ``clear``: cost_scope, base_fee_override)."""
        self._check_scope(profile)
        account = self.get(account_id)
        wanted: dict[str, object] = {**profile.given(), **{name: None for name in clear}}
        if profile.invoice_emails is not None and account.undeliverable_emails:
            # Recipients given again are the operator's word that they are right: mailed again from now on.
            wanted["undeliverable_emails"] = ()
        changed = _differences(account, wanted)
        if not changed:
            return account
        if "vat_id" in changed and account.vat_id is not None:
            # Stripe keeps tax ids as objects of their own; changing one is not built yet.
            raise InvalidAccountField(
                "VAT id", f"is {account.vat_id} since the account was created; changing it is not supported"
            )
        if account.stripe_customer_id and set(changed) & set(_CUSTOMER_FIELDS):
            after = dataclasses.replace(account, **cast(dict[str, Any], changed))
            details = CustomerDetails(
                name=after.name,
                email=after.email,
                address=after.address,
                country=after.country,
                language=after.language,
                tax_exempt=self._tax_exempt(after.country, after.vat_id),
            )
            self._payments.update_customer(
                account.stripe_customer_id,
                details=details,
                idempotency_key=f"customer-update:{account_id}:{uuid.uuid4().hex}",
            )
        return self._change(account, changed, actor=actor, action="account.update", reason=reason)

    def disable(self, account_id: str, *, actor: str, reason: str) -> Account:
        """Stop billing the account (its invoices and history stay); a reason is required."""
        if not reason or not reason.strip():
            raise InvalidAccountField("reason", "say why the account is disabled")
        account = self.get(account_id)
        if account.disabled:
            return account
        return self._change(
            account, {"disabled_at": self._now_ms()}, actor=actor, action="account.disable", reason=reason
        )

    def enable(self, account_id: str, *, actor: str, reason: str | None = None) -> Account:
        """Bill the account again from the next run."""
        account = self.get(account_id)
        if not account.disabled:
            return account
        return self._change(account, {"disabled_at": None}, actor=actor, action="account.enable", reason=reason)

    def invite(self, account_id: str, email: str, *, actor: str, reason: str | None = None) -> InvitedUser:
        """Make ``email`` an admin of the account: a Cognito user in the admin group, and a member of it.

        Inviting the same person again changes nothing. Refused (``AccountExists``, before anything is
        created) for a person who already acts for another account, as its member or as the owner of an
        account of their own (saved from their Billing tab), and for an operator: one account per
        person, and an operator is never also a customer's admin. E-mail addresses are compared
        without regard to case, so ``Anna@x.de`` is the same person as ``anna@x.de``.
        """
        if self._users is None or self._memberships is None:
            raise SettingsError("inviting needs the Cognito user pool (COGNITO_USER_POOL_ID)")
        email = valid_email(email).lower()
        self.get(account_id)
        existing = self._users.find_user(email)
        if existing is not None:
            self._check_may_join(existing, email, account_id)
        user = self._users.invite_admin(email)
        stored = self._memberships.add_if_absent(Membership(user.sub, account_id, email, self._now_ms()))
        if stored.account_id != account_id:
            raise AccountExists(f"{email} is an admin of account {stored.account_id} already")
        self._audit.record(
            AuditEntry(
                entry_id=f"invite:{account_id}:{user.sub}",
                at=self._now_ms(),
                actor=actor,
                action="account.invite",
                account_id=account_id,
                after={"admin": email},
                reason=reason,
            )
        )
        return user

    def _check_may_join(self, person: DirectoryUser, email: str, account_id: str) -> None:
        assert self._users is not None and self._memberships is not None
        if self._users.operator_group in person.groups:
            raise AccountExists(f"{email} is an operator; an operator is not also a customer's admin")
        member_of = self._memberships.account_of(person.sub)
        if member_of is not None:
            if member_of != account_id:
                raise AccountExists(f"{email} is an admin of account {member_of} already")
            return
        if person.sub != account_id and self._accounts.get(person.sub) is not None:
            # Their own account (keyed by their sub) would be left behind, its invoices out of their sight.
            raise AccountExists(f"{email} has an account of their own ({person.sub}); one account per person")

    def audit_entries(self, *, account_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest operator actions, of one account or of all."""
        return self._audit.entries(account_id=account_id, limit=limit)

    def _change(
        self, account: Account, changed: Mapping[str, object], *, actor: str, action: str, reason: str | None
    ) -> Account:
        now = self._now_ms()
        changes: AccountChanges = {"updated_at": now}
        changes.update(changed)  # type: ignore[typeddict-item]
        updated = self._accounts.update(account.account_id, changes)
        self._audit.record(
            AuditEntry(
                entry_id=uuid.uuid4().hex,
                at=now,
                actor=actor,
                action=action,
                account_id=account.account_id,
                before=_shown({name: getattr(account, name) for name in changed}),
                after=_shown(changed),
                reason=reason,
            )
        )
        return updated

    def _check_scope(self, profile: AccountProfile) -> None:
        if profile.cost_scope is not None:
            valid_cost_scope(profile.cost_scope, self._attribution)

    def _tax_exempt(self, country: str | None, vat_id: str | None) -> str | None:
        """The Stripe customer's tax_exempt for this country and VAT id (reverse charge: "reverse")."""
        return None if self._tax is None else self._tax.treatment_for(country, vat_id).stripe_tax_exempt

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


# An account id names the account in URLs, file names and keys (invoice ids are inv_<period>_<account>):
# it starts with a letter or digit and has no "..", so "." and ".." (paths) are not account ids.
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")


def valid_account_id(value: str) -> str:
    """An account id the operator chose: 1-128 of letters, digits and _.:@-, from a letter or digit, no ".."."""
    if not _ACCOUNT_ID.fullmatch(value or "") or ".." in value:
        raise InvalidAccountField(
            "id", "must be 1-128 letters, digits and _ . : @ -, starting with a letter or digit, without '..'"
        )
    return value


def _differences(account: Account, wanted: Mapping[str, object]) -> dict[str, object]:
    return {name: value for name, value in wanted.items() if getattr(account, name) != value}


def _details(profile: AccountProfile) -> CustomerDetails:
    return CustomerDetails(
        name=profile.name,
        email=profile.email,
        address=profile.address,
        country=profile.country,
        language=profile.language,
        vat_id=profile.vat_id,
    )


def _shown(values: Mapping[str, object]) -> dict[str, str]:
    """Values as the audit log shows them: text, an address or a list on one line, a removed value as ''."""
    shown: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, PostalAddress):
            shown[name] = f"{value.line1}, {value.postal_code} {value.city}"
        elif name == "disabled_at":
            shown["disabled"] = "yes" if value is not None else "no"
        elif isinstance(value, tuple):
            shown[name] = ", ".join(str(part) for part in value)
        else:
            shown[name] = "" if value is None else str(value)
    return shown
