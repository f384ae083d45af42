"""In-memory twins of the storage ports: the accounts and invoices tables and the five events-table ports.

Held to the same contract tests as the DynamoDB adapters (``tests/contracts``): conditional writes
refuse like DynamoDB does, floats are refused, and every record is stored the way the adapter stores
it (through its item codecs), so a value the table would not hold back is refused here too.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from billing_core.adapters.dynamodb_credit_notes import credit_note_from_item, credit_note_item
from billing_core.adapters.dynamodb_deliveries import (
    delivery_from_item,
    delivery_item,
    mailing_from_item,
    mailing_item,
)
from billing_core.adapters.dynamodb_items import (
    account_from_item,
    account_item,
    audit_entry_from_item,
    audit_entry_item,
    invoice_from_item,
    invoice_item,
    newest_rate_from_item,
    newest_rate_item,
    period_rate_from_item,
    period_rate_item,
)
from billing_core.domain.audit import AuditEntry
from billing_core.domain.costs import CostSnapshot, Period
from billing_core.domain.credit_notes import CreditNote, CreditNoteChanges
from billing_core.domain.deliveries import Delivery, DeliveryChanges, Mailing, MailingChanges, mailing_id_for
from billing_core.domain.fx import NewestRate, PeriodRate
from billing_core.domain.membership import DirectoryUser, InvitedUser, Membership
from billing_core.domain.records import (
    Account,
    AccountChanges,
    BillingRunRecord,
    Invoice,
    InvoiceChanges,
    field_names,
    forward_only,
    invoice_fields,
    invoice_from_fields,
)
from billing_core.errors import ConditionFailed, InvalidCursor, InvalidStoredRecord, NotFound
from billing_core.ports import (
    AccountRepository,
    AuditLog,
    CreditNoteRepository,
    DeliveryRepository,
    EventClaim,
    FieldIs,
    InvoiceRepository,
    Leases,
    Memberships,
    Page,
    PreviewCache,
    ProcessedEvents,
    RequestLimits,
    RunRecords,
    UserDirectory,
)
from billing_core.ports.rates import PeriodRates

RecordT = TypeVar("RecordT", Invoice, Account)
_KEY_FIELDS = {Invoice: {"account_id", "invoice_id"}, Account: {"account_id"}}


def _refuse_floats(changes: Mapping[str, Any]) -> None:
    for name, value in changes.items():
        if isinstance(value, float):
            raise TypeError(f"{name}: Float types are not supported. Use Decimal types instead.")


def _changed(current: RecordT, changes: Mapping[str, Any], conditions: Sequence[FieldIs]) -> RecordT:
    names = set(changes)
    if names - field_names(type(current)):
        raise ValueError(f"not fields of {type(current).__name__}: {sorted(names - field_names(type(current)))}")
    if names & _KEY_FIELDS[type(current)]:
        raise ValueError("key attributes cannot be updated")
    if not changes:
        raise ValueError("nothing to update")
    _refuse_floats(changes)
    if not all(condition.holds_for(current) for condition in conditions):
        raise ConditionFailed("condition failed", current=current)
    if isinstance(current, Invoice):
        return _as_stored(with_changes(current, changes))
    return _as_stored(dataclasses.replace(current, **changes))


def _as_stored(record: RecordT) -> RecordT:
    """The record as it comes back from the table (a status given as text comes back as the enum)."""
    if isinstance(record, Invoice):
        return invoice_from_item(invoice_item(record), "billing")
    return account_from_item(account_item(record), "payment-methods")


def with_changes(invoice: Invoice, changes: InvoiceChanges) -> Invoice:
    """``invoice`` with ``changes`` applied as DynamoDB's conditional update applies them (``forward_only``)."""
    return invoice_from_fields({**invoice_fields(invoice), **forward_only(invoice, changes)})


class FakeInvoiceRepository(InvoiceRepository):
    """Invoices in a dict keyed by (account id, invoice id)."""

    def __init__(self, invoices: Sequence[Invoice] = ()) -> None:
        self.records: dict[tuple[str, str], Invoice] = {}
        for invoice in invoices:
            self.create_if_absent(invoice)

    def get(self, account_id: str, invoice_id: str) -> Invoice | None:
        """The stored invoice, or ``None``."""
        return self.records.get((account_id, invoice_id))

    def create_if_absent(self, invoice: Invoice) -> bool:
        """Store unless the keys exist."""
        key = (invoice.account_id, invoice.invoice_id)
        if key in self.records:
            return False
        _refuse_floats(dataclasses.asdict(invoice))
        self.records[key] = _as_stored(invoice)
        return True

    def update(
        self, account_id: str, invoice_id: str, changes: InvoiceChanges, *, conditions: Sequence[FieldIs] = ()
    ) -> Invoice:
        """Conditional update, like the DynamoDB adapter."""
        current = self.records.get((account_id, invoice_id))
        if current is None:
            raise NotFound("no invoice with that key")
        self.records[(account_id, invoice_id)] = updated = _changed(current, changes, conditions)
        return updated

    def find_by_stripe_invoice_id(self, stripe_invoice_id: str) -> Invoice | None:
        """Linear search standing in for the index."""
        return next((i for i in self.records.values() if i.stripe.invoice_id == stripe_invoice_id), None)

    def list_for_account(self, account_id: str, *, limit: int = 20, cursor: str | None = None) -> Page[Invoice]:
        """Newest first by invoice id, with an opaque cursor."""
        ids = sorted((k[1] for k in self.records if k[0] == account_id), reverse=True)
        if cursor:
            try:
                after = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            except ValueError:
                raise InvalidCursor("not a cursor this system issued") from None
            if not isinstance(after, dict) or after.get("userId") != account_id:
                raise InvalidCursor("not a cursor this system issued")
            ids = [i for i in ids if i < after["invoiceId"]]
        page = ids[:limit]
        next_cursor = None
        if len(ids) > limit:
            next_cursor = base64.urlsafe_b64encode(
                json.dumps({"userId": account_id, "invoiceId": page[-1]}).encode()
            ).decode()
        return Page([self.records[(account_id, i)] for i in page], next_cursor)

    def list_all(
        self, *, period_label: str | None = None, status: str | None = None
    ) -> Iterator[Invoice | InvalidStoredRecord]:
        """Every invoice, filtered like the adapter's scan."""
        for invoice in list(self.records.values()):
            if (period_label is None or invoice.period.label == period_label) and (
                status is None or invoice.status.value == status
            ):
                yield invoice


class FakeCreditNotes(CreditNoteRepository):
    """Credit notes in a dict by id, stored through the adapter's item codecs."""

    def __init__(self) -> None:
        self.records: dict[str, CreditNote] = {}

    def get(self, credit_note_id: str) -> CreditNote | None:
        """The stored credit note, or ``None``."""
        return self.records.get(credit_note_id)

    def create_if_absent(self, note: CreditNote) -> bool:
        """Store unless the id is taken."""
        if note.credit_note_id in self.records:
            return False
        _refuse_floats(dataclasses.asdict(note))
        self.records[note.credit_note_id] = credit_note_from_item(credit_note_item(note), "events")
        return True

    def update(
        self, credit_note_id: str, changes: CreditNoteChanges, *, conditions: Sequence[FieldIs] = ()
    ) -> CreditNote:
        """Conditional update, like the DynamoDB adapter."""
        current = self.records.get(credit_note_id)
        if current is None:
            raise NotFound("no credit note with that id")
        if not changes:
            raise ValueError("nothing to update")
        if "credit_note_id" in changes:
            raise ValueError("key attributes cannot be updated")
        _refuse_floats(changes)
        if not all(condition.holds_for(current) for condition in conditions):
            raise ConditionFailed("condition failed", current=current)
        updated = dataclasses.replace(current, **changes)
        self.records[credit_note_id] = credit_note_from_item(credit_note_item(updated), "events")
        return self.records[credit_note_id]


class FakeDeliveries(DeliveryRepository):
    """Mailings and deliveries in dicts by id, stored through the adapter's item codecs."""

    def __init__(self) -> None:
        self.mailings: dict[str, Mailing] = {}
        self.records: dict[str, Delivery] = {}

    def get_mailing(self, document_id: str, round_number: int) -> Mailing | None:
        """The stored mailing, or ``None``."""
        return self.mailings.get(mailing_id_for(document_id, round_number))

    def create_mailing_if_absent(self, mailing: Mailing) -> bool:
        """Store unless that round is taken."""
        if mailing.mailing_id in self.mailings:
            return False
        self.mailings[mailing.mailing_id] = mailing_from_item(mailing_item(mailing), "events")
        return True

    def update_mailing(self, document_id: str, round_number: int, changes: MailingChanges) -> Mailing:
        """Update an existing mailing."""
        current = self.get_mailing(document_id, round_number)
        if current is None:
            raise NotFound("no mailing with that id")
        if not changes:
            raise ValueError("nothing to update")
        updated = dataclasses.replace(current, **changes)
        self.mailings[current.mailing_id] = mailing_from_item(mailing_item(updated), "events")
        return self.mailings[current.mailing_id]

    def get(self, delivery_id: str) -> Delivery | None:
        """The stored delivery, or ``None``."""
        return self.records.get(delivery_id)

    def create_if_absent(self, delivery: Delivery) -> bool:
        """Store unless claimed."""
        if delivery.delivery_id in self.records:
            return False
        self.records[delivery.delivery_id] = delivery_from_item(delivery_item(delivery), "events")
        return True

    def update(self, delivery_id: str, changes: DeliveryChanges, *, conditions: Sequence[FieldIs] = ()) -> Delivery:
        """Conditional update, like the DynamoDB adapter."""
        current = self.records.get(delivery_id)
        if current is None:
            raise NotFound("no delivery with that id")
        if not changes:
            raise ValueError("nothing to update")
        if "delivery_id" in changes:
            raise ValueError("key attributes cannot be updated")
        if not all(condition.holds_for(current) for condition in conditions):
            raise ConditionFailed("condition failed", current=current)
        updated = dataclasses.replace(current, **changes)
        self.records[delivery_id] = delivery_from_item(delivery_item(updated), "events")
        return self.records[delivery_id]

    def find_by_message_id(self, message_id: str) -> Delivery | None:
        """The delivery holding ``message_id``."""
        return next((d for d in self.records.values() if d.message_id == message_id), None)

    def all_mailings(self) -> Iterator[Mailing | InvalidStoredRecord]:
        """Every stored mailing."""
        yield from list(self.mailings.values())


class FakeAccountRepository(AccountRepository):
    """Accounts in a dict keyed by account id; ``invalid`` stands for items that are no valid account."""

    def __init__(self, accounts: Sequence[Account] = (), invalid: Sequence[InvalidStoredRecord] = ()) -> None:
        self.records: dict[str, Account] = {}
        self.invalid = list(invalid)
        for account in accounts:
            self.put(account)

    def get(self, account_id: str) -> Account | None:
        """The stored account, or ``None`` (an invalid one raises its error)."""
        for invalid in self.invalid:
            if invalid.record_id == account_id:
                raise invalid
        return self.records.get(account_id)

    def put(self, account: Account) -> None:
        """Create or replace."""
        _refuse_floats(dataclasses.asdict(account))
        self.records[account.account_id] = _as_stored(account)

    def list_accounts(self, *, page_size: int = 100) -> Iterator[Account | InvalidStoredRecord]:
        """Every account in key order, then the invalid ones."""
        for account_id in sorted(self.records):
            yield self.records[account_id]
        yield from self.invalid

    def find_by_stripe_customer_id(self, stripe_customer_id: str) -> Account | None:
        """Linear search standing in for the index."""
        return next((a for a in self.records.values() if a.stripe_customer_id == stripe_customer_id), None)

    def set_stripe_customer_id_if_absent(
        self, account_id: str, stripe_customer_id: str, changes: AccountChanges | None = None
    ) -> bool:
        """First writer wins; creates the account if needed."""
        _refuse_floats(changes or {})
        current = self.records.get(account_id) or Account(account_id)
        if current.stripe_customer_id is not None:
            return False
        self.records[account_id] = _as_stored(
            dataclasses.replace(current, **(changes or {}), stripe_customer_id=stripe_customer_id)
        )
        return True

    def update(self, account_id: str, changes: AccountChanges, *, conditions: Sequence[FieldIs] = ()) -> Account:
        """Conditional update, like the DynamoDB adapter."""
        current = self.records.get(account_id)
        if current is None:
            raise NotFound("no account with that key")
        self.records[account_id] = updated = _changed(current, changes, conditions)
        return updated


class _Clocked:
    """Epoch seconds from ``clock``, as the events table's adapters count them."""

    def __init__(self, clock: Callable[[], float] = lambda: 1_700_000_000.0) -> None:
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock())


class FakeProcessedEvents(_Clocked, ProcessedEvents):
    """Event claims in a dict: state, lease end and the number of applications."""

    def __init__(self, clock: Callable[[], float] = lambda: 1_700_000_000.0) -> None:
        super().__init__(clock)
        self.claims: dict[str, dict[str, Any]] = {}

    def claim_event(self, event_id: str, *, owner: str, lease_seconds: int, retention_seconds: int) -> EventClaim:
        """Claim unless done or under a live lease."""
        claim = self.claims.get(event_id)
        if claim is not None:
            if claim["state"] == "done":
                return EventClaim.DONE
            if claim["leaseUntil"] >= self._now():
                return EventClaim.IN_PROGRESS
        self.claims[event_id] = {
            "state": "processing",
            "owner": owner,
            "leaseUntil": self._now() + lease_seconds,
            "applications": (claim or {}).get("applications", 0),
        }
        return EventClaim.CLAIMED

    def _owns(self, event_id: str, owner: str) -> bool:
        claim = self.claims.get(event_id, {})
        return claim.get("state") == "processing" and claim.get("owner") == owner

    def renew_event_claim(self, event_id: str, *, owner: str, lease_seconds: int) -> bool:
        """Extend the owner's processing claim."""
        if not self._owns(event_id, owner):
            return False
        self.claims[event_id]["leaseUntil"] = self._now() + lease_seconds
        return True

    def complete_event(self, event_id: str, *, owner: str, retention_seconds: int) -> bool:
        """Mark the owner's claim done and count one application (done already by the owner: nothing more)."""
        if not self._owns(event_id, owner):
            claim = self.claims.get(event_id, {})
            return claim.get("state") == "done" and claim.get("owner") == owner
        claim = self.claims[event_id]
        claim.update(state="done", leaseUntil=None, applications=claim.get("applications", 0) + 1)
        return True

    def release_event(self, event_id: str, *, owner: str) -> None:
        """Drop the owner's processing claim."""
        if self._owns(event_id, owner):
            del self.claims[event_id]

    def event_applications(self, event_id: str) -> int:
        """Applications counted by ``complete_event``."""
        return int(self.claims.get(event_id, {}).get("applications", 0))


class FakeRequestLimits(_Clocked, RequestLimits):
    """Request counts per key and window in a dict (a refused request is not counted)."""

    def __init__(self, clock: Callable[[], float] = lambda: 1_700_000_000.0) -> None:
        super().__init__(clock)
        self.hits: dict[tuple[str, int], int] = {}

    def take(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        now = self._now()
        window = now - now % window_seconds
        if self.hits.get((key, window), 0) >= limit:
            return max(1, window + window_seconds - now)
        self.hits[(key, window)] = self.hits.get((key, window), 0) + 1
        return None


class FakeLeases(_Clocked, Leases):
    """Leases in a dict: name -> (owner, expires at)."""

    def __init__(self, clock: Callable[[], float] = lambda: 1_700_000_000.0) -> None:
        super().__init__(clock)
        self.leases: dict[str, tuple[str, int]] = {}

    def acquire_lease(self, name: str, owner: str, ttl_seconds: int) -> bool:
        """Free, expired or ours: take it."""
        held = self.leases.get(name)
        if held and held[0] != owner and held[1] >= self._now():
            return False
        self.leases[name] = (owner, self._now() + ttl_seconds)
        return True

    def release_lease(self, name: str, owner: str) -> bool:
        """Only the owner releases."""
        held = self.leases.get(name)
        if not held or held[0] != owner:
            return False
        del self.leases[name]
        return True


class FakeRunRecords(_Clocked, RunRecords):
    """Run records in a dict: period -> (record, expires at)."""

    def __init__(self, clock: Callable[[], float] = lambda: 1_700_000_000.0) -> None:
        super().__init__(clock)
        self.records: dict[Period, tuple[BillingRunRecord, int]] = {}

    def put(self, record: BillingRunRecord, *, ttl_seconds: int) -> None:
        """Store or replace."""
        self.records[record.period] = (record, self._now() + ttl_seconds)

    def get(self, period: Period) -> BillingRunRecord | None:
        """The record, unless absent or expired."""
        stored = self.records.get(period)
        return None if stored is None or stored[1] < self._now() else stored[0]


class FakePeriodRates(PeriodRates):
    """Period rates in a dict, stored as the adapter's items: the first rate of a period stays."""

    def __init__(self) -> None:
        self.items: dict[Period, dict[str, Any]] = {}
        self.newest_item: dict[str, Any] | None = None

    def get(self, period: Period) -> PeriodRate | None:
        """The stored rate, or ``None``."""
        item = self.items.get(period)
        return None if item is None else period_rate_from_item(item, "fake-events")

    def put_if_absent(self, rate: PeriodRate) -> PeriodRate:
        """Store unless the period has a rate; the stored one."""
        if rate.period not in self.items:
            self.items[rate.period] = period_rate_item(rate)
        stored = self.get(rate.period)
        assert stored is not None
        return stored

    def newest(self) -> NewestRate | None:
        """The newest published rate kept, or ``None``."""
        return None if self.newest_item is None else newest_rate_from_item(self.newest_item, "fake-events")

    def keep_newest(self, rate: NewestRate) -> None:
        """Keep unless a later reading is kept."""
        if self.newest_item is None or int(self.newest_item["readAt"]) <= rate.read_at:
            self.newest_item = newest_rate_item(rate)


class FakePreviewCache(_Clocked, PreviewCache):
    """Cost snapshots in a dict: key -> (snapshot, expires at)."""

    def __init__(self, clock: Callable[[], float] = lambda: 1_700_000_000.0) -> None:
        super().__init__(clock)
        self.snapshots: dict[str, tuple[CostSnapshot, int]] = {}

    def put(self, key: str, snapshot: CostSnapshot, *, ttl_seconds: int) -> None:
        """Store or replace."""
        if not isinstance(snapshot.forecast_total, Decimal):
            raise TypeError("forecast_total must be a Decimal")
        self.snapshots[key] = (snapshot, self._now() + ttl_seconds)

    def get(self, key: str) -> CostSnapshot | None:
        """The snapshot, unless absent or expired."""
        stored = self.snapshots.get(key)
        return None if stored is None or stored[1] < self._now() else stored[0]


class FakeAuditLog(AuditLog):
    """The audit log in a list, through the adapter's item codec."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def record(self, entry: AuditEntry) -> None:
        """Keep the entry once."""
        self.items.setdefault(entry.entry_id, audit_entry_item(entry))

    def entries(self, *, account_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first, of one account or all."""
        found = [
            audit_entry_from_item(item, "fake-events")
            for item in self.items.values()
            if account_id is None or item.get("accountId") == account_id
        ]
        return sorted(found, key=lambda entry: (entry.at, entry.entry_id), reverse=True)[:limit]


class FakeMemberships(Memberships):
    """Memberships in a dict: the first one of a person stays."""

    def __init__(self) -> None:
        self.records: dict[str, Membership] = {}

    def account_of(self, user_sub: str) -> str | None:
        """The account of the person's membership, or ``None``."""
        membership = self.records.get(user_sub)
        return None if membership is None else membership.account_id

    def add_if_absent(self, membership: Membership) -> Membership:
        """Keep unless the person has one."""
        return self.records.setdefault(membership.user_sub, membership)


class FakeUserDirectory(UserDirectory):
    """Users by e-mail, each with a made-up sub; hands out a temporary password like the local stack."""

    def __init__(self, operator_group: str = "operator") -> None:
        self.users: dict[str, str] = {}  # email -> sub
        self.admins: set[str] = set()
        self.operators: set[str] = set()  # subs in the operator group
        self._operator_group = operator_group

    @property
    def operator_group(self) -> str:
        return self._operator_group

    def add_user(self, email: str, sub: str, *, operator: bool = False) -> None:
        """A person who exists already (signed up, or an operator)."""
        self.users[email] = sub
        if operator:
            self.operators.add(sub)

    def find_user(self, email: str) -> DirectoryUser | None:
        sub = self.users.get(email)
        if sub is None:
            return None
        groups = {"admin"} if sub in self.admins else set()
        groups |= {self._operator_group} if sub in self.operators else set()
        return DirectoryUser(sub, email, frozenset(groups))

    def invite_admin(self, email: str) -> InvitedUser:
        """Create (or find) the user and put them into the admin group."""
        created = email not in self.users
        sub = self.users.setdefault(email, f"sub-{len(self.users) + 1}")
        self.admins.add(sub)
        return InvitedUser(sub, email, "Temporary1!" if created else None, created)
