"""DynamoDB adapters for the invoices (``billing``) and accounts (``payment-methods``) tables.

They take a low-level boto3 DynamoDB client and speak records (``Invoice``, ``Account``); the items
behind them are ``dynamodb_items``'s business. Numbers come back as ``Decimal`` (as boto3 returns
them), and a ``float`` is refused on the way in, so money never passes through binary floating point.
The events table's adapters are in ``dynamodb_events``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from billing_core import resources
from billing_core.adapters.dynamodb_items import (
    ACCOUNT_CODECS,
    INVOICE_CODECS,
    Item,
    account_from_item,
    account_item,
    changes_to_update,
    guard_attribute,
    invoice_from_item,
    invoice_item,
)
from billing_core.domain.records import Account, AccountChanges, Invoice, InvoiceChanges
from billing_core.errors import ConditionFailed, InvalidCursor, InvalidStoredRecord, NotFound, StorageUnavailable
from billing_core.ports import AccountRepository, FieldIs, InvoiceRepository, Page

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

__all__ = [
    "DynamoAccountRepository",
    "DynamoDBClient",
    "DynamoInvoiceRepository",
    "from_attribute_values",
    "to_attribute_values",
]

log = logging.getLogger(__name__)

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


def _is_validation_error(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ValidationException")


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

    def guard(self, attribute: str, values: Sequence[Any], or_absent: bool) -> str:
        name = self.name(attribute)
        parts = []
        if values:
            parts.append(f"{name} IN ({', '.join(self.value(v) for v in values)})")
        if or_absent:
            parts.append(f"attribute_not_exists({name})")
        if not parts:
            raise ValueError(f"condition on {attribute} accepts nothing")
        return "(" + " OR ".join(parts) + ")"

    def kwargs(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.names:
            result["ExpressionAttributeNames"] = self.names
        if self.values:
            result["ExpressionAttributeValues"] = self.values
        return result


class _Unreachable:
    """A DynamoDB client whose connection failures and timeouts are ``StorageUnavailable``.

    botocore raises those as ``BotoCoreError`` (not ``ClientError``): without this they would pass
    every ``except ClientError`` and reach a request as a 500 instead of a 503.
    """

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except BotoCoreError as error:
                raise StorageUnavailable(
                    f"DynamoDB unreachable for table {self._table}: {type(error).__name__}"
                ) from None

        return call


class _DynamoTable:
    """Shared plumbing: conditional update with NotFound / ConditionFailed translation."""

    definition: resources.Table
    codecs: Mapping[str, Any] = {}

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = cast(DynamoDBClient, _Unreachable(client, table_name))
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

    def _record(self, item: Item) -> Any:
        """The record an item of this table holds (``InvalidStoredRecord`` if it holds none)."""
        raise NotImplementedError

    def _update(
        self,
        key: dict[str, Any],
        changes: Mapping[str, Any],
        conditions: Sequence[FieldIs],
        *,
        must_exist: bool = True,
    ) -> Item:
        """Apply a record's ``changes`` if ``conditions`` hold; returns the item as stored after it."""
        update = changes_to_update(changes, self.codecs)
        if set(key) & update.attributes:
            raise ValueError("key attributes cannot be updated")
        expression = _Expression()
        clauses = []
        assignments = [f"{expression.name(k)} = {expression.value(v)}" for k, v in update.assign.items()]
        for attribute, value in update.set_once.items():
            name = expression.name(attribute)
            assignments.append(f"{name} = if_not_exists({name}, {expression.value(value)})")
        if assignments:
            clauses.append("SET " + ", ".join(assignments))
        if update.add:
            clauses.append(
                "ADD " + ", ".join(f"{expression.name(k)} {expression.value(v)}" for k, v in update.add.items())
            )
        if update.remove:
            clauses.append("REMOVE " + ", ".join(expression.name(k) for k in update.remove))
        if not clauses:
            raise ValueError("nothing to update")
        guards = [expression.guard(*guard_attribute(c.name, c.values, self.codecs), c.or_absent) for c in conditions]
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
            try:
                response = self._client.update_item(**kwargs)
            except ClientError as error:
                # ADD needs a set; an item written before the growing fields were sets holds a list.
                if not (update.add and _is_validation_error(error) and self._lists_to_sets(key, update.add)):
                    raise
                response = self._client.update_item(**kwargs)
        except ClientError as error:
            if not _is_condition_failure(error):
                raise _unavailable(error, self._table) from error
            stored = error.response.get("Item")
            current = from_attribute_values(stored) if stored else self._get(key)
            if current is None:
                raise NotFound(f"no item in {self._table} with that key") from None
            raise ConditionFailed(f"condition failed on {self._table}", current=self._record(current)) from None
        return from_attribute_values(response["Attributes"])

    def _lists_to_sets(self, key: dict[str, Any], attributes: Mapping[str, Any]) -> bool:
        """Rewrite those of ``attributes`` the item holds as lists as string sets; whether any was.

        Conditional on the list still being the one read, so a concurrent writer is never overwritten.
        """
        raw = self._raw(key)
        converted = False
        for attribute in attributes:
            value = raw.get(attribute, {}) if raw else {}
            if "L" not in value:
                continue
            members = {entry["S"] for entry in value["L"] if "S" in entry}
            change: dict[str, Any] = {
                "TableName": self._table,
                "Key": key,
                "ExpressionAttributeNames": {"#a": attribute},
                "ExpressionAttributeValues": {":old": value, **({":new": {"SS": sorted(members)}} if members else {})},
                "ConditionExpression": "#a = :old",
                "UpdateExpression": "SET #a = :new" if members else "REMOVE #a",
            }
            try:
                self._client.update_item(**change)
            except ClientError as error:
                if not _is_condition_failure(error):
                    raise
            converted = True
            log.info(
                "a list attribute was rewritten as a string set", extra={"table": self._table, "attribute": attribute}
            )
        return converted

    def _raw(self, key: dict[str, Any]) -> dict[str, Any] | None:
        try:
            item: dict[str, Any] | None = self._client.get_item(
                TableName=self._table, Key=key, ConsistentRead=True
            ).get("Item")
        except ClientError as error:
            raise _unavailable(error, self._table) from error
        return item

    def _scan(self, kwargs: dict[str, Any], what: str) -> Iterator[Any]:
        """Every record a Scan with ``kwargs`` finds, page by page; an invalid item comes as its error."""
        while True:
            try:
                response = self._client.scan(**kwargs)
            except ClientError as error:
                raise _unavailable(error, self._table) from error
            for item in response.get("Items", []):
                try:
                    yield self._record(from_attribute_values(item))
                except InvalidStoredRecord as invalid:
                    log.error(f"invalid {what} item", extra={"table": self._table, "reason": str(invalid)})
                    yield invalid
            if "LastEvaluatedKey" not in response:
                return
            kwargs = {**kwargs, "ExclusiveStartKey": response["LastEvaluatedKey"]}

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
        """The first item whose index attribute is ``value``, or ``None``."""
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


def _decode_cursor(cursor: str, expected_keys: set[str], account_id: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor("not a cursor this system issued") from None
    if (
        not isinstance(plain, dict)
        or set(plain) != expected_keys
        or not all(isinstance(v, str) for v in plain.values())
        or plain.get("userId") != account_id
    ):
        raise InvalidCursor("not a cursor this system issued")
    return to_attribute_values(plain)


class DynamoInvoiceRepository(_DynamoTable, InvoiceRepository):
    """Invoices in the invoices (``billing``) table."""

    definition = resources.BILLING
    codecs = INVOICE_CODECS

    def _record(self, item: Item) -> Invoice:
        return invoice_from_item(item, self._table)

    def get(self, account_id: str, invoice_id: str) -> Invoice | None:
        """The invoice, or ``None``."""
        item = self._get(self._key(account_id, invoice_id))
        return None if item is None else self._record(item)

    def create_if_absent(self, invoice: Invoice) -> bool:
        """Conditional put on the invoice's keys; ``False`` if an invoice with those keys exists."""
        return self._put_if_absent(invoice_item(invoice))

    def update(
        self, account_id: str, invoice_id: str, changes: InvoiceChanges, *, conditions: Sequence[FieldIs] = ()
    ) -> Invoice:
        """Conditional update of an existing invoice; see ``InvoiceRepository.update``."""
        return self._record(self._update(self._key(account_id, invoice_id), changes, conditions))

    def find_by_stripe_invoice_id(self, stripe_invoice_id: str) -> Invoice | None:
        """Look the invoice up through the ``byStripeInvoiceId`` index."""
        item = self._query_index(self.definition.indexes[0], stripe_invoice_id)
        return None if item is None else self._record(item)

    def list_for_account(self, account_id: str, *, limit: int = 20, cursor: str | None = None) -> Page[Invoice]:
        """Newest first: ``invoiceId`` embeds the period (``inv_2024-11_<account>``), so it sorts by time."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#u = :u",
            "ExpressionAttributeNames": {"#u": self.definition.partition_key},
            "ExpressionAttributeValues": {":u": {"S": account_id}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = _decode_cursor(cursor, {"userId", "invoiceId"}, account_id)
        try:
            response = self._client.query(**kwargs)
        except ClientError as error:
            raise _unavailable(error, self._table) from error
        invoices = [self._record(from_attribute_values(i)) for i in response.get("Items", [])]
        last_key = response.get("LastEvaluatedKey")
        return Page(invoices, _encode_cursor(last_key) if last_key else None)

    def list_all(
        self, *, period_label: str | None = None, status: str | None = None
    ) -> Iterator[Invoice | InvalidStoredRecord]:
        """Scan page by page, filtered in DynamoDB on the period label and the status."""
        kwargs: dict[str, Any] = {"TableName": self._table}
        expression = _Expression()
        filters = []
        if period_label is not None:
            filters.append(f"{expression.name('period')}.{expression.name('label')} = {expression.value(period_label)}")
        if status is not None:
            filters.append(f"{expression.name('status')} = {expression.value(status)}")
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
            kwargs.update(expression.kwargs())
        yield from self._scan(kwargs, "invoice")


class DynamoAccountRepository(_DynamoTable, AccountRepository):
    """Accounts in the accounts table (deployed as ``payment-methods``)."""

    definition = resources.ACCOUNTS
    codecs = ACCOUNT_CODECS

    def _record(self, item: Item) -> Account:
        return account_from_item(item, self._table)

    def get(self, account_id: str) -> Account | None:
        """The account, or ``None``."""
        item = self._get(self._key(account_id))
        return None if item is None else self._record(item)

    def put(self, account: Account) -> None:
        """Unconditional put (provisioning and seeding)."""
        try:
            self._client.put_item(TableName=self._table, Item=to_attribute_values(account_item(account)))
        except ClientError as error:
            raise _unavailable(error, self._table) from error

    def list_accounts(self, *, page_size: int = 100) -> Iterator[Account | InvalidStoredRecord]:
        """Scan the table page by page, following ``LastEvaluatedKey``; invalid items come as their error."""
        kwargs: dict[str, Any] = {"TableName": self._table, "Limit": page_size, "ConsistentRead": True}
        yield from self._scan(kwargs, "account")

    def find_by_stripe_customer_id(self, stripe_customer_id: str) -> Account | None:
        """Look the account up through the ``byStripeCustomerId`` index."""
        item = self._query_index(self.definition.indexes[0], stripe_customer_id)
        return None if item is None else self._record(item)

    def set_stripe_customer_id_if_absent(
        self, account_id: str, stripe_customer_id: str, changes: AccountChanges | None = None
    ) -> bool:
        """Conditional on ``attribute_not_exists(stripeCustomerId)``: two racing requests, one winner."""
        try:
            self._update(
                self._key(account_id),
                {**(changes or {}), "stripe_customer_id": stripe_customer_id},
                [FieldIs.absent("stripe_customer_id")],
                must_exist=False,
            )
        except ConditionFailed:
            return False
        return True

    def update(self, account_id: str, changes: AccountChanges, *, conditions: Sequence[FieldIs] = ()) -> Account:
        """Conditional update of an existing account; see ``AccountRepository.update``."""
        return self._record(self._update(self._key(account_id), changes, conditions))
