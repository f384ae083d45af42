"""Checking what the emulator answers (objects, lists, events, errors) against the SDK's resource classes."""

from __future__ import annotations

import functools
import typing
from decimal import Decimal
from typing import Any, Literal

import stripe
from stripe._list_object import ListObject
from stripe._stripe_object import StripeObject

from stripe_emulator.contract.sdk import (
    API_VERSION,
    NONE_TYPE,
    declared_fields,
    error_codes,
    is_optional,
    is_typed_dict,
    is_untyped_object,
    literals,
    resource_classes,
    union_args,
)

# Fields the SDK declares as Optional that Stripe leaves out of an object unless they apply, rather
# than sending null (the SDK's Optional covers both). Anything else the resource declares is always
# present. Sub-objects named after a payment method or mandate type (``card``, ``sepa_debit``,
# ``multi_use`` ...) are present only for that type; that rule is derived, not listed.
PRESENT_ONLY_WHEN_SET: dict[str, str] = {
    "*.deleted": "only on the stub a DELETE answers with",
    "event.account": "only on events of connected accounts (Connect)",
    "event.data.previous_attributes": "only on events of an update (``*.updated`` and the like)",
    "event.context": "only on events that need an authentication context",
    "webhook_endpoint.secret": "only in the answer to the creation of the endpoint",
    "invoice.payments": "includable: only when expanded",
    "invoice.confirmation_secret": "includable: only when expanded",
    "customer.sources": "includable: only when expanded",
    "customer.subscriptions": "includable: only when expanded",
    "customer.tax_ids": "includable: only when expanded",
    "customer.tax": "includable: only when expanded",
    "customer.cash_balance": "includable: only when expanded",
    "customer.invoice_credit_balance": "includable: only when expanded",
    "invoice.threshold_reason": "only on invoices created by a billing threshold",
    "invoice.status_details": "only while a status has details to report",
    "invoiceitem.proration_details": "only on proration items",
    "setup_intent.last_setup_error.*": "an error carries only the fields that apply",
    "setup_attempt.setup_error.*": "an error carries only the fields that apply",
    "invoice.last_finalization_error.*": "an error carries only the fields that apply",
    "customer.business_name": "only on customers given a business name",
    "customer.individual_name": "only on customers given an individual's name",
    "setup_intent.attach_to_self": "only on SetupIntents created with attach_to_self",
    "setup_intent.payment_method_options.card.setup_credential_usage": "only when the card options set it",
    "payment_method.radar_options": "only on payment methods created with radar_options",
    "invoiceitem.frozen_fields": "only on items whose fields were frozen (subscription and pricing features)",
    "invoiceitem.invoicing_rules": "only on items given invoicing rules",
    "refund.failure_reason": "only on refunds that failed",
    "refund.failure_balance_transaction": "only on refunds that failed",
    "refund.instructions_email": "only on refunds that need the customer's email (some payment methods)",
    "refund.next_action": "only on refunds that need an action",
    "refund.pending_reason": "only on pending refunds",
    "refund.presentment_details": "only on refunds of payments in another presentment currency",
    "invoice.automatic_tax.liability.account": "only when the liable party is a connected account (type account)",
}


def shape_violations(value: Any, declared: Any, path: str) -> list[str]:
    """How ``value`` (an object as JSON) departs from the SDK's declaration; empty when it conforms.

    ``declared`` is a resource class, a list annotation or ``ListObject[X]``. Checked: no field the
    resource does not declare, every declared field present (but ``PRESENT_ONLY_WHEN_SET``), null
    only where the declaration is ``Optional``, types and closed enums.
    """
    problems: list[str] = []
    _shape(value, declared, path, path.split(".", 1)[0], problems)
    return problems


def object_violations(obj: dict[str, Any]) -> list[str]:
    """``shape_violations`` of an API object, looked up by its ``object`` field."""
    kind = obj.get("object")
    if kind == "list":
        return (
            [v for i, item in enumerate(obj.get("data") or []) for v in object_violations(item)]
            if isinstance(obj.get("data"), list)
            else ["list.data: missing"]
        )
    cls = resource_classes().get(str(kind))
    if cls is None:
        return [f"{kind}: no resource of that type in the SDK"]
    return shape_violations(obj, cls, str(kind))


def error_violations(body: dict[str, Any]) -> list[str]:
    """How an error body departs from Stripe's: ``{"error": {...}}`` with the ErrorObject's fields."""
    error = body.get("error")
    if set(body) != {"error"} or not isinstance(error, dict):
        return ['error body: must be exactly {"error": {...}}']
    problems: list[str] = []
    fields = declared_fields(stripe.ErrorObject)
    for name, item in error.items():
        if name not in fields:
            problems.append(f"error.{name}: not declared by the SDK")
        elif item is None:
            problems.append(f"error.{name}: null (Stripe omits a field that does not apply)")
        elif name in ("payment_method", "setup_intent", "payment_intent", "source"):
            problems += object_violations(item)
    if "type" not in error or "message" not in error:
        problems.append("error: needs type and message")
    if error.get("code") is not None and error["code"] not in error_codes():
        problems.append(f"error.code: {error['code']!r} is not one of Stripe's error codes")
    return problems


def _shape(value: Any, tp: Any, path: str, scope: str, problems: list[str]) -> None:
    """Check ``value`` at ``path``; ``scope`` is its place in its resource (``event.data``), no indices."""
    if value is None:
        if not is_optional(tp) and tp is not Any:
            problems.append(f"{path}: null, but the SDK declares it required")
        return
    alternatives = [a for a in union_args(tp) if a is not NONE_TYPE]
    enum = literals(tp)
    plain = [a for a in alternatives if typing.get_origin(a) is not Literal]
    if not plain:  # a closed enum
        if value not in enum:
            problems.append(f"{path}: {value!r} is not one of {sorted(map(str, enum))}")
        return
    if isinstance(value, dict) and not any(_accepts_object(a) for a in plain):
        problems.append(f"{path}: an object where the SDK declares {tp!r}")
        return
    if isinstance(value, dict):
        target = next(a for a in plain if _accepts_object(a))
        _shape_object(value, target, path, scope, problems)
        return
    if isinstance(value, list):
        target = next((a for a in plain if typing.get_origin(a) in (list, typing.List)), None)  # noqa: UP006
        if target is None:
            problems.append(f"{path}: a list where the SDK declares {tp!r}")
            return
        (item_type,) = typing.get_args(target)
        for i, item in enumerate(value):
            _shape(item, item_type, f"{path}[{i}]", scope, problems)
        return
    if not any(_scalar_ok(value, a) for a in plain):
        problems.append(f"{path}: {value!r} does not match {tp!r}")


def _accepts_object(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    if tp is Any:
        return True
    return isinstance(origin, type) and (issubclass(origin, (StripeObject, dict)) or is_typed_dict(origin))


def _scalar_ok(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp in (float, Decimal):
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return False


def _shape_object(value: dict[str, Any], tp: Any, path: str, scope: str, problems: list[str]) -> None:
    origin = typing.get_origin(tp) or tp
    if isinstance(origin, type) and issubclass(origin, ListObject):
        (item_type,) = typing.get_args(tp) or (Any,)
        if value.get("object") != "list" or not isinstance(value.get("data"), list):
            problems.append(f"{path}: not a list object")
            return
        for key in ("has_more", "url"):
            if key not in value:
                problems.append(f"{path}.{key}: missing")
        for i, item in enumerate(value["data"]):
            _shape(item, item_type, f"{path}.data[{i}]", scope, problems)
        return
    if origin in (dict, typing.Dict) or is_untyped_object(tp) or tp is Any:  # noqa: UP006 - free-form
        return
    if not (isinstance(origin, type) and issubclass(origin, StripeObject)):
        return
    if isinstance(value.get("object"), str) and value["object"] != "list":
        # A resource (possibly expanded, or an event's data.object): checked as its own type.
        nested = resource_classes().get(value["object"])
        if nested is not None:
            origin, scope = nested, value["object"]
    fields = declared_fields(origin)
    for name in value:
        if name not in fields:
            problems.append(f"{path}.{name}: not declared by the SDK at {API_VERSION}")
    type_specific = _type_specific_fields(fields, value)
    if scope.endswith(("payment_method_options", "payment_method_details")):
        # Options and details carry a block only for the payment method types that apply.
        type_specific |= set(fields) & _payment_method_types()
    for name, field_type in fields.items():
        if name not in value:
            if name not in type_specific and not _present_only_when_set(scope, name):
                problems.append(f"{path}.{name}: missing")
            continue
        if value[name] is None and _present_only_when_set(scope, name):
            problems.append(f"{path}.{name}: null (Stripe omits it when it does not apply)")
            continue
        _shape(value[name], field_type, f"{path}.{name}", f"{scope}.{name}", problems)


def _type_specific_fields(fields: dict[str, Any], value: dict[str, Any]) -> set[str]:
    """Sub-objects named after a value of the object's ``type`` enum (``card``, ``sepa_debit`` ...)."""
    if "type" not in fields:
        return set()
    types_ = {t for t in literals(fields["type"]) if isinstance(t, str)}
    return {name for name in fields if name in types_ and name != value.get("type")}


@functools.cache
def _payment_method_types() -> frozenset[str]:
    return frozenset(t for t in literals(declared_fields(stripe.PaymentMethod)["type"]) if isinstance(t, str))


def _present_only_when_set(scope: str, name: str) -> bool:
    return any(key in PRESENT_ONLY_WHEN_SET for key in (f"*.{name}", f"{scope}.{name}", f"{scope}.*"))
