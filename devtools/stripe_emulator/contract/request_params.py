"""Checking a request's parameters against the operation's params ``TypedDict``, as Stripe checks them."""

from __future__ import annotations

import re
import typing
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from stripe_emulator.contract.sdk import (
    declared_fields,
    is_typed_dict,
    is_untyped_object,
    literals,
    required_keys,
    strip_not_required,
    union_args,
)
from stripe_emulator.errors import ParameterError

# Stripe's documented limits that the SDK's types cannot express.
MAX_IDEMPOTENCY_KEY_LENGTH = 255
LIST_LIMIT_RANGE = (1, 100)
MAX_EVENT_TYPES_FILTER = 20
METADATA_KEY_MAX, METADATA_VALUE_MAX, METADATA_MAX_KEYS = 40, 500, 50


def check_params(
    params: dict[str, Any], declared: type | None, *, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Validate form-decoded ``params`` against the operation's params TypedDict, as Stripe does.

    Returns the values coerced to Python types (int, bool, Decimal; ``None`` for an emptied field).
    ``extra`` declares parameters a caller may send beyond the SDK's (Stripe.js's ``client_secret``).
    Raises ``ParameterError`` for an unknown, missing or malformed parameter.
    """
    fields = dict(declared_fields(declared)) if declared is not None else {}
    fields.update(extra or {})
    required = required_keys(declared) if declared is not None else set()
    return _check_object(params, fields, required, "")


def _check_object(value: dict[str, Any], fields: dict[str, Any], required: set[str], prefix: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, item in value.items():
        path = f"{prefix}[{name}]" if prefix else name
        if name not in fields:
            raise ParameterError(f"Received unknown parameter: {path}", code="parameter_unknown", param=path)
        result[name] = _check_value(item, strip_not_required(fields[name]), path)
    for name in sorted(required):
        if name not in value:
            path = f"{prefix}[{name}]" if prefix else name
            raise ParameterError(f"Missing required param: {path}.", code="parameter_missing", param=path)
    return result


def _check_value(value: Any, tp: Any, path: str) -> Any:
    alternatives = union_args(tp)
    if value == "":
        if "" in literals(tp):
            return None  # Stripe: an empty value unsets the field, where the field can be unset
        raise ParameterError(
            f"You passed an empty string for '{path}'. We assume empty values are an attempt to unset a "
            f"parameter; however '{path}' cannot be unset. You should remove '{path}' from your request or "
            "supply a non-empty value.",
            code="parameter_invalid_empty",
            param=path,
        )
    enum = {v for v in literals(tp) if v != ""}
    open_string = str in alternatives
    first_error: ParameterError | None = None
    for alternative in alternatives:
        if typing.get_origin(alternative) is Literal:
            continue
        try:
            checked = _check_single(value, alternative, path)
        except ParameterError as error:
            first_error = first_error or error
            continue
        if enum and open_string and alternative is str and checked not in enum:
            # The SDK types enums as ``Literal[...] | str`` for forward compatibility; Stripe itself
            # accepts only the listed values.
            break
        return checked
    if enum and isinstance(value, str):
        if value in enum:
            return value
        choices = sorted(map(str, enum))
        shown = ", ".join(choices) if len(choices) <= 12 else "the values Stripe documents for it"
        raise ParameterError(f"Invalid {path}: must be one of {shown}", param=path)
    raise first_error or ParameterError(f"Invalid {path}", param=path)


def _check_single(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ParameterError(f"Invalid {path}: must be a string", param=path)
        return value
    if tp is int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return int(value)
        raise ParameterError(f"Invalid integer: {value}", code="parameter_invalid_integer", param=path)
    if tp is bool:
        if value in ("true", "false"):
            return value == "true"
        raise ParameterError(f"Invalid boolean: {value}", param=path)
    if tp in (float, Decimal):
        try:
            if not isinstance(value, str):
                raise InvalidOperation
            number = Decimal(value)
            if not number.is_finite():
                raise InvalidOperation
            return number
        except InvalidOperation:
            raise ParameterError(f"Invalid decimal: {value}", param=path) from None
    if origin in (list, typing.List):  # noqa: UP006 - the SDK's spelling
        if not isinstance(value, list):
            raise ParameterError(f"Invalid array for {path}", param=path)
        (item_type,) = typing.get_args(tp)
        return [_check_value(item, item_type, f"{path}[{i}]") for i, item in enumerate(value)]
    if origin in (dict, typing.Dict) or is_untyped_object(tp):  # noqa: UP006
        if not isinstance(value, dict):
            raise ParameterError(f"Invalid object for {path}", param=path)
        if path.rsplit("[", 1)[-1].rstrip("]") in ("metadata", "invoice_metadata"):
            _check_metadata(value, path)
        # An empty value unsets that one key (metadata), so it stays "" for the store to remove.
        return {key: "" if item == "" else _check_value(item, str, f"{path}[{key}]") for key, item in value.items()}
    if is_typed_dict(tp):
        if not isinstance(value, dict):
            raise ParameterError(f"Invalid object for {path}", param=path)
        return _check_object(value, declared_fields(tp), required_keys(tp), path)
    raise ParameterError(f"The emulator cannot check {path} (declared as {tp!r})", param=path)


def _check_metadata(value: dict[str, Any], path: str) -> None:
    if len(value) > METADATA_MAX_KEYS:
        raise ParameterError(f"Invalid {path}: metadata can have at most {METADATA_MAX_KEYS} keys", param=path)
    for key, item in value.items():
        if len(key) > METADATA_KEY_MAX or (isinstance(item, str) and len(item) > METADATA_VALUE_MAX):
            raise ParameterError(
                f"Metadata keys can be at most {METADATA_KEY_MAX} characters and values at most "
                f"{METADATA_VALUE_MAX}: {key}",
                param=f"{path}[{key}]",
            )
