"""Storage ports: the accounts and invoices tables, as repositories of domain records.

Repositories return and accept ``Account`` and ``Invoice`` (``billing_core.domain.records``); how a
record is stored is the adapter's business alone. A stored item that cannot be read as a record is
an ``InvalidStoredRecord`` naming the item, never a silently wrong value.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from billing_core.domain.audit import AuditEntry
from billing_core.domain.credit_notes import CreditNote, CreditNoteChanges, credit_note_id_for
from billing_core.domain.deliveries import Delivery, DeliveryChanges, Mailing, MailingChanges
from billing_core.domain.membership import DirectoryUser, InvitedUser, Membership
from billing_core.domain.records import Account, AccountChanges, Invoice, InvoiceChanges, record_value
from billing_core.errors import InvalidStoredRecord

RecordT = TypeVar("RecordT")


@dataclass(frozen=True)
class FieldIs:
    """Guard for a conditional write: the record's field ``name`` holds one of ``values``.

    ``name`` is a field of the record type (``status``, ``stripe_invoice_id``); ``or_absent`` also
    accepts a record where the field is not set (``None``). ``FieldIs.absent("x")`` means "x is not set".
    """

    name: str
    values: tuple[object, ...] = ()
    or_absent: bool = False

    @classmethod
    def one_of(cls, name: str, *values: object, or_absent: bool = False) -> FieldIs:
        """``name`` holds one of ``values`` (or, with ``or_absent``, is not set)."""
        return cls(name, tuple(values), or_absent)

    @classmethod
    def absent(cls, name: str) -> FieldIs:
        """``name`` is not set on the record."""
        return cls(name, (), True)

    def holds_for(self, record: object) -> bool:
        """Whether ``record`` meets this guard (the in-memory twin of the storage condition)."""
        value = record_value(record, self.name)
        if value is None:
            return self.or_absent
        return value in self.values


@dataclass(frozen=True)
class Page(Generic[RecordT]):
    """One page of a listing and the opaque cursor of the next page (``None`` on the last one)."""

    items: list[RecordT]
    next_cursor: str | None = None


class InvoiceRepository(abc.ABC):
    """Invoices in the invoices (``billing``) table: one per account and invoice id."""

    @abc.abstractmethod
    def get(self, account_id: str, invoice_id: str) -> Invoice | None:
        """The invoice, or ``None``."""

    @abc.abstractmethod
    def create_if_absent(self, invoice: Invoice) -> bool:
        """Store a new invoice; ``False`` (and nothing written) if one already exists for its keys."""

    @abc.abstractmethod
    def update(
        self, account_id: str, invoice_id: str, changes: InvoiceChanges, *, conditions: Sequence[FieldIs] = ()
    ) -> Invoice:
        """Apply ``changes`` to an existing invoice if every condition holds; returns the updated invoice.

        Raises ``NotFound`` if there is no such invoice and ``ConditionFailed`` (with the stored
        invoice as ``current``) if a condition does not hold.
        """

    @abc.abstractmethod
    def find_by_stripe_invoice_id(self, stripe_invoice_id: str) -> Invoice | None:
        """The invoice billed through the given Stripe invoice, or ``None``."""

    @abc.abstractmethod
    def list_for_account(self, account_id: str, *, limit: int = 20, cursor: str | None = None) -> Page[Invoice]:
        """An account's invoices, newest period first, ``limit`` per page."""

    @abc.abstractmethod
    def list_all(
        self, *, period_label: str | None = None, status: str | None = None
    ) -> Iterator[Invoice | InvalidStoredRecord]:
        """Every invoice of every account (the operator's view), optionally of one period and status.

        Read page by page; an item that is not a valid invoice comes as its error.
        """


class CreditNoteRepository(abc.ABC):
    """Credit notes, each its own record under its id ``cn_<YYYY-MM>_<account>_<n>`` (the n-th of its invoice).

    A credit note is claimed (``create_if_absent``) before Stripe hears of it and never deleted, so an
    invoice's credit notes are numbered 1, 2, ... without gaps: ``list_for_invoice`` reads them in order.
    """

    @abc.abstractmethod
    def get(self, credit_note_id: str) -> CreditNote | None:
        """The credit note, or ``None``."""

    @abc.abstractmethod
    def create_if_absent(self, note: CreditNote) -> bool:
        """Store a new credit note; ``False`` (and nothing written) if its id is taken."""

    @abc.abstractmethod
    def update(
        self, credit_note_id: str, changes: CreditNoteChanges, *, conditions: Sequence[FieldIs] = ()
    ) -> CreditNote:
        """Apply ``changes`` if every condition holds; ``NotFound`` / ``ConditionFailed`` like invoices."""

    def list_for_invoice(self, invoice_id: str) -> list[CreditNote]:
        """The invoice's credit notes in the order they were claimed (any state)."""
        notes: list[CreditNote] = []
        while (note := self.get(credit_note_id_for(invoice_id, len(notes) + 1))) is not None:
            notes.append(note)
        return notes


class DeliveryRepository(abc.ABC):
    """The e-mail of documents: mailings (one per sending of a document, numbered 1, 2, ... without gaps)
    and deliveries (one per recipient of a mailing), kept for good as the proof a document was sent."""

    @abc.abstractmethod
    def get_mailing(self, document_id: str, round_number: int) -> Mailing | None:
        """The document's ``round_number``-th sending, or ``None``."""

    @abc.abstractmethod
    def create_mailing_if_absent(self, mailing: Mailing) -> bool:
        """Claim a sending; ``False`` (nothing written) if that round of the document is taken."""

    @abc.abstractmethod
    def update_mailing(self, document_id: str, round_number: int, changes: MailingChanges) -> Mailing:
        """Apply ``changes`` to an existing mailing (``NotFound`` if there is none)."""

    @abc.abstractmethod
    def get(self, delivery_id: str) -> Delivery | None:
        """One recipient's delivery, or ``None``."""

    @abc.abstractmethod
    def create_if_absent(self, delivery: Delivery) -> bool:
        """Claim a delivery; ``False`` (nothing written) if it is claimed already."""

    @abc.abstractmethod
    def update(self, delivery_id: str, changes: DeliveryChanges, *, conditions: Sequence[FieldIs] = ()) -> Delivery:
        """Apply ``changes`` if every condition holds; ``NotFound`` / ``ConditionFailed`` like invoices.

        A change that sets ``message_id`` also makes the delivery findable by it.
        """

    @abc.abstractmethod
    def find_by_message_id(self, message_id: str) -> Delivery | None:
        """The delivery SES sent as ``message_id`` (what its events name), or ``None``."""

    @abc.abstractmethod
    def all_mailings(self) -> Iterator[Mailing | InvalidStoredRecord]:
        """Every mailing of every document (the operator's list of undelivered ones), page by page."""

    def mailings_of(self, document_id: str) -> list[Mailing]:
        """The document's sendings, first to last."""
        mailings: list[Mailing] = []
        while (mailing := self.get_mailing(document_id, len(mailings) + 1)) is not None:
            mailings.append(mailing)
        return mailings


class AccountRepository(abc.ABC):
    """Accounts in the accounts table (deployed as ``payment-methods``): one per account id."""

    @abc.abstractmethod
    def get(self, account_id: str) -> Account | None:
        """The account, or ``None``."""

    @abc.abstractmethod
    def put(self, account: Account) -> None:
        """Create or replace an account (provisioning and seeding)."""

    @abc.abstractmethod
    def list_accounts(self, *, page_size: int = 100) -> Iterator[Account | InvalidStoredRecord]:
        """Every account, read page by page; an item that is not a valid account comes as its error.

        The billing run skips (and reports) an invalid account instead of stopping for everyone.
        """

    @abc.abstractmethod
    def find_by_stripe_customer_id(self, stripe_customer_id: str) -> Account | None:
        """The account of the given Stripe customer, or ``None``."""

    @abc.abstractmethod
    def set_stripe_customer_id_if_absent(
        self, account_id: str, stripe_customer_id: str, changes: AccountChanges | None = None
    ) -> bool:
        """Record the account's Stripe customer unless it already has one (creates the account if needed).

        ``False`` means another request recorded a customer first; read the account to get it.
        """

    @abc.abstractmethod
    def update(self, account_id: str, changes: AccountChanges, *, conditions: Sequence[FieldIs] = ()) -> Account:
        """Apply ``changes`` to an existing account if every condition holds; returns the new account.

        Raises ``NotFound`` or ``ConditionFailed`` like ``InvoiceRepository.update``.
        """


class AuditLog(abc.ABC):
    """Every operator action, kept for good: newest first, for one account or for all."""

    @abc.abstractmethod
    def record(self, entry: AuditEntry) -> None:
        """Keep ``entry`` (its id makes a repeated record of the same entry a no-op)."""

    @abc.abstractmethod
    def entries(self, *, account_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` entries, of ``account_id`` or of every account."""


class Memberships(abc.ABC):
    """Which account a person acts for (decided server-side, never from what a client sends)."""

    @abc.abstractmethod
    def account_of(self, user_sub: str) -> str | None:
        """The account ``user_sub`` is a member of, or ``None``."""

    @abc.abstractmethod
    def add_if_absent(self, membership: Membership) -> Membership:
        """Record the membership unless the person has one; returns the one stored (maybe another account's)."""


class UserDirectory(abc.ABC):
    """The people who may sign in (Cognito): invited into the admin group."""

    @abc.abstractmethod
    def invite_admin(self, email: str) -> InvitedUser:
        """Create the user (or find them) by e-mail and put them into the admin group."""

    @abc.abstractmethod
    def find_user(self, email: str) -> DirectoryUser | None:
        """The user signing in with ``email`` and their groups, or ``None`` if there is none."""

    @property
    @abc.abstractmethod
    def operator_group(self) -> str:
        """The group whose members operate the system (never a customer's admin)."""
