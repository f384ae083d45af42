"""How records are stored: ``Invoice``, ``Account``, ``BillingRunRecord``, ``CostSnapshot``, ``PeriodRate`` as items.

The one place that knows attribute names. Each record field has a codec: the attributes it is stored
in, how a value becomes them and how they are read back. Reading checks every type: a base fee
stored as the string "25.00", a cost scope stored as a map, a status no one knows, all raise
``InvalidStoredRecord`` naming the table, the item and the attribute. Items keep the attribute names
deployed tables already hold (``userId``, ``stripeInvoiceId``, ``awsBreakdown`` ...). It is a little
over the usual module size because the attribute names must stay in this one place.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from billing_core.domain.account_profile import PostalAddress
from billing_core.domain.audit import AuditEntry
from billing_core.domain.corrections import Correction, TrueUp
from billing_core.domain.costs import CostAttribution, CostLine, CostReport, CostSnapshot, Period
from billing_core.domain.errors import ConfigurationError
from billing_core.domain.fx import Conversion, FxQuote, FxRate, FxRule, NewestRate, PeriodRate
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import (
    Account,
    BillingRunRecord,
    Invoice,
    InvoiceVat,
    LineDescriptions,
    RunStatus,
    SavedPaymentMethod,
    SetupFailure,
    field_names,
    invoice_fields,
    invoice_from_fields,
)
from billing_core.errors import InvalidStoredRecord

Item = dict[str, Any]


class _Bad(Exception):
    """A stored value is not what its field needs; the message says how (caught and named below)."""


# --- value codecs: plain item values (as boto3's TypeDeserializer gives them) <-> domain values ---------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"is a {type(value).__name__}, expected a string")
    return value


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise _Bad(f"is a {type(value).__name__}, expected a number")
    amount = Decimal(value)
    if not amount.is_finite():
        raise _Bad("is not a finite number")
    return amount


def _integer(value: Any) -> int:
    number = _decimal(value)
    if number != number.to_integral_value():
        raise _Bad(f"is {number}, expected a whole number")
    return int(number)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"is a {type(value).__name__}, expected true or false")
    return value


def _fx_quote(value: Any) -> FxQuote:
    try:
        return FxQuote(_text(value))
    except ValueError:
        raise _Bad(f"is {value!r}, not a way to quote a rate") from None


def _status(value: Any) -> InvoiceStatus:
    try:
        return InvoiceStatus(_text(value))
    except ValueError:
        raise _Bad(f"is {value!r}, not an invoice status") from None


def _map(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Bad(f"is a {type(value).__name__}, expected a map")
    return value


def _period(value: Any) -> Period:
    try:
        return Period.parse(_text(_map(value).get("label")))
    except ValueError as error:
        raise _Bad(str(error)) from None


def _breakdown(value: Any) -> dict[str, Decimal]:
    return {str(service): _decimal(amount) for service, amount in _map(value).items()}


def _line_kinds(value: Any) -> frozenset[str]:
    if not isinstance(value, (list, set, frozenset, tuple)):
        raise _Bad(f"is a {type(value).__name__}, expected a list of line kinds")
    return frozenset(_text(kind) for kind in value)


def _integers(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _Bad(f"is a {type(value).__name__}, expected a list of whole numbers")
    return tuple(_integer(number) for number in value)


def _corrections(value: Any) -> tuple[Correction, ...]:
    if not isinstance(value, list):
        raise _Bad(f"is a {type(value).__name__}, expected a list of corrections")
    try:
        return tuple(
            Correction(
                Period.parse(_text(_map(entry)["period"])),
                _decimal(_map(entry)["amount"]),
                _text(_map(entry)["description"]),
                by_credit_note=_boolean(_map(entry).get("byCreditNote", False)),
            )
            for entry in value
        )
    except (KeyError, ValueError) as bad:
        raise _Bad(f"holds a malformed correction ({bad})") from None


def _corrections_item(corrections: tuple[Correction, ...]) -> list[dict[str, Any]]:
    # byCreditNote only where set: a record written before it reads the same.
    return [
        {
            "period": c.period.label,
            "amount": c.amount,
            "description": c.description,
            **({"byCreditNote": True} if c.by_credit_note else {}),
        }
        for c in corrections
    ]


def _descriptions(value: Any) -> LineDescriptions:
    texts = _map(value)
    return LineDescriptions(base_fee=_text(texts.get("base-fee")), aws=_text(texts.get("aws")))


def _iso_date(value: Any) -> date:
    try:
        return date.fromisoformat(_text(value))
    except ValueError:
        raise _Bad(f"is {value!r}, expected a date YYYY-MM-DD") from None


def _scope(value: Any) -> str | None:
    # Absent or empty means "the whole payer account", as the accounts table has always said it.
    return _text(value) or None


def _setup_failure(value: Any) -> SetupFailure:
    failure = _map(value)
    decline = failure.get("declineCode")
    return SetupFailure(
        setup_intent_id=_text(failure.get("setupIntentId")),
        code=_text(failure.get("code")),
        decline_code=None if decline is None else _text(decline),
    )


def _setup_failure_item(failure: SetupFailure) -> dict[str, str]:
    item = {"setupIntentId": failure.setup_intent_id, "code": failure.code}
    if failure.decline_code:
        item["declineCode"] = failure.decline_code
    return item


def _address(value: Any) -> PostalAddress:
    parts = _map(value)
    return PostalAddress(_text(parts.get("line1")), _text(parts.get("postalCode")), _text(parts.get("city")))


def _address_item(address: PostalAddress) -> dict[str, str]:
    return {"line1": address.line1, "postalCode": address.postal_code, "city": address.city}


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class _Codec:
    """How one record field is stored: in which attributes, written how, read how."""

    attributes: tuple[str, ...]
    write: Callable[[Any], dict[str, Any]]  # value -> attributes to set (the others are removed)
    read: Callable[[Item], Any]  # item -> value; ``_ABSENT`` when none of the attributes is there
    guard_value: Callable[[Any], Any] = _same  # value -> what a condition on the first attribute compares
    # "set" (replace), "once" (the first value written stays: if_not_exists, never removed) or
    # "grow" (a string set that only takes additions: ADD).
    update_mode: str = "set"


_ABSENT = object()


def _simple(attribute: str, read: Callable[[Any], Any], write: Callable[[Any], Any] = _same) -> _Codec:
    return _Codec(
        attributes=(attribute,),
        write=lambda value: {} if value is None else {attribute: write(value)},
        read=lambda item: _ABSENT if item.get(attribute) is None else read(item[attribute]),
        guard_value=write,
    )


def _write_once(attribute: str, read: Callable[[Any], Any]) -> _Codec:
    return dataclasses.replace(_simple(attribute, read), update_mode="once")


def _growing_set(attribute: str) -> _Codec:
    """Line kinds as a DynamoDB string set (a list written before is read the same way)."""
    return _Codec(
        attributes=(attribute,),
        write=lambda value: {attribute: set(value)} if value else {},
        read=lambda item: _ABSENT if item.get(attribute) is None else _line_kinds(item[attribute]),
        update_mode="grow",
    )


def _read_payment_method(item: Item) -> SavedPaymentMethod | object:
    method_id = item.get("defaultPaymentMethod") or item.get("paymentMethod")
    if method_id is None:
        return _ABSENT
    brand, last4 = item.get("brand"), item.get("last4")
    return SavedPaymentMethod(
        id=_text(method_id),
        type=_text(item.get("paymentMethodType") or "unknown"),
        brand=None if brand is None else _text(brand),
        last4=None if last4 is None else _text(last4)[-4:],
    )


def _write_payment_method(method: SavedPaymentMethod | None) -> dict[str, Any]:
    if method is None:
        return {}
    # ``paymentMethod`` is the older name of the same id; both are kept for readers of either.
    item = {"defaultPaymentMethod": method.id, "paymentMethod": method.id, "paymentMethodType": method.type}
    if method.brand:
        item["brand"] = method.brand
    if method.last4:
        item["last4"] = method.last4
    return item


_PAYMENT_METHOD = _Codec(
    attributes=("defaultPaymentMethod", "paymentMethod", "paymentMethodType", "brand", "last4"),
    write=_write_payment_method,
    read=_read_payment_method,
    guard_value=lambda method: method.id,
)

ACCOUNT_CODECS: dict[str, _Codec] = {
    "account_id": _simple("userId", _text),
    "cost_scope": _simple("costScope", _scope),
    "base_fee_override": _simple("baseFeeOverride", _decimal),
    "stripe_customer_id": _simple("stripeCustomerId", _text),
    "email": _simple("email", _text),
    "payment_method": _PAYMENT_METHOD,
    "payment_method_changed_at": _simple("paymentMethodChangedAt", _integer),
    "last_setup_error": _simple("lastSetupError", _setup_failure, _setup_failure_item),
    "setup_failed_at": _simple("setupFailedAt", _integer),
    "customer_synced_at": _simple("customerSyncedAt", _integer),
    "created_at": _simple("createdAt", _integer),
    "updated_at": _simple("updatedAt", _integer),
    "name": _simple("name", _text),
    "language": _simple("language", _text),
    "country": _simple("country", _text),
    "address": _simple("address", _address, _address_item),
    "disabled_at": _simple("disabledAt", _integer),
    "vat_id": _simple("vatId", _text),
    "buyer_reference": _simple("buyerReference", _text),
    "invoice_emails": _Codec(  # a list (in order); absent when the account's e-mail gets the invoices
        attributes=("invoiceEmails",),
        write=lambda addresses: {"invoiceEmails": list(addresses)} if addresses else {},
        read=lambda item: _ABSENT if not item.get("invoiceEmails") else _texts(item["invoiceEmails"]),
    ),
    "undeliverable_emails": _Codec(  # absent while every recipient is deliverable
        attributes=("undeliverableEmails",),
        write=lambda addresses: {"undeliverableEmails": list(addresses)} if addresses else {},
        read=lambda item: _ABSENT if not item.get("undeliverableEmails") else _texts(item["undeliverableEmails"]),
    ),
}


def _texts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("is not a list of texts")
    return tuple(_text(entry) for entry in value)


def _write_conversion(conversion: Conversion | None) -> dict[str, Any]:
    if conversion is None:
        return {}
    fx = conversion.rate
    item = {"fxRate": fx.rate, "fxSource": fx.source, "fxDate": fx.as_of.isoformat(), "fxQuote": fx.quote.value}
    if conversion.note is not None:
        item["fxNote"] = conversion.note
    return item


def _read_conversion(item: Item) -> Conversion | object:
    if item.get("fxRate") is None:
        return _ABSENT
    if item.get("fxDate") is None:
        raise _Bad("names a rate without the date it applies to (fxDate)")
    quote = item.get("fxQuote")
    note = item.get("fxNote")
    try:
        rate = FxRate(
            _decimal(item["fxRate"]),
            _text(item.get("fxSource") or "recorded"),
            _iso_date(item["fxDate"]),
            FxQuote.INVOICE_PER_COST_UNIT if quote is None else _fx_quote(quote),
        )
    except ConfigurationError as error:
        raise _Bad(str(error)) from None
    return Conversion(rate, None if note is None else _text(note))


def _write_true_up(true_up: TrueUp) -> dict[str, Any]:
    item: dict[str, Any] = {"corrections": _corrections_item(true_up.corrections)}
    item["creditIn"] = true_up.credit_in
    item["carriedOut"] = true_up.carried_out
    for attribute, text in (
        ("creditFrom", true_up.credit_from),
        ("creditDescription", true_up.credit_description),
        ("carriedDescription", true_up.carried_description),
    ):
        if text is not None:
            item[attribute] = text
    return item


def _read_true_up(item: Item) -> TrueUp:
    def text(attribute: str) -> str | None:
        return None if item.get(attribute) is None else _text(item[attribute])

    def amount(attribute: str) -> Decimal:
        return Decimal(0) if item.get(attribute) is None else _decimal(item[attribute])

    return TrueUp(
        corrections=() if item.get("corrections") is None else _corrections(item["corrections"]),
        credit_in=amount("creditIn"),
        credit_from=text("creditFrom"),
        credit_description=text("creditDescription"),
        carried_out=amount("carriedOut"),
        carried_description=text("carriedDescription"),
    )


def _write_vat(vat: InvoiceVat | None) -> dict[str, Any]:
    if vat is None:
        return {}
    item: dict[str, Any] = {
        "netAmount": vat.net,
        "taxAmount": vat.tax,
        "taxRate": vat.rate,
        "taxCategory": vat.category,
    }
    if vat.note is not None:
        item["taxNote"] = vat.note
    if vat.manual_line_tax:
        item["manualTax"] = list(vat.manual_line_tax)
    return item


def _read_vat(item: Item) -> InvoiceVat | object:
    if item.get("netAmount") is None:
        return _ABSENT
    if item.get("taxCategory") is None:
        raise _Bad("names a net amount without its VAT category (taxCategory)")
    return InvoiceVat(
        category=_text(item["taxCategory"]),
        net=_decimal(item["netAmount"]),
        tax=Decimal(0) if item.get("taxAmount") is None else _decimal(item["taxAmount"]),
        rate=Decimal(0) if item.get("taxRate") is None else _decimal(item["taxRate"]),
        note=None if item.get("taxNote") is None else _text(item["taxNote"]),
        manual_line_tax=() if item.get("manualTax") is None else _integers(item["manualTax"]),
    )


INVOICE_CODECS: dict[str, _Codec] = {
    "account_id": _simple("userId", _text),
    "invoice_id": _simple("invoiceId", _text),
    "status": _simple("status", _status, lambda status: InvoiceStatus(status).value),
    "period": _simple(
        "period",
        _period,
        lambda period: {"label": period.label, "start": period.start.isoformat(), "end": period.end.isoformat()},
    ),
    "currency": _simple("currency", _text),
    "amount": _simple("amount", _decimal),
    "base_fee": _simple("baseFee", _decimal),
    "aws_costs": _simple("awsCosts", _decimal),
    "aws_breakdown": _simple("awsBreakdown", _breakdown, dict),
    "line_descriptions": _simple(
        "lineDescriptions", _descriptions, lambda texts: {"base-fee": texts.base_fee, "aws": texts.aws}
    ),
    "created_at": _simple("createdAt", _integer),
    "updated_at": _simple("updatedAt", _integer),
    "costs_estimated": _simple("costsEstimated", _boolean),
    "markup_percent": _simple("markupPercent", _decimal),
    "conversion": _Codec(
        attributes=("fxRate", "fxSource", "fxDate", "fxQuote", "fxNote"),
        write=_write_conversion,
        read=_read_conversion,
    ),
    "aws_raw": _simple("awsRaw", _breakdown, dict),
    "cost_currency": _simple("costCurrency", _text),
    "true_up": _Codec(
        attributes=(
            "corrections",
            "creditIn",
            "creditFrom",
            "creditDescription",
            "carriedOut",
            "carriedDescription",
        ),
        write=_write_true_up,
        read=_read_true_up,
    ),
    "corrected_by": _simple("correctedBy", _line_kinds, sorted),
    "cost_scope": _simple("costScope", _text),
    "run_id": _simple("runId", _text),
    "vat": _Codec(
        attributes=("netAmount", "taxAmount", "taxRate", "taxCategory", "taxNote", "manualTax"),
        write=_write_vat,
        read=_read_vat,
    ),
    # The parts the job and the events move forward, attribute by attribute (``INVOICE_PART_FIELDS``).
    "lines_added": _growing_set("linesAdded"),
    "stripe_customer_id": _simple("stripeCustomerId", _text),
    "stripe_invoice_id": _simple("stripeInvoiceId", _text),
    "stripe_total": _simple("stripeTotal", _integer),
    "stripe_tax": _simple("stripeTax", _integer),
    "key_generation": _simple("keyGeneration", _integer),
    "number": _simple("number", _text),
    "hosted_invoice_url": _simple("hostedInvoiceUrl", _text),
    "invoice_pdf": _simple("invoicePdf", _text),
    "payment_method_missing": _simple("paymentMethodMissing", _boolean),
    "finalized_at": _write_once("finalizedAt", _integer),
    "finalization_error": _simple("finalizationError", _text),
    "status_order": _simple("statusOrder", _text),
    "attempt_count": _simple("attemptCount", _integer),
    "last_event_at": _simple("lastEventAt", _integer),
    "next_payment_attempt": _simple("nextPaymentAttempt", _integer),
    "paid_at": _write_once("paidAt", _integer),
    "credited": _Codec(  # absent until a credit note is issued: most invoices are never credited
        attributes=("credited",),
        write=lambda amount: {"credited": amount} if amount else {},
        read=lambda item: _ABSENT if item.get("credited") is None else _decimal(item["credited"]),
    ),
    "balance_applied": _Codec(  # absent unless Stripe moved the customer's balance with this invoice
        attributes=("balanceApplied",),
        write=lambda amount: {"balanceApplied": amount} if amount else {},
        read=lambda item: _ABSENT if item.get("balanceApplied") is None else _decimal(item["balanceApplied"]),
    ),
    "carried_to_balance": _Codec(  # absent unless Stripe moved the customer's balance with this invoice
        attributes=("carriedToBalance",),
        write=lambda amount: {"carriedToBalance": amount} if amount else {},
        read=lambda item: _ABSENT if item.get("carriedToBalance") is None else _decimal(item["carriedToBalance"]),
    ),
    "einvoice_xml": _simple("einvoiceXml", _text),
    "einvoice_pdf": _simple("einvoicePdf", _text),
    "einvoice_error": _simple("einvoiceError", _text),
}


def _check_codecs(record_type: type, codecs: Mapping[str, _Codec]) -> None:
    missing = field_names(record_type) ^ set(codecs)
    if missing:  # pragma: no cover - caught by the first test that imports this module
        raise TypeError(f"{record_type.__name__} fields without a codec (or codecs without a field): {missing}")


_check_codecs(Account, ACCOUNT_CODECS)
_check_codecs(Invoice, INVOICE_CODECS)


# --- records <-> items -----------------------------------------------------------------------------


def _record_item(record: object, codecs: Mapping[str, _Codec]) -> Item:
    item: Item = {}
    for name, codec in codecs.items():
        item.update(codec.write(getattr(record, name)))
    return item


def _item_record(
    item: Mapping[str, Any],
    codecs: Mapping[str, _Codec],
    record_type: type,
    table: str,
    key: str,
    build: Callable[..., Any],
    *,
    id_attribute: str | None = None,
) -> Any:
    id_attribute = id_attribute or ("userId" if record_type is Account else "invoiceId")
    record_id = item.get(id_attribute)
    invalid = functools.partial(
        InvalidStoredRecord, table, key, record_id=record_id if isinstance(record_id, str) else None
    )
    values: dict[str, Any] = {}
    for name, codec in codecs.items():
        try:
            value = codec.read(dict(item))
        except _Bad as bad:
            raise invalid(codec.attributes[0], str(bad)) from None
        if value is not _ABSENT:
            values[name] = value
    required = [f.name for f in fields(record_type) if f.default is MISSING and f.default_factory is MISSING]
    for name in required:
        if name not in values:
            raise invalid(codecs[name].attributes[0], "is missing")
    try:
        return build(values)
    except (ConfigurationError, ValueError, TypeError) as error:
        raise invalid("item", str(error)) from None


def account_item(account: Account) -> Item:
    """The accounts-table item of ``account``."""
    return _record_item(account, ACCOUNT_CODECS)


def account_from_item(item: Mapping[str, Any], table: str) -> Account:
    """The ``Account`` an accounts-table item holds; ``InvalidStoredRecord`` if it holds none."""
    key = f"userId={item.get('userId')}"
    result: Account = _item_record(item, ACCOUNT_CODECS, Account, table, key, lambda values: Account(**values))
    return result


def invoice_item(invoice: Invoice) -> Item:
    """The invoices-table item of ``invoice``."""
    item: Item = {}
    for name, value in invoice_fields(invoice).items():
        item.update(INVOICE_CODECS[name].write(value))
    return item


def invoice_from_item(item: Mapping[str, Any], table: str) -> Invoice:
    """The ``Invoice`` an invoices-table item holds; ``InvalidStoredRecord`` if it holds none."""
    key = f"userId={item.get('userId')} invoiceId={item.get('invoiceId')}"
    result: Invoice = _item_record(item, INVOICE_CODECS, Invoice, table, key, invoice_from_fields)
    return result


@dataclass(frozen=True)
class ItemUpdate:
    """What a changes mapping does to an item: attributes set, set unless present, added to, removed."""

    assign: dict[str, Any]
    set_once: dict[str, Any]
    add: dict[str, Any]
    remove: list[str]

    @property
    def attributes(self) -> set[str]:
        return {*self.assign, *self.set_once, *self.add, *self.remove}


def changes_to_update(changes: Mapping[str, Any], codecs: Mapping[str, _Codec]) -> ItemUpdate:
    """The update a changes mapping makes (a write-once or growing field is never removed)."""
    update = ItemUpdate({}, {}, {}, [])
    for name, value in changes.items():
        codec = codecs[name]
        written = codec.write(value)
        {"set": update.assign, "once": update.set_once, "grow": update.add}[codec.update_mode].update(written)
        if codec.update_mode == "set":
            update.remove.extend(attribute for attribute in codec.attributes if attribute not in written)
    return update


def guard_attribute(name: str, values: tuple[object, ...], codecs: Mapping[str, _Codec]) -> tuple[str, list[Any]]:
    """The attribute a guard on field ``name`` checks and the stored values it accepts."""
    codec = codecs[name]
    return codec.attributes[0], [codec.guard_value(value) for value in values]


# --- events table: run records and cost snapshots ------------------------------------------------------


def run_record_item(record: BillingRunRecord) -> Item:
    """A billing run record as an events-table item (without its key and expiry)."""
    return {
        "kind": "billing-run",
        "runId": record.run_id,
        "period": record.period.label,
        "status": record.status.value,
        "trigger": record.trigger,
        "accounts": record.accounts,
        "skipped": record.skipped,
        "enqueued": record.enqueued,
        "costRequests": record.cost_requests,
        "startedAt": record.started_at,
        "updatedAt": record.updated_at,
        "costsEstimated": record.costs_estimated,
        "skippedReasons": dict(record.skipped_reasons),
    }


def run_record_from_item(item: Mapping[str, Any], table: str) -> BillingRunRecord:
    """The run record an events-table item holds; ``InvalidStoredRecord`` if it holds none."""

    def read(attribute: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
        try:
            return parse(item.get(attribute, default))
        except (_Bad, ValueError) as bad:
            raise InvalidStoredRecord(table, f"pk={item.get('pk')}", attribute, str(bad)) from None

    return BillingRunRecord(
        period=read("period", lambda label: Period.parse(_text(label))),
        run_id=read("runId", _text),
        status=read("status", lambda status: RunStatus(_text(status))),
        trigger=read("trigger", _text),
        accounts=read("accounts", _integer, 0),
        skipped=read("skipped", _integer, 0),
        enqueued=read("enqueued", _integer, 0),
        cost_requests=read("costRequests", _integer, 0),
        started_at=read("startedAt", _integer, 0),
        updated_at=read("updatedAt", _integer, 0),
        skipped_reasons=read("skippedReasons", lambda value: {str(k): _text(v) for k, v in _map(value).items()}, {}),
        costs_estimated=read("costsEstimated", _boolean, False),
    )


def snapshot_item(snapshot: CostSnapshot) -> Item:
    """A cached month-to-date report as an events-table item (without its key and expiry)."""
    lines = []
    for line in snapshot.report.lines:
        entry: dict[str, Any] = {"service": line.service, "amount": line.amount}
        if line.scope is not None:
            entry["scope"] = line.scope
        lines.append(entry)
    report = snapshot.report
    return {
        "kind": "cost-preview",
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "currency": report.currency,
        "estimated": report.estimated,
        "groupedBy": report.attribution.key,
        "lines": lines,
        "asOf": int(snapshot.as_of.timestamp() * 1000),
        "forecastTotal": snapshot.forecast_total,
        "forecastMethod": snapshot.forecast_method,
    }


def snapshot_from_item(item: Mapping[str, Any], table: str) -> CostSnapshot:
    """The snapshot an events-table item holds; ``InvalidStoredRecord`` if it holds none."""
    try:
        lines = item["lines"]
        if not isinstance(lines, list):
            raise _Bad("lines is not a list")
        report = CostReport(
            start=_iso_date(item["start"]),
            end=_iso_date(item["end"]),
            currency=_text(item["currency"]),
            estimated=_boolean(item["estimated"]),
            lines=tuple(
                CostLine(
                    service=_text(line["service"]),
                    amount=_decimal(line["amount"]),
                    scope=None if line.get("scope") is None else _text(line["scope"]),
                )
                for line in lines
            ),
            attribution=CostAttribution.from_key(_text(item["groupedBy"])),
        )
        return CostSnapshot(
            report=report,
            as_of=datetime.fromtimestamp(_integer(item["asOf"]) / 1000, UTC),
            forecast_total=_decimal(item["forecastTotal"]),
            forecast_method=_text(item["forecastMethod"]),
        )
    except (_Bad, KeyError, TypeError, ValueError, AttributeError) as bad:
        raise InvalidStoredRecord(table, f"pk={item.get('pk')}", "item", str(bad)) from None


# --- events table: the exchange rate of each period -----------------------------------------------------


def period_rate_item(rate: PeriodRate) -> Item:
    """A period's rate as an events-table item (without its key)."""
    item: Item = {
        "kind": "fx-rate",
        "period": rate.period.label,
        "rate": rate.fx.rate,
        "source": rate.fx.source,
        "rateDate": rate.fx.as_of.isoformat(),
        "quote": rate.fx.quote.value,
    }
    if rate.feed is not None:
        item["feed"] = rate.feed
    if rate.rule is not None:
        item["rule"] = rate.rule.value
    return item


def period_rate_from_item(item: Mapping[str, Any], table: str) -> PeriodRate:
    """The period rate an events-table item holds; ``InvalidStoredRecord`` if it holds none."""
    try:
        fx = FxRate(
            _decimal(item["rate"]), _text(item["source"]), _iso_date(item["rateDate"]), _fx_quote(item["quote"])
        )
        return PeriodRate(
            period=Period.parse(_text(item["period"])),
            fx=fx,
            feed=None if item.get("feed") is None else _text(item["feed"]),
            rule=None if item.get("rule") is None else FxRule(_text(item["rule"])),
        )
    except (_Bad, KeyError, TypeError, ValueError, ConfigurationError) as bad:
        raise InvalidStoredRecord(table, f"pk={item.get('pk')}", "item", str(bad)) from None


def newest_rate_item(newest: NewestRate) -> Item:
    """The newest published rate as an events-table item (without its key)."""
    return {
        "kind": "fx-newest",
        "rate": newest.fx.rate,
        "source": newest.fx.source,
        "rateDate": newest.fx.as_of.isoformat(),
        "quote": newest.fx.quote.value,
        "feed": newest.feed,
        "readAt": newest.read_at,
    }


def newest_rate_from_item(item: Mapping[str, Any], table: str) -> NewestRate:
    """The newest published rate an events-table item holds; ``InvalidStoredRecord`` if it holds none."""
    try:
        fx = FxRate(
            _decimal(item["rate"]), _text(item["source"]), _iso_date(item["rateDate"]), _fx_quote(item["quote"])
        )
        return NewestRate(fx, _text(item["feed"]), int(_decimal(item["readAt"])))
    except (_Bad, KeyError, TypeError, ValueError, ConfigurationError) as bad:
        raise InvalidStoredRecord(table, f"pk={item.get('pk')}", "item", str(bad)) from None


# --- events table: the audit log --------------------------------------------------------------------


def audit_entry_item(entry: AuditEntry) -> Item:
    """An audit entry as an events-table item (without its key and stream)."""
    item: Item = {
        "kind": "audit",
        "entryId": entry.entry_id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "before": dict(entry.before),
        "after": dict(entry.after),
        "auditAt": f"{entry.at:015d}#{entry.entry_id}",
    }
    if entry.account_id is not None:
        item["accountId"] = entry.account_id
    if entry.reason is not None:
        item["reason"] = entry.reason
    return item


def audit_entry_from_item(item: Mapping[str, Any], table: str) -> AuditEntry:
    """The audit entry an events-table item holds; ``InvalidStoredRecord`` if it holds none."""
    try:
        return AuditEntry(
            entry_id=_text(item["entryId"]),
            at=_integer(item["at"]),
            actor=_text(item["actor"]),
            action=_text(item["action"]),
            account_id=None if item.get("accountId") is None else _text(item["accountId"]),
            before={str(k): _text(v) for k, v in _map(item.get("before", {})).items()},
            after={str(k): _text(v) for k, v in _map(item.get("after", {})).items()},
            reason=None if item.get("reason") is None else _text(item["reason"]),
        )
    except (_Bad, KeyError, TypeError, ValueError) as bad:
        raise InvalidStoredRecord(table, f"pk={item.get('pk')}", "item", str(bad)) from None
