"""Stripe's form-encoded bracket parameters: decoding into nested values, and per-endpoint schemas.

``a[b][0][c]=1&tags[]=x`` becomes ``{"a": {"b": [{"c": "1"}]}, "tags": ["x"]}``. A schema lists every
parameter an endpoint accepts; anything else is rejected the way Stripe rejects it.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from stripe_emulator.errors import ParameterError

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest flat ``key[sub][0]=value`` pairs into dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match:
            raise ParameterError(f"Invalid parameter name: {key}", code="parameter_invalid_string", param=key)
        parts = [match.group(1)] + _PART.findall(match.group(2))
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                part = f"{len(node):d}"  # "tags[]" appends
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ParameterError(f"Invalid parameter: {key}", code="parameter_invalid_string", param=key)
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


# Schema language: a dict of parameter name -> kind, where kind is one of the type names below,
# a nested dict (an object parameter), a list with one kind (an array), or a tuple of allowed strings.
STRING, INTEGER, BOOLEAN, METADATA, ANY_OBJECT, RANGE = "string", "integer", "boolean", "metadata", "object", "range"


def validate(params: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Check params against schema and coerce their values; raise ParameterError as Stripe would."""
    result: dict[str, Any] = {}
    for name, value in params.items():
        path = f"{prefix}[{name}]" if prefix else name
        if name not in schema:
            raise ParameterError(f"Received unknown parameter: {path}", code="parameter_unknown", param=path)
        result[name] = _coerce(value, schema[name], path)
    return result


def _coerce(value: Any, kind: Any, path: str) -> Any:
    if value == "" and kind not in (STRING,):
        return None  # Stripe: an empty value unsets the field
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            raise _invalid(path, "an object")
        return validate(value, kind, path)
    if isinstance(kind, list):
        if isinstance(value, dict) or not isinstance(value, list):
            raise _invalid(path, "an array")
        return [_coerce(item, kind[0], f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(kind, tuple):
        if value not in kind:
            raise ParameterError(
                f"Invalid {path}: must be one of {', '.join(kind)}", code="parameter_invalid_string", param=path
            )
        return value
    if kind == STRING:
        if not isinstance(value, str):
            raise _invalid(path, "a string")
        return value if value != "" else None
    if kind == INTEGER:
        return _integer(value, path)
    if kind == BOOLEAN:
        if value in ("true", "false"):
            return value == "true"
        raise ParameterError(f"Invalid boolean: {value}", code="parameter_invalid_boolean", param=path)
    if kind == METADATA:
        if not isinstance(value, dict):
            raise _invalid(path, "an object")
        for key, item in value.items():
            if not isinstance(item, str):
                raise _invalid(f"{path}[{key}]", "a string")
            if len(key) > 40 or len(item) > 500:
                raise ParameterError(
                    f"Metadata keys can be at most 40 characters and values at most 500: {key}",
                    code="parameter_invalid_string", param=f"{path}[{key}]",
                )
        return value
    if kind == ANY_OBJECT:
        if not isinstance(value, dict):
            raise _invalid(path, "an object")
        return value
    if kind == RANGE:
        if isinstance(value, dict):
            return validate(value, {"gt": INTEGER, "gte": INTEGER, "lt": INTEGER, "lte": INTEGER}, path)
        return {"eq": _integer(value, path)}
    raise AssertionError(f"unknown schema kind {kind!r}")


def _integer(value: Any, path: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise ParameterError(f"Invalid integer: {value}", code="parameter_invalid_integer", param=path)


def _invalid(path: str, expected: str) -> ParameterError:
    return ParameterError(f"Invalid {path}: must be {expected}", code="parameter_invalid_string", param=path)


def require(params: dict[str, Any], *names: str) -> None:
    """Raise Stripe's parameter_missing for the first absent name."""
    for name in names:
        if params.get(name) in (None, "", [], {}):
            raise ParameterError(f"Missing required param: {name}.", code="parameter_missing", param=name)


EXPAND = {"expand": [STRING]}
LIST_PARAMS = {"limit": INTEGER, "starting_after": STRING, "ending_before": STRING, "created": RANGE, **EXPAND}
ADDRESS = {k: STRING for k in ("city", "country", "line1", "line2", "postal_code", "state")}
BILLING_DETAILS = {"address": ADDRESS, "email": STRING, "name": STRING, "phone": STRING, "tax_id": STRING}
CARD_DETAILS = {"number": STRING, "exp_month": INTEGER, "exp_year": INTEGER, "cvc": STRING, "token": STRING}
PAYMENT_METHOD_DATA = {
    "type": ("card", "sepa_debit"),
    "card": CARD_DETAILS,
    "sepa_debit": {"iban": STRING},
    "billing_details": BILLING_DETAILS,
    "metadata": METADATA,
    "allow_redisplay": ("always", "limited", "unspecified"),
}
MANDATE_DATA = {
    "customer_acceptance": {
        "type": ("online", "offline"),
        "accepted_at": INTEGER,
        "online": {"ip_address": STRING, "user_agent": STRING},
        "offline": ANY_OBJECT,
    }
}
INVOICE_SETTINGS = {"default_payment_method": STRING, "footer": STRING, "custom_fields": [ANY_OBJECT]}
CUSTOMER_FIELDS = {
    "email": STRING, "name": STRING, "description": STRING, "phone": STRING, "metadata": METADATA,
    "address": ADDRESS, "invoice_settings": INVOICE_SETTINGS, "preferred_locales": [STRING],
    "invoice_prefix": STRING, "tax_exempt": ("none", "exempt", "reverse"), **EXPAND,
}
PERIOD = {"start": INTEGER, "end": INTEGER}

SCHEMAS: dict[str, dict[str, Any]] = {
    "customer.create": {**CUSTOMER_FIELDS, "payment_method": STRING},
    "customer.update": CUSTOMER_FIELDS,
    "customer.list": {**LIST_PARAMS, "email": STRING},
    "customer.payment_methods": {**LIST_PARAMS, "type": ("card", "sepa_debit")},
    "setup_intent.create": {
        "customer": STRING, "payment_method": STRING, "payment_method_types": [STRING],
        "payment_method_data": PAYMENT_METHOD_DATA, "usage": ("off_session", "on_session"),
        "confirm": BOOLEAN, "metadata": METADATA, "description": STRING, "return_url": STRING,
        "automatic_payment_methods": {"enabled": BOOLEAN, "allow_redirects": ("always", "never")},
        "payment_method_options": ANY_OBJECT, "mandate_data": MANDATE_DATA, **EXPAND,
    },
    "setup_intent.update": {
        "customer": STRING, "payment_method": STRING, "payment_method_types": [STRING],
        "metadata": METADATA, "description": STRING, "payment_method_options": ANY_OBJECT, **EXPAND,
    },
    "setup_intent.confirm": {
        "payment_method": STRING, "payment_method_data": PAYMENT_METHOD_DATA, "mandate_data": MANDATE_DATA,
        "return_url": STRING, "payment_method_options": ANY_OBJECT, "use_stripe_sdk": BOOLEAN,
        "client_secret": STRING, **EXPAND,
    },
    "setup_intent.retrieve": {"client_secret": STRING, **EXPAND},
    "setup_intent.cancel": {"cancellation_reason": ("abandoned", "requested_by_customer", "duplicate"), **EXPAND},
    "setup_intent.list": {**LIST_PARAMS, "customer": STRING, "payment_method": STRING},
    "payment_method.create": {**PAYMENT_METHOD_DATA, **EXPAND},
    "payment_method.attach": {"customer": STRING, **EXPAND},
    "payment_method.detach": EXPAND,
    "payment_method.list": {**LIST_PARAMS, "customer": STRING, "type": ("card", "sepa_debit")},
    "invoiceitem.create": {
        "customer": STRING, "amount": INTEGER, "currency": STRING, "description": STRING, "invoice": STRING,
        "metadata": METADATA, "period": PERIOD, "quantity": INTEGER, "unit_amount_decimal": STRING,
        "discountable": BOOLEAN, **EXPAND,
    },
    "invoiceitem.update": {
        "amount": INTEGER, "description": STRING, "metadata": METADATA, "period": PERIOD,
        "quantity": INTEGER, "unit_amount_decimal": STRING, "discountable": BOOLEAN, **EXPAND,
    },
    "invoiceitem.list": {**LIST_PARAMS, "customer": STRING, "invoice": STRING, "pending": BOOLEAN},
    "invoice.create": {
        "customer": STRING, "auto_advance": BOOLEAN, "collection_method": ("charge_automatically", "send_invoice"),
        "currency": STRING, "description": STRING, "metadata": METADATA, "default_payment_method": STRING,
        "days_until_due": INTEGER, "due_date": INTEGER, "footer": STRING, "statement_descriptor": STRING,
        "pending_invoice_items_behavior": ("exclude", "include"), **EXPAND,
    },
    "invoice.update": {
        "auto_advance": BOOLEAN, "collection_method": ("charge_automatically", "send_invoice"),
        "description": STRING, "metadata": METADATA, "default_payment_method": STRING,
        "days_until_due": INTEGER, "due_date": INTEGER, "footer": STRING, "statement_descriptor": STRING, **EXPAND,
    },
    "invoice.list": {
        **LIST_PARAMS, "customer": STRING, "status": ("draft", "open", "paid", "uncollectible", "void"),
        "collection_method": ("charge_automatically", "send_invoice"), "due_date": RANGE,
    },
    "invoice.add_lines": {
        "lines": [{
            "amount": INTEGER, "currency": STRING, "description": STRING, "invoice_item": STRING,
            "metadata": METADATA, "period": PERIOD, "quantity": INTEGER, "discountable": BOOLEAN,
        }],
        "invoice_metadata": METADATA, **EXPAND,
    },
    "invoice.finalize": {"auto_advance": BOOLEAN, **EXPAND},
    "invoice.pay": {"payment_method": STRING, "off_session": BOOLEAN, "forgive": BOOLEAN, **EXPAND},
    "invoice.void": EXPAND,
    "invoice.mark_uncollectible": EXPAND,
    "invoice.lines": LIST_PARAMS,
    "event.list": {**LIST_PARAMS, "type": STRING, "types": [STRING], "delivery_success": BOOLEAN},
    "webhook_endpoint.create": {
        "url": STRING, "enabled_events": [STRING], "description": STRING, "metadata": METADATA,
        "api_version": STRING, "connect": BOOLEAN, **EXPAND,
    },
    "webhook_endpoint.update": {
        "url": STRING, "enabled_events": [STRING], "description": STRING, "metadata": METADATA,
        "disabled": BOOLEAN, **EXPAND,
    },
    "webhook_endpoint.list": LIST_PARAMS,
    "retrieve": EXPAND,
    "delete": {},
}
