"""Mailings and deliveries in the events table (``mailing#<doc>#<n>``, ``delivery#<doc>#<n>#<address>``),
kept for good: they prove a document reached its customer.

A delivery's SES message id also gets a small pointer item (``mail-message#<id>``), written when the id
is recorded, so an SES event finds its delivery with one read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from billing_core import resources
from billing_core.adapters.dynamodb import _DynamoTable, _Expression, _unavailable, to_attribute_values
from billing_core.adapters.dynamodb_items import (
    _ABSENT,
    _Bad,
    _boolean,
    _check_codecs,
    _Codec,
    _integer,
    _item_record,
    _record_item,
    _simple,
    _text,
    _texts,
)
from billing_core.domain.deliveries import (
    Delivery,
    DeliveryChanges,
    DeliveryState,
    DocumentKind,
    Mailing,
    MailingChanges,
    mailing_id_for,
)
from billing_core.errors import InvalidStoredRecord
from billing_core.ports import DeliveryRepository, FieldIs

Item = dict[str, Any]
MAILING_PREFIX = "mailing#"
DELIVERY_PREFIX = "delivery#"
MESSAGE_PREFIX = "mail-message#"


def _enum(kind: type[DeliveryState] | type[DocumentKind]) -> Any:
    def read(value: Any) -> Any:
        try:
            return kind(_text(value))
        except ValueError:
            raise _Bad(f"is {value!r}, not a {kind.__name__}") from None

    return read


MAILING_CODECS: Mapping[str, _Codec] = {
    "document_id": _simple("documentId", _text),
    "kind": _simple("documentKind", _enum(DocumentKind), str),
    "account_id": _simple("accountId", _text),
    "round_number": _simple("round", _integer),
    "recipients": _Codec(
        attributes=("recipients",),
        write=lambda addresses: {"recipients": list(addresses)},
        read=lambda item: _ABSENT if "recipients" not in item else _texts(item["recipients"] or []),
    ),
    "requested_at": _simple("requestedAt", _integer),
    "actor": _simple("actor", _text),
    "queued_at": _simple("queuedAt", _integer),
}
_check_codecs(Mailing, MAILING_CODECS)

DELIVERY_CODECS: Mapping[str, _Codec] = {
    "delivery_id": _simple("deliveryId", _text),
    "document_id": _simple("documentId", _text),
    "account_id": _simple("accountId", _text),
    "round_number": _simple("round", _integer),
    "recipient": _simple("recipient", _text),
    "state": _simple("state", _enum(DeliveryState), str),
    "attempts": _simple("attempts", _integer),
    "claimed_at": _simple("claimedAt", _integer),
    "updated_at": _simple("updatedAt", _integer),
    "message_id": _simple("messageId", _text),
    "sent_at": _simple("sentAt", _integer),
    "reason": _simple("reason", _text),
    "possible_duplicate": _simple("possibleDuplicate", _boolean),
}
_check_codecs(Delivery, DELIVERY_CODECS)


def mailing_item(mailing: Mailing) -> Item:
    """The events-table item of ``mailing``."""
    return {**_record_item(mailing, MAILING_CODECS), "pk": MAILING_PREFIX + mailing.mailing_id, "kind": "mailing"}


def mailing_from_item(item: Mapping[str, Any], table: str) -> Mailing:
    """The ``Mailing`` an item holds; ``InvalidStoredRecord`` if it holds none."""
    result: Mailing = _item_record(
        item, MAILING_CODECS, Mailing, table, f"pk={item.get('pk')}", lambda v: Mailing(**v), id_attribute="documentId"
    )
    return result


def delivery_item(delivery: Delivery) -> Item:
    """The events-table item of ``delivery``."""
    return {
        **_record_item(delivery, DELIVERY_CODECS),
        "pk": DELIVERY_PREFIX + delivery.delivery_id,
        "kind": "delivery",
    }


def delivery_from_item(item: Mapping[str, Any], table: str) -> Delivery:
    """The ``Delivery`` an item holds; ``InvalidStoredRecord`` if it holds none."""
    result: Delivery = _item_record(
        item,
        DELIVERY_CODECS,
        Delivery,
        table,
        f"pk={item.get('pk')}",
        lambda values: Delivery(**values),
        id_attribute="deliveryId",
    )
    return result


class _DynamoMailings(_DynamoTable):
    definition = resources.EVENTS
    codecs = MAILING_CODECS

    def _record(self, item: Item) -> Mailing:
        return mailing_from_item(item, self._table)


class DynamoDeliveries(_DynamoTable, DeliveryRepository):
    """Mailings and deliveries in the events table."""

    definition = resources.EVENTS
    codecs = DELIVERY_CODECS

    def __init__(self, client: Any, table: str) -> None:
        super().__init__(client, table)
        self._mailings = _DynamoMailings(client, table)

    def _record(self, item: Item) -> Delivery:
        return delivery_from_item(item, self._table)

    def get_mailing(self, document_id: str, round_number: int) -> Mailing | None:
        """See ``DeliveryRepository.get_mailing``."""
        item = self._get(self._key(MAILING_PREFIX + mailing_id_for(document_id, round_number)))
        return None if item is None else mailing_from_item(item, self._table)

    def create_mailing_if_absent(self, mailing: Mailing) -> bool:
        """Conditional put on the mailing's key."""
        return self._put_if_absent(mailing_item(mailing))

    def update_mailing(self, document_id: str, round_number: int, changes: MailingChanges) -> Mailing:
        """Update of an existing mailing."""
        key = self._key(MAILING_PREFIX + mailing_id_for(document_id, round_number))
        return self._mailings._record(self._mailings._update(key, changes, ()))

    def get(self, delivery_id: str) -> Delivery | None:
        """See ``DeliveryRepository.get``."""
        item = self._get(self._key(DELIVERY_PREFIX + delivery_id))
        return None if item is None else self._record(item)

    def create_if_absent(self, delivery: Delivery) -> bool:
        """Conditional put on the delivery's key."""
        return self._put_if_absent(delivery_item(delivery))

    def update(self, delivery_id: str, changes: DeliveryChanges, *, conditions: Sequence[FieldIs] = ()) -> Delivery:
        """Conditional update; the message id's pointer is written first (a pointer to a delivery that did not
        take the id is harmless: ``find_by_message_id`` checks the delivery holds it)."""
        message_id = changes.get("message_id")
        if message_id:
            self._put_pointer(message_id, delivery_id)
        return self._record(self._update(self._key(DELIVERY_PREFIX + delivery_id), changes, conditions))

    def find_by_message_id(self, message_id: str) -> Delivery | None:
        """The delivery the pointer names, if it holds that message id."""
        item = self._get(self._key(MESSAGE_PREFIX + message_id))
        if item is None or not isinstance(item.get("deliveryId"), str):
            return None
        delivery = self.get(item["deliveryId"])
        return delivery if delivery is not None and delivery.message_id == message_id else None

    def all_mailings(self) -> Iterator[Mailing | InvalidStoredRecord]:
        """Scan the events table for mailing items, page by page."""
        expression = _Expression()
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "FilterExpression": f"{expression.name('kind')} = {expression.value('mailing')}",
            **expression.kwargs(),
        }
        yield from self._mailings._scan(kwargs, "mailing")

    def _put_pointer(self, message_id: str, delivery_id: str) -> None:
        item = {"pk": MESSAGE_PREFIX + message_id, "kind": "mail-message", "deliveryId": delivery_id}
        try:
            self._client.put_item(TableName=self._table, Item=to_attribute_values(item))
        except ClientError as error:
            raise _unavailable(error, self._table) from error
