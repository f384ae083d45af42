"""Stripe's API contract at the pinned version, read from the installed ``stripe`` SDK.

The SDK is generated from Stripe's OpenAPI spec for one API version (``stripe._api_version``), and
it carries that spec in Python form:

- every operation is a service method (``stripe/_*_service.py``) that names its HTTP method and
  path in its ``self._request(...)`` call, its parameters as a ``TypedDict`` (``stripe/params``) and
  the resource it answers with as its return annotation;
- every resource is a class whose annotations are its fields (``Optional`` where Stripe may send
  ``null``), with nested classes for sub-objects and ``Literal`` for enums.

This module turns those declarations into the emulator's request validation and into a shape check
for everything the emulator answers, so an SDK upgrade that changes the API changes the emulator's
contract (and fails tests) instead of leaving a stale picture of Stripe behind.

Where the SDK cannot tell "absent" from "null" (both are ``Optional``), ``PRESENT_ONLY_WHEN_SET``
names the fields Stripe omits instead of sending ``null``, each with the reason.
"""
from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
import types
import typing
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Union

import stripe
from stripe._api_version import _ApiVersion
from stripe._expandable_field import ExpandableField  # noqa: F401  (evaluated in SDK annotations)
from stripe._list_object import ListObject
from stripe._request_options import RequestOptions
from stripe._stripe_object import StripeObject, UntypedStripeObject

from stripe_emulator.errors import ParameterError

API_VERSION: str = _ApiVersion.CURRENT

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
}

# Stripe's documented limits that the SDK's types cannot express.
MAX_IDEMPOTENCY_KEY_LENGTH = 255
LIST_LIMIT_RANGE = (1, 100)
MAX_EVENT_TYPES_FILTER = 20
METADATA_KEY_MAX, METADATA_VALUE_MAX, METADATA_MAX_KEYS = 40, 500, 50

_STRIPE_DIR = Path(stripe.__file__).parent
_NONE = type(None)


# --- reading the SDK's annotations -----------------------------------------------------------------


@functools.cache
def _module_namespace(module_name: str) -> dict[str, Any]:
    """A module's globals plus the names it imports only under ``TYPE_CHECKING``."""
    module = importlib.import_module(module_name)
    namespace = dict(vars(module))
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            exec(compile(ast.Module(body=node.body, type_ignores=[]), module_name, "exec"), namespace)
    return namespace


@functools.cache
def declared_fields(cls: type) -> dict[str, Any]:
    """The fields ``cls`` itself declares (not its SDK base classes'), with annotations resolved.

    For a params ``TypedDict`` the request options (``idempotency_key`` ...) are left out: they are
    headers, not parameters.
    """
    if _is_typed_dict(cls):
        own = {k: v for k, v in cls.__annotations__.items() if k not in RequestOptions.__annotations__}
    else:
        own = {k: v for k, v in vars(cls).get("__annotations__", {}).items()
               if not k.startswith("_") and k != "OBJECT_NAME"}
    holder = type("_Fields", (), {"__annotations__": own, "__module__": cls.__module__})
    hints = typing.get_type_hints(holder, globalns=_module_namespace(cls.__module__), include_extras=True)
    return {name: hints[name] for name in own}


def _is_typed_dict(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__required_keys__")


def _required_keys(cls: type) -> set[str]:
    return set(cls.__required_keys__) - set(RequestOptions.__annotations__)  # type: ignore[attr-defined]


def _strip_not_required(tp: Any) -> Any:
    while typing.get_origin(tp) in (typing.NotRequired, typing.Required):
        tp = typing.get_args(tp)[0]
    return tp


def _union_args(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def _literals(tp: Any) -> set[Any]:
    values: set[Any] = set()
    for arg in _union_args(tp):
        if typing.get_origin(arg) is Literal:
            values.update(typing.get_args(arg))
    return values


def _is_optional(tp: Any) -> bool:
    return _NONE in _union_args(tp)


# --- operations ------------------------------------------------------------------------------------


class Operation:
    """One Stripe API operation as the SDK declares it; its types are resolved on first use."""

    def __init__(self, method: str, path: str, module: str, sdk_method: str,
                 params_source: str | None, returns_source: str | None) -> None:
        self.method = method  # GET, POST, DELETE
        self.path = path  # e.g. /v1/invoices/{invoice}/add_lines
        self.sdk_method = sdk_method  # e.g. InvoiceService.add_lines
        self._module = module
        self._params_source = params_source
        self._returns_source = returns_source

    def __repr__(self) -> str:
        return f"Operation({self.method} {self.path} = {self.sdk_method})"

    @functools.cached_property
    def params(self) -> type | None:
        """The params ``TypedDict`` (``None`` for an operation without parameters)."""
        if self._params_source is None:
            return None
        for candidate in _union_args(_resolve(self._params_source, self._module)):
            if _is_typed_dict(candidate):
                return typing.cast(type, candidate)
        return None

    @functools.cached_property
    def returns(self) -> Any:
        """The answer's annotation: a resource class or ``ListObject[...]``."""
        return None if self._returns_source is None else _resolve(self._returns_source, self._module)


@functools.cache
def operations() -> dict[tuple[str, str], Operation]:
    """Every v1 operation of the SDK, by (HTTP method, path template)."""
    found: dict[tuple[str, str], Operation] = {}
    for source_file in sorted(_STRIPE_DIR.glob("_*_service.py")):
        module_name = f"stripe.{source_file.stem}"
        tree = ast.parse(source_file.read_text())
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for func in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
                request = _request_call(func)
                if request is None or not request[1].startswith("/v1/"):
                    continue
                params = next((a.annotation for a in func.args.args + func.args.kwonlyargs
                               if a.arg == "params" and a.annotation is not None), None)
                found[request] = Operation(request[0], request[1], module_name, f"{cls.name}.{func.name}",
                                           _source(params), _source(func.returns))
    return found


def operation(method: str, path: str) -> Operation:
    """The SDK's operation for a method and path template; ``KeyError`` if the SDK has none."""
    return operations()[(method.upper(), path)]


def _request_call(func: ast.FunctionDef) -> tuple[str, str] | None:
    for node in ast.walk(func):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_request"
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant)):
            target = node.args[1]
            if isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute):  # "...".format(...)
                target = target.func.value
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                return str(node.args[0].value).upper(), target.value
    return None


def _source(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ast.unparse(node)


def _resolve(annotation: str, module_name: str) -> Any:
    """An annotation's text evaluated as the SDK's module sees it, forward references included."""
    holder = type("_Annotation", (), {"__annotations__": {"value": annotation}, "__module__": module_name})
    return typing.get_type_hints(holder, globalns=_module_namespace(module_name))["value"]


@functools.cache
def event_types() -> frozenset[str]:
    """Every event type Stripe has at this version (the ``Event.type`` enum)."""
    return frozenset(_literals(declared_fields(stripe.Event)["type"]))


@functools.cache
def error_codes() -> frozenset[str]:
    """Every error code Stripe documents at this version (``SetupIntent.LastSetupError.code``)."""
    return frozenset(_literals(declared_fields(stripe.SetupIntent.LastSetupError)["code"]))


@functools.cache
def resource_classes() -> dict[str, type]:
    """Resource classes by their ``object`` value (``"invoice"`` -> ``stripe.Invoice``)."""
    classes: dict[str, type] = {}
    for name, (module_name, is_submodule) in stripe._import_map.items():
        if is_submodule or not module_name.startswith("stripe._"):
            continue
        cls = getattr(importlib.import_module(module_name), name, None)
        object_name = getattr(cls, "OBJECT_NAME", None)
        if isinstance(cls, type) and isinstance(object_name, str) and "." not in object_name:
            classes.setdefault(object_name, cls)
    return classes


# --- request parameters ----------------------------------------------------------------------------


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
    required = _required_keys(declared) if declared is not None else set()
    return _check_object(params, fields, required, "")


def _check_object(value: dict[str, Any], fields: dict[str, Any], required: set[str], prefix: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, item in value.items():
        path = f"{prefix}[{name}]" if prefix else name
        if name not in fields:
            raise ParameterError(f"Received unknown parameter: {path}", code="parameter_unknown", param=path)
        result[name] = _check_value(item, _strip_not_required(fields[name]), path)
    for name in sorted(required):
        if name not in value:
            path = f"{prefix}[{name}]" if prefix else name
            raise ParameterError(f"Missing required param: {path}.", code="parameter_missing", param=path)
    return result


def _check_value(value: Any, tp: Any, path: str) -> Any:
    alternatives = _union_args(tp)
    if value == "":
        if "" in _literals(tp):
            return None  # Stripe: an empty value unsets the field, where the field can be unset
        raise ParameterError(
            f"You passed an empty string for '{path}'. We assume empty values are an attempt to unset a "
            f"parameter; however '{path}' cannot be unset. You should remove '{path}' from your request or "
            "supply a non-empty value.", code="parameter_invalid_empty", param=path)
    enum = {v for v in _literals(tp) if v != ""}
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
    if origin in (dict, typing.Dict) or _is_untyped_object(tp):  # noqa: UP006
        if not isinstance(value, dict):
            raise ParameterError(f"Invalid object for {path}", param=path)
        if path.rsplit("[", 1)[-1].rstrip("]") in ("metadata", "invoice_metadata"):
            _check_metadata(value, path)
        # An empty value unsets that one key (metadata), so it stays "" for the store to remove.
        return {key: "" if item == "" else _check_value(item, str, f"{path}[{key}]") for key, item in value.items()}
    if _is_typed_dict(tp):
        if not isinstance(value, dict):
            raise ParameterError(f"Invalid object for {path}", param=path)
        return _check_object(value, declared_fields(tp), _required_keys(tp), path)
    raise ParameterError(f"The emulator cannot check {path} (declared as {tp!r})", param=path)


def _is_untyped_object(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return isinstance(origin, type) and issubclass(origin, UntypedStripeObject)


def _check_metadata(value: dict[str, Any], path: str) -> None:
    if len(value) > METADATA_MAX_KEYS:
        raise ParameterError(f"Invalid {path}: metadata can have at most {METADATA_MAX_KEYS} keys", param=path)
    for key, item in value.items():
        if len(key) > METADATA_KEY_MAX or (isinstance(item, str) and len(item) > METADATA_VALUE_MAX):
            raise ParameterError(
                f"Metadata keys can be at most {METADATA_KEY_MAX} characters and values at most "
                f"{METADATA_VALUE_MAX}: {key}", param=f"{path}[{key}]")


# --- response shapes -------------------------------------------------------------------------------


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
        return [v for i, item in enumerate(obj.get("data") or []) for v in object_violations(item)] if isinstance(
            obj.get("data"), list) else ["list.data: missing"]
    cls = resource_classes().get(str(kind))
    if cls is None:
        return [f"{kind}: no resource of that type in the SDK"]
    return shape_violations(obj, cls, str(kind))


def error_violations(body: dict[str, Any]) -> list[str]:
    """How an error body departs from Stripe's: ``{"error": {...}}`` with the ErrorObject's fields."""
    error = body.get("error")
    if set(body) != {"error"} or not isinstance(error, dict):
        return ["error body: must be exactly {\"error\": {...}}"]
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
        if not _is_optional(tp) and tp is not Any:
            problems.append(f"{path}: null, but the SDK declares it required")
        return
    alternatives = [a for a in _union_args(tp) if a is not _NONE]
    enum = _literals(tp)
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
    return isinstance(origin, type) and (issubclass(origin, (StripeObject, dict)) or _is_typed_dict(origin))


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
    if origin in (dict, typing.Dict) or _is_untyped_object(tp) or tp is Any:  # noqa: UP006 - free-form
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
    types_ = {t for t in _literals(fields["type"]) if isinstance(t, str)}
    return {name for name in fields if name in types_ and name != value.get("type")}


@functools.cache
def _payment_method_types() -> frozenset[str]:
    return frozenset(t for t in _literals(declared_fields(stripe.PaymentMethod)["type"]) if isinstance(t, str))


def _present_only_when_set(scope: str, name: str) -> bool:
    return any(key in PRESENT_ONLY_WHEN_SET for key in (f"*.{name}", f"{scope}.{name}", f"{scope}.*"))
