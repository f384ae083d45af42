"""Credit notes in the events table (``credit-note#<id>``), kept for good: they are part of the books.

Each field has its codec, as the invoice's do (``dynamodb_items``): a stored value of the wrong
type is an ``InvalidStoredRecord`` naming the attribute, never a silently wrong credit note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billing_core import resources
from billing_core.adapters.dynamodb import _DynamoTable
from billing_core.adapters.dynamodb_items import (
    _Bad,
    _boolean,
    _check_codecs,
    _Codec,
    _decimal,
    _integer,
    _item_record,
    _map,
    _record_item,
    _simple,
    _text,
)
from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import (
    CreditLine,
    CreditNote,
    CreditNoteChanges,
    CreditNoteState,
    CreditVat,
    Settlement,
)
from billing_core.ports import CreditNoteRepository, FieldIs

Item = dict[str, Any]
CREDIT_NOTE_PREFIX = "credit-note#"


def _enum(kind: type[CreditNoteState] | type[Settlement]) -> Any:
    def read(value: Any) -> Any:
        try:
            return kind(_text(value))
        except ValueError:
            raise _Bad(f"is {value!r}, not a {kind.__name__}") from None

    return read


def _line_item(line: CreditLine) -> dict[str, Any]:
    return {
        "kind": line.kind,
        "description": line.description,
        "net": line.net,
        "tax": line.tax,
        "period": line.period.label,
    }


def _lines(value: Any) -> tuple[CreditLine, ...]:
    if not isinstance(value, list) or not value:
        raise _Bad("is not a list of credited lines")
    lines = []
    for entry in value:
        line = _map(entry)
        try:
            period = Period.parse(_text(line.get("period")))
        except ValueError as error:
            raise _Bad(str(error)) from None
        lines.append(
            CreditLine(
                _text(line.get("kind")),
                _text(line.get("description")),
                _decimal(line.get("net")),
                _decimal(line.get("tax")),
                period,
            )
        )
    return tuple(lines)


def _period_label(value: Any) -> Period:
    try:
        return Period.parse(_text(value))
    except ValueError as error:
        raise _Bad(str(error)) from None


def _vat(value: Any) -> CreditVat:
    vat = _map(value)
    note = vat.get("note")
    return CreditVat(_text(vat.get("category")), _decimal(vat.get("rate")), None if note is None else _text(note))


def _vat_item(vat: CreditVat) -> dict[str, Any]:
    return {"category": vat.category, "rate": vat.rate, **({"note": vat.note} if vat.note else {})}


CREDIT_NOTE_CODECS: Mapping[str, _Codec] = {
    "credit_note_id": _simple("creditNoteId", _text),
    "account_id": _simple("accountId", _text),
    "invoice_id": _simple("invoiceId", _text),
    "sequence": _simple("sequence", _integer),
    "currency": _simple("currency", _text),
    "lines": _simple("lines", _lines, lambda lines: [_line_item(line) for line in lines]),
    "vat": _simple("vat", _vat, _vat_item),
    "reason": _simple("reason", _text),
    "settlement": _simple("settlement", _enum(Settlement), str),
    "full": _simple("full", _boolean),
    "actor": _simple("actor", _text),
    "created_at": _simple("createdAt", _integer),
    "updated_at": _simple("updatedAt", _integer),
    "state": _simple("state", _enum(CreditNoteState), str),
    "stripe_credit_note_id": _simple("stripeCreditNoteId", _text),
    "number": _simple("number", _text),
    "issued_at": _simple("issuedAt", _integer),
    "voided_at": _simple("voidedAt", _integer),
    "refunded_at": _simple("refundedAt", _integer),
    "einvoice_xml": _simple("einvoiceXml", _text),
    "einvoice_pdf": _simple("einvoicePdf", _text),
    "einvoice_error": _simple("einvoiceError", _text),
    "true_up_invoice_id": _simple("trueUpInvoiceId", _text),
    "true_up_period": _simple("trueUpPeriod", _period_label, lambda period: period.label),
}
_check_codecs(CreditNote, CREDIT_NOTE_CODECS)


def credit_note_item(note: CreditNote) -> Item:
    """The events-table item of ``note`` (with its key)."""
    return {
        **_record_item(note, CREDIT_NOTE_CODECS),
        "pk": CREDIT_NOTE_PREFIX + note.credit_note_id,
        "kind": "credit-note",
    }


def credit_note_from_item(item: Mapping[str, Any], table: str) -> CreditNote:
    """The ``CreditNote`` an events-table item holds; ``InvalidStoredRecord`` if it holds none."""
    result: CreditNote = _item_record(
        item,
        CREDIT_NOTE_CODECS,
        CreditNote,
        table,
        f"pk={item.get('pk')}",
        lambda values: CreditNote(**values),
        id_attribute="creditNoteId",
    )
    return result


class DynamoCreditNotes(_DynamoTable, CreditNoteRepository):
    """Credit notes in the events table."""

    definition = resources.EVENTS
    codecs = CREDIT_NOTE_CODECS

    def _record(self, item: Item) -> CreditNote:
        return credit_note_from_item(item, self._table)

    def get(self, credit_note_id: str) -> CreditNote | None:
        """The credit note, or ``None``."""
        item = self._get(self._key(CREDIT_NOTE_PREFIX + credit_note_id))
        return None if item is None else self._record(item)

    def create_if_absent(self, note: CreditNote) -> bool:
        """Conditional put on the credit note's id."""
        return self._put_if_absent(credit_note_item(note))

    def update(
        self, credit_note_id: str, changes: CreditNoteChanges, *, conditions: Sequence[FieldIs] = ()
    ) -> CreditNote:
        """Conditional update of an existing credit note; see ``CreditNoteRepository.update``."""
        return self._record(self._update(self._key(CREDIT_NOTE_PREFIX + credit_note_id), changes, conditions))
