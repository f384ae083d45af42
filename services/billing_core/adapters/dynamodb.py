"""DynamoDB adapters for the ``billing``, ``payment-methods`` and ``events`` tables.

They take a low-level boto3 DynamoDB client. Items go in and out as plain dicts; numbers come back
as ``Decimal`` (as boto3 returns them), and a ``float`` is refused on the way in, so money can never
pass through binary floating point.
"""
from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from billing_core import resources
from billing_core.errors import ConditionFailed, InvalidCursor, NotFound, StorageUnavailable
from billing_core.ports import AccountRepository, EventClaim, EventLedger, FieldIs, InvoiceRepository, Item, Page

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attribute_values(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain item as DynamoDB attribute values."""
    return {key: _serializer.serialize(value) for key, value in item.items()}


def from_attribute_values(item: Mapping[str, Any]) -> Item:
    """DynamoDB attribute values as a plain item."""
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _is_condition_failure(error: ClientError) -> bool:
    code: str | None = error.response.get("Error", {}).get("Code")
    return code == "ConditionalCheckFailedException"


def _unavailable(error: ClientError, table: str) -> StorageUnavailable:
    code = error.response.get("Error", {}).get("Code", "Unknown")
    return StorageUnavailable(f"DynamoDB {code} on table {table}")


class _Expression:
    """Builds expression attribute names and values with generated placeholders."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _serializer.serialize(value)
        return placeholder

    def guard(self, condition: FieldIs) -> str:
        name = self.name(condition.name)
        parts = []
        if condition.values:
            parts.append(f"{name} IN ({', '.join(self.value(v) for v in condition.values)})")
        if condition.or_absent:
            parts.append(f"attribute_not_exists({name})")
        if not parts:
            raise ValueError(f"condition on {condition.name} accepts nothing")
        return "(" + " OR ".join(parts) + ")"

    def kwargs(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.names:
            result["ExpressionAttributeNames"] = self.names
        if self.values:
            result["ExpressionAttributeValues"] = self.values
        return result


class _DynamoTable:
    """Shared plumbing: conditional update with NotFound / ConditionFailed translation."""

    definition: resources.Table

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, *values: str) -> dict[str, Any]:
        names = [self.definition.partition_key, self.definition.sort_key]
        return {name: {"S": value} for name, value in zip([n for n in names if n], values, strict=False)}

    def _get(self, key: dict[str, Any]) -> Item | None:
        try:
            response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        except ClientError as error:
            raise _unavailable(error, self._table) from error
        item = response.get("Item")
        return from_attribute_values(item) if item else None

    def _update(
        self,
        key: dict[str, Any],
        fields: Mapping[str, Any],
        conditions: Sequence[FieldIs],
        remove: Sequence[str],
        *,
        must_exist: bool = True,
    ) -> Item:
        key_names = set(key)
        if key_names & (set(fields) | set(remove)):
            raise ValueError("key attributes cannot be updated")
        if not fields and not remove:
            raise ValueError("nothing to update")
        expression = _Expression()
        clauses = []
        if fields:
            clauses.append(
                "SET " + ", ".join(f"{expression.name(k)} = {expression.value(v)}" for k, v in fields.items())
            )
        if remove:
            clauses.append("REMOVE " + ", ".join(expression.name(k) for k in remove))
        guards = [expression.guard(c) for c in conditions]
        if must_exist:
            guards.insert(0, f"attribute_exists({expression.name(self.definition.partition_key)})")
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": " ".join(clauses),
            "ReturnValues": "ALL_NEW",
            **expression.kwargs(),
        }
        if guards:
            kwargs["ConditionExpression"] = " AND ".join(guards)
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = self._client.update_item(**kwargs)
        except ClientError as error:
            if not _is_condition_failure(error):
                raise _unavailable(error, self._table) from error
            stored = error.response.get("Item")
            current = from_attribute_values(stored) if stored else self._get(key)
            if current is None:
                raise NotFound(f"no item in {self._table} with that key") from None
            raise ConditionFailed(f"condition failed on {self._table}", current=current) from None
        return from_attribute_values(response["Attributes"])

    def _put_if_absent(self, item: Mapping[str, Any]) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_attribute_values(item),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": self.definition.partition_key},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise _unavailable(error, self._table) from error
        return True

    def _query_index(self, index: resources.Index, value: str) -> Item | None:
        try:
            response = self._client.query(
                TableName=self._table,
                IndexName=index.name,
                KeyConditionExpression="#k = :v",
                ExpressionAttributeNames={"#k": index.partition_key},
                ExpressionAttributeValues={":v": {"S": value}},
            )
        except ClientError as error:
            raise _unavailable(error, self._table) from error
        items = response.get("Items", [])
        return from_attribute_values(items[0]) if items else None


def _encode_cursor(last_key: Mapping[str, Any]) -> str:
    plain = from_attribute_values(last_key)
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, expected_keys: set[str], user_id: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor("not a cursor this system issued") from None
    if (
        not isinstance(plain, dict)
        or set(plain) != expected_keys
        or not all(isinstance(v, str) for v in plain.values())
        or plain.get("userId") != user_id
    ):
        raise InvalidCursor("not a cursor this system issued")
    return to_attribute_values(plain)


class DynamoInvoiceRepository(_DynamoTable, InvoiceRepository):
    """Invoices in the ``billing`` table."""

    definition = resources.BILLING

    def get(self, user_id: str, invoice_id: str) -> Item | None:
        """The invoice item, or ``None``."""
        return self._get(self._key(user_id, invoice_id))

    def create_if_absent(self, item: Mapping[str, Any]) -> bool:
        """Conditional put on the item's keys; ``False`` if an invoice with those keys exists."""
        return self._put_if_absent(item)

    def update(
        self,
        user_id: str,
        invoice_id: str,
        fields: Mapping[str, Any],
        *,
        conditions: Sequence[FieldIs] = (),
        remove: Sequence[str] = (),
    ) -> Item:
        """Conditional update of an existing invoice; see ``InvoiceRepository.update``."""
        return self._update(self._key(user_id, invoice_id), fields, conditions, remove)

    def find_by_stripe_invoice_id(self, stripe_invoice_id: str) -> Item | None:
        """Look the invoice up through the ``byStripeInvoiceId`` index."""
        return self._query_index(self.definition.indexes[0], stripe_invoice_id)

    def list_for_user(self, user_id: str, *, limit: int = 20, cursor: str | None = None) -> Page:
        """Newest first: ``invoiceId`` embeds the period (``inv_2024-11_<userId>``), so it sorts by time."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#u = :u",
            "ExpressionAttributeNames": {"#u": self.definition.partition_key},
            "ExpressionAttributeValues": {":u": {"S": user_id}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = _decode_cursor(cursor, {"userId", "invoiceId"}, user_id)
        try:
            response = self._client.query(**kwargs)
        except ClientError as error:
            raise _unavailable(error, self._table) from error
        items = [from_attribute_values(i) for i in response.get("Items", [])]
        last_key = response.get("LastEvaluatedKey")
        return Page(items, _encode_cursor(last_key) if last_key else None)


class DynamoAccountRepository(_DynamoTable, AccountRepository):
    """Accounts in the ``payment-methods`` table."""

    definition = resources.PAYMENT_METHODS

    def get(self, user_id: str) -> Item | None:
        """The account item, or ``None``."""
        return self._get(self._key(user_id))

    def put(self, item: Mapping[str, Any]) -> None:
        """Unconditional put (provisioning and seeding)."""
        try:
            self._client.put_item(TableName=self._table, Item=to_attribute_values(item))
        except ClientError as error:
            raise _unavailable(error, self._table) from error

    def list_accounts(self, *, page_size: int = 100) -> Iterator[Item]:
        """Scan the table page by page, following ``LastEvaluatedKey``."""
        kwargs: dict[str, Any] = {"TableName": self._table, "Limit": page_size, "ConsistentRead": True}
        while True:
            try:
                response = self._client.scan(**kwargs)
            except ClientError as error:
                raise _unavailable(error, self._table) from error
            for item in response.get("Items", []):
                yield from_attribute_values(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def find_by_stripe_customer_id(self, stripe_customer_id: str) -> Item | None:
        """Look the account up through the ``byStripeCustomerId`` index."""
        return self._query_index(self.definition.indexes[0], stripe_customer_id)

    def set_stripe_customer_id_if_absent(
        self, user_id: str, stripe_customer_id: str, fields: Mapping[str, Any] | None = None
    ) -> bool:
        """Conditional on ``attribute_not_exists(stripeCustomerId)``: two racing requests, one winner."""
        try:
            self._update(
                self._key(user_id),
                {"stripeCustomerId": stripe_customer_id, **(fields or {})},
                [FieldIs.absent("stripeCustomerId")],
                (),
                must_exist=False,
            )
        except ConditionFailed:
            return False
        return True

    def update(
        self,
        user_id: str,
        fields: Mapping[str, Any],
        *,
        conditions: Sequence[FieldIs] = (),
        remove: Sequence[str] = (),
    ) -> Item:
        """Conditional update of an existing account; see ``AccountRepository.update``."""
        return self._update(self._key(user_id), fields, conditions, remove)


# Key prefixes keep the kinds of record in the one ``events`` table apart.
EVENT_PREFIX = "event#"
LEASE_PREFIX = "lease#"


class DynamoEventLedger(_DynamoTable, EventLedger):
    """Processed events, leases and run records in the ``events`` table (TTL attribute ``expiresAt``)."""

    definition = resources.EVENTS

    def __init__(self, client: DynamoDBClient, table_name: str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(client, table_name)
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def record_once(self, event_id: str, ttl_seconds: int) -> bool:
        """Conditional put ``attribute_not_exists(pk)``: of two deliveries of one event, one wins."""
        now = self._now()
        return self._put_if_absent(
            {"pk": EVENT_PREFIX + event_id, "kind": "event", "recordedAt": now, "expiresAt": now + ttl_seconds}
        )

    def claim_event(self, event_id: str, *, lease_seconds: int, retention_seconds: int) -> EventClaim:
        """Conditional write: claim if there is no record, or only a processing claim whose lease ran out.

        Two workers may hold deliveries of one event at once (SQS at-least-once, Stripe duplicates):

            worker A: claim evt_1 -> CLAIMED (processing, leaseUntil = t+60); applies it
            worker B: claim evt_1 -> IN_PROGRESS; leaves its copy on the queue (comes back later)
            worker A: complete evt_1 (done, applications = 1); deletes its copy
            worker B: claim evt_1 again -> DONE; deletes its copy without applying

        If A dies between claim and complete, its lease runs out and B's next claim succeeds; the
        lease is checked in the condition because TTL deletion lags by up to days.
        """
        now = self._now()
        key = self._key(EVENT_PREFIX + event_id)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET #kind = :kind, #state = :processing, #lease = :lease, #claimed = :now, "
                "#exp = :exp",
                ConditionExpression="attribute_not_exists(#pk) OR (#state = :processing AND #lease < :now)",
                ExpressionAttributeNames={"#pk": "pk", "#kind": "kind", "#state": "state", "#lease": "leaseUntil",
                                          "#claimed": "claimedAt", "#exp": "expiresAt"},
                ExpressionAttributeValues={
                    ":kind": {"S": "event"}, ":processing": {"S": "processing"},
                    ":lease": {"N": str(now + lease_seconds)}, ":now": {"N": str(now)},
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
            # Items written by ``record_once`` have no state and mean "processed".
            return EventClaim.IN_PROGRESS if current.get("state") == "processing" else EventClaim.DONE
        return EventClaim.CLAIMED

    def complete_event(self, event_id: str, *, retention_seconds: int) -> None:
        """Set ``state = done`` and add one to ``applications`` (a second application would show as 2)."""
        now = self._now()
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(EVENT_PREFIX + event_id),
                UpdateExpression="SET #state = :done, #done = :now, #exp = :exp REMOVE #lease ADD #apps :one",
                ExpressionAttributeNames={"#state": "state", "#done": "doneAt", "#exp": "expiresAt",
                                          "#lease": "leaseUntil", "#apps": "applications"},
                ExpressionAttributeValues={":done": {"S": "done"}, ":now": {"N": str(now)},
                                           ":exp": {"N": str(now + retention_seconds)}, ":one": {"N": "1"}},
            )
        except ClientError as error:
            raise _unavailable(error, self._table) from error

    def release_event(self, event_id: str) -> None:
        """Delete the record only while it is a processing claim (never a done one)."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(EVENT_PREFIX + event_id),
                ConditionExpression="#state = :processing",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":processing": {"S": "processing"}},
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise _unavailable(error, self._table) from error

    def event_applications(self, event_id: str) -> int:
        """The ``applications`` counter of the event's record."""
        item = self._get(self._key(EVENT_PREFIX + event_id))
        return int(item.get("applications", 0)) if item else 0

    def forget(self, event_id: str) -> None:
        """Delete the event record."""
        try:
            self._client.delete_item(TableName=self._table, Key=self._key(EVENT_PREFIX + event_id))
        except ClientError as error:
            raise _unavailable(error, self._table) from error

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
                    {"pk": LEASE_PREFIX + name, "kind": "lease", "owner": owner, "acquiredAt": now,
                     "expiresAt": now + ttl_seconds}
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

    def put_record(
        self, key: str, fields: Mapping[str, Any], *, ttl_seconds: int | None = None, only_if_absent: bool = False
    ) -> bool:
        """Put a record; with ``only_if_absent`` an unexpired existing record wins."""
        if {"pk", "expiresAt"} & set(fields):
            raise ValueError("pk and expiresAt are managed by the ledger")
        now = self._now()
        item = {**fields, "pk": key}
        if ttl_seconds is not None:
            item["expiresAt"] = now + ttl_seconds
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": to_attribute_values(item)}
        if only_if_absent:
            kwargs["ConditionExpression"] = "attribute_not_exists(#pk) OR #exp < :now"
            kwargs["ExpressionAttributeNames"] = {"#pk": "pk", "#exp": "expiresAt"}
            kwargs["ExpressionAttributeValues"] = {":now": {"N": str(now)}}
        try:
            self._client.put_item(**kwargs)
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise _unavailable(error, self._table) from error
        return True

    def get_record(self, key: str) -> Item | None:
        """The record's fields, or ``None`` if absent or expired (TTL deletion lags)."""
        item = self._get(self._key(key))
        if item is None:
            return None
        expires_at = item.pop("expiresAt", None)
        if expires_at is not None and expires_at < self._now():
            return None
        item.pop("pk", None)
        return item
