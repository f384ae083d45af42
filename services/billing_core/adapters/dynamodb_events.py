"""DynamoDB adapters for the events table: processed Stripe events, leases, run records, the preview cache
and the exchange rate of each period.

One table (deployed as ``events``, TTL attribute ``expiresAt``) holds the five kinds of item, kept
apart by key prefix; each adapter implements one port and touches only its own prefix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from billing_core import resources
from billing_core.adapters.dynamodb import (
    DynamoDBClient,
    _DynamoTable,
    _is_condition_failure,
    _unavailable,
    from_attribute_values,
    to_attribute_values,
)
from billing_core.adapters.dynamodb_items import (
    Item,
    audit_entry_from_item,
    audit_entry_item,
    newest_rate_from_item,
    newest_rate_item,
    period_rate_from_item,
    period_rate_item,
    run_record_from_item,
    run_record_item,
    snapshot_from_item,
    snapshot_item,
)
from billing_core.domain.audit import AuditEntry
from billing_core.domain.costs import CostSnapshot, Period
from billing_core.domain.fx import NewestRate, PeriodRate
from billing_core.domain.membership import Membership
from billing_core.domain.records import BillingRunRecord
from billing_core.errors import InvalidStoredRecord
from billing_core.ports import EventClaim, Leases, PreviewCache, ProcessedEvents, RequestLimits, RunRecords
from billing_core.ports.rates import PeriodRates
from billing_core.ports.storage import AuditLog, Memberships

log = logging.getLogger(__name__)

# Key prefixes keep the kinds of record in the one events table apart.
EVENT_PREFIX = "event#"
LEASE_PREFIX = "lease#"
RUN_PREFIX = "run#billing#"
RATE_PREFIX = "fx#"
NEWEST_RATE_KEY = "fx-newest"  # not under fx#: no period is called "newest"


class _EventsTable(_DynamoTable):
    """The events table with a clock (epoch seconds) for leases and expiry."""

    definition = resources.EVENTS

    def __init__(self, client: DynamoDBClient, table_name: str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(client, table_name)
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def _put_expiring(self, key: str, fields: Item, ttl_seconds: int) -> None:
        item = {**fields, "pk": key, "expiresAt": self._now() + ttl_seconds}
        try:
            self._client.put_item(TableName=self._table, Item=to_attribute_values(item))
        except ClientError as error:
            raise _unavailable(error, self._table) from error

    def _get_unexpired(self, key: str) -> Item | None:
        """The item under ``key``, or ``None`` if absent or expired (TTL deletion lags by up to days)."""
        item = self._get(self._key(key))
        if item is None:
            return None
        expires_at = item.get("expiresAt")
        if expires_at is not None and expires_at < self._now():
            return None
        return item


class DynamoProcessedEvents(_EventsTable, ProcessedEvents):
    """Claims and done markers of Stripe events (``event#<id>``)."""

    def claim_event(self, event_id: str, *, owner: str, lease_seconds: int, retention_seconds: int) -> EventClaim:
        """Conditional write: claim if there is no record, or only a processing claim whose lease ran out.

        Two workers may hold deliveries of one event at once (SQS at-least-once, Stripe duplicates):

            worker A: claim evt_1 -> CLAIMED (processing, owner A, leaseUntil = t+60); applies it,
                      renewing the lease while it works
            worker B: claim evt_1 -> IN_PROGRESS; leaves its copy on the queue (comes back later)
            worker A: complete evt_1 as A (done, applications = 1); deletes its copy
            worker B: claim evt_1 again -> DONE; deletes its copy without applying

        If A dies (or freezes) between claim and complete, its lease runs out and B's next claim
        succeeds; A, waking up, finds its complete refused (the owner is B). The lease is checked in
        the condition because TTL deletion lags by up to days.
        """
        now = self._now()
        key = self._key(EVENT_PREFIX + event_id)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET #kind = :kind, #state = :processing, #owner = :owner, #lease = :lease, "
                "#claimed = :now, #exp = :exp",
                ConditionExpression="attribute_not_exists(#pk) OR (#state = :processing AND #lease < :now)",
                ExpressionAttributeNames={
                    "#pk": "pk",
                    "#kind": "kind",
                    "#state": "state",
                    "#owner": "owner",
                    "#lease": "leaseUntil",
                    "#claimed": "claimedAt",
                    "#exp": "expiresAt",
                },
                ExpressionAttributeValues={
                    ":kind": {"S": "event"},
                    ":processing": {"S": "processing"},
                    ":owner": {"S": owner},
                    ":lease": {"N": str(now + lease_seconds)},
                    ":now": {"N": str(now)},
                    ":exp": {"N": str(now + retention_seconds)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise _unavailable(error, self._table) from error
            stored = error.response.get("Item")
            current = from_attribute_values(stored) if stored else self._get(key)
            if current is None:  # released between our write and our read: let the delivery retry
                return EventClaim.IN_PROGRESS
            # Items without a state (written by earlier versions) mean "processed".
            return EventClaim.IN_PROGRESS if current.get("state") == "processing" else EventClaim.DONE
        return EventClaim.CLAIMED

    def renew_event_claim(self, event_id: str, *, owner: str, lease_seconds: int) -> bool:
        """Move the lease of ``owner``'s processing claim to ``lease_seconds`` from now."""
        now = self._now()
        return self._update_own_claim(
            event_id,
            owner,
            "SET #lease = :lease",
            {":lease": {"N": str(now + lease_seconds)}},
            {"#lease": "leaseUntil"},
        )

    def complete_event(self, event_id: str, *, owner: str, retention_seconds: int) -> bool:
        """Set ``state = done`` and add one to ``applications``, only on ``owner``'s processing claim.

        A retried request whose first attempt already completed the claim finds it done by ``owner``:
        that is a success too, and counts nothing more.
        """
        now = self._now()
        return self._update_own_claim(
            event_id,
            owner,
            "SET #state = :done, #done = :now, #exp = :exp REMOVE #lease ADD #apps :one",
            {
                ":done": {"S": "done"},
                ":now": {"N": str(now)},
                ":exp": {"N": str(now + retention_seconds)},
                ":one": {"N": "1"},
            },
            {"#done": "doneAt", "#exp": "expiresAt", "#lease": "leaseUntil", "#apps": "applications"},
            done_counts=True,
        )

    def release_event(self, event_id: str, *, owner: str) -> None:
        """Delete the record only while it is ``owner``'s processing claim (never a done one, never another's)."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(EVENT_PREFIX + event_id),
                ConditionExpression="#state = :processing AND #owner = :owner",
                ExpressionAttributeNames={"#state": "state", "#owner": "owner"},
                ExpressionAttributeValues={":processing": {"S": "processing"}, ":owner": {"S": owner}},
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise _unavailable(error, self._table) from error

    def _update_own_claim(
        self,
        event_id: str,
        owner: str,
        expression: str,
        values: Item,
        names: dict[str, str],
        *,
        done_counts: bool = False,
    ) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(EVENT_PREFIX + event_id),
                UpdateExpression=expression,
                ConditionExpression="#state = :processing AND #owner = :owner",
                ExpressionAttributeNames={"#state": "state", "#owner": "owner", **names},
                ExpressionAttributeValues={":processing": {"S": "processing"}, ":owner": {"S": owner}, **values},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise _unavailable(error, self._table) from error
            stored = error.response.get("Item")
            current = from_attribute_values(stored) if stored else {}
            return done_counts and current.get("state") == "done" and current.get("owner") == owner
        return True


class DynamoLeases(_EventsTable, Leases):
    """Named leases (``lease#<name>``) whose expiry is checked in the write's condition."""

    def acquire_lease(self, name: str, owner: str, ttl_seconds: int) -> bool:
        """Take the lease if it is free, expired or already ours.

        DynamoDB deletes expired items lazily (up to days later), so expiry is checked here in the
        condition rather than trusted to TTL:

            worker A: acquire (expiresAt = t+60)  ... crashes
            worker B: acquire at t+30 -> refused (A's lease unexpired)
            worker B: acquire at t+61 -> granted (expiresAt < now), A's item is overwritten
        """
        now = self._now()
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_attribute_values(
                    {
                        "pk": LEASE_PREFIX + name,
                        "kind": "lease",
                        "owner": owner,
                        "acquiredAt": now,
                        "expiresAt": now + ttl_seconds,
                    }
                ),
                ConditionExpression="attribute_not_exists(#pk) OR #exp < :now OR #owner = :owner",
                ExpressionAttributeNames={"#pk": "pk", "#exp": "expiresAt", "#owner": "owner"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":owner": {"S": owner}},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise _unavailable(error, self._table) from error
        return True

    def release_lease(self, name: str, owner: str) -> bool:
        """Delete the lease only if ``owner`` still holds it (never someone else's)."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(LEASE_PREFIX + name),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise _unavailable(error, self._table) from error
        return True


class DynamoRunRecords(_EventsTable, RunRecords):
    """Each period's billing run record (``run#billing#<period>``)."""

    def put(self, record: BillingRunRecord, *, ttl_seconds: int) -> None:
        """Store (or replace) the period's run record."""
        self._put_expiring(RUN_PREFIX + record.period.label, run_record_item(record), ttl_seconds)

    def get(self, period: Period) -> BillingRunRecord | None:
        """The period's run record, or ``None``."""
        item = self._get_unexpired(RUN_PREFIX + period.label)
        return None if item is None else run_record_from_item(item, self._table)


class DynamoPreviewCache(_EventsTable, PreviewCache):
    """Cached month-to-date cost reports (``preview#<attribution>#<period>``, the key the caller gives)."""

    def put(self, key: str, snapshot: CostSnapshot, *, ttl_seconds: int) -> None:
        """Cache ``snapshot`` under ``key``."""
        self._put_expiring(key, snapshot_item(snapshot), ttl_seconds)

    def get(self, key: str) -> CostSnapshot | None:
        """The cached snapshot; an unreadable one counts as absent (the preview refills it)."""
        item = self._get_unexpired(key)
        if item is None:
            return None
        try:
            return snapshot_from_item(item, self._table)
        except InvalidStoredRecord as invalid:
            log.warning("ignoring an unreadable cost preview cache record", extra={"reason": str(invalid)})
            return None


class DynamoPeriodRates(_EventsTable, PeriodRates):
    """The exchange rate each period is billed at (``fx#<period>``), kept for good: invoices refer to it."""

    def get(self, period: Period) -> PeriodRate | None:
        """The period's stored rate, or ``None``."""
        item = self._get(self._key(RATE_PREFIX + period.label))
        return None if item is None else period_rate_from_item(item, self._table)

    def put_if_absent(self, rate: PeriodRate) -> PeriodRate:
        """Conditional put: the first rate stored for a period stays; returns the stored one."""
        if self._put_if_absent({**period_rate_item(rate), "pk": RATE_PREFIX + rate.period.label}):
            return rate
        stored = self.get(rate.period)
        if stored is None:  # pragma: no cover - a refused put means an item exists
            raise InvalidStoredRecord(self._table, f"pk={RATE_PREFIX}{rate.period.label}", "item", "vanished")
        return stored

    def newest(self) -> NewestRate | None:
        """The newest published rate last read, or ``None``."""
        item = self._get(self._key(NEWEST_RATE_KEY))
        return None if item is None else newest_rate_from_item(item, self._table)

    def keep_newest(self, rate: NewestRate) -> None:
        """Put unless a later reading is stored (two readers at once: the later one stays)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_attribute_values({**newest_rate_item(rate), "pk": NEWEST_RATE_KEY}),
                ConditionExpression="attribute_not_exists(#pk) OR #readAt <= :readAt",
                ExpressionAttributeNames={"#pk": "pk", "#readAt": "readAt"},
                ExpressionAttributeValues={":readAt": {"N": str(rate.read_at)}},
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise _unavailable(error, self._table) from error


AUDIT_PREFIX = "audit#"
ALL_ACCOUNTS_STREAM = "all"


class DynamoAuditLog(_EventsTable, AuditLog):
    """The audit log: each entry once per stream, written together; listed through ``byAuditStream``."""

    def record(self, entry: AuditEntry) -> None:
        """Write the entry to its streams in one transaction; a repeat of the same entry id is a no-op."""
        streams = [ALL_ACCOUNTS_STREAM] + ([f"account#{entry.account_id}"] if entry.account_id else [])
        item = audit_entry_item(entry)
        puts = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_attribute_values(
                        {**item, "pk": f"{AUDIT_PREFIX}{entry.entry_id}#{stream}", "auditStream": stream}
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for stream in streams
        ]
        try:
            self._client.transact_write_items(TransactItems=puts)
        except ClientError as error:
            reasons = error.response.get("CancellationReasons", [])
            if reasons and all(r.get("Code") in ("ConditionalCheckFailed", "None") for r in reasons):
                return  # recorded before (a retried command)
            raise _unavailable(error, self._table) from error

    def entries(self, *, account_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` entries of the stream, newest first."""
        stream = ALL_ACCOUNTS_STREAM if account_id is None else f"account#{account_id}"
        try:
            response = self._client.query(
                TableName=self._table,
                IndexName="byAuditStream",
                KeyConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": "auditStream"},
                ExpressionAttributeValues={":s": {"S": stream}},
                ScanIndexForward=False,
                Limit=limit,
            )
        except ClientError as error:
            raise _unavailable(error, self._table) from error
        return [audit_entry_from_item(from_attribute_values(item), self._table) for item in response.get("Items", [])]


LIMIT_PREFIX = "limit#"


class DynamoRequestLimits(_EventsTable, RequestLimits):
    """Request counts per key and window (``limit#<key>#<window start>``), gone by TTL after the window.

    One conditional ``UpdateItem`` per request: the count goes up only while it is below the limit,
    so every process and task shares one count and a refused request leaves it as it was.
    """

    def take(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        now = self._now()
        window = now - now % window_seconds
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(f"{LIMIT_PREFIX}{key}#{window}"),
                UpdateExpression="SET #kind = :kind, #exp = :exp ADD #hits :one",
                ConditionExpression="attribute_not_exists(#hits) OR #hits < :limit",
                ExpressionAttributeNames={"#kind": "kind", "#exp": "expiresAt", "#hits": "hits"},
                ExpressionAttributeValues={
                    ":kind": {"S": "limit"},
                    ":exp": {"N": str(window + 2 * window_seconds)},
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                },
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return max(1, window + window_seconds - now)
            raise _unavailable(error, self._table) from error
        return None


MEMBER_PREFIX = "member#"


class DynamoMemberships(_EventsTable, Memberships):
    """Memberships (``member#<sub>`` -> account), kept for good: the first recorded stays."""

    def account_of(self, user_sub: str) -> str | None:
        """The account of ``user_sub``'s membership, or ``None``."""
        item = self._get(self._key(MEMBER_PREFIX + user_sub))
        if item is None:
            return None
        account = item.get("accountId")
        if not isinstance(account, str) or not account:
            raise InvalidStoredRecord(self._table, f"pk={MEMBER_PREFIX}{user_sub}", "accountId", "is not an account id")
        return account

    def add_if_absent(self, membership: Membership) -> Membership:
        """Conditional put; the stored membership (the first one) comes back."""
        item = {
            "pk": MEMBER_PREFIX + membership.user_sub,
            "kind": "membership",
            "accountId": membership.account_id,
            "email": membership.email,
            "addedAt": membership.added_at,
        }
        if self._put_if_absent(item):
            return membership
        stored = self._get(self._key(MEMBER_PREFIX + membership.user_sub)) or {}
        account = self.account_of(membership.user_sub) or membership.account_id
        return Membership(membership.user_sub, account, str(stored.get("email", "")), int(stored.get("addedAt", 0)))
