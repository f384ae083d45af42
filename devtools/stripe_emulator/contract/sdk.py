"""What the pinned SDK declares: its operations (method, path, params, answer), resource fields and enums."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import stripe
from stripe._api_version import _ApiVersion
from stripe._expandable_field import ExpandableField  # noqa: F401  (evaluated in SDK annotations)
from stripe._request_options import RequestOptions
from stripe._stripe_object import UntypedStripeObject

API_VERSION: str = _ApiVersion.CURRENT

_STRIPE_DIR = Path(stripe.__file__).parent
NONE_TYPE = type(None)  # how ``Optional`` appears among a union's alternatives


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
    if is_typed_dict(cls):
        own = {k: v for k, v in cls.__annotations__.items() if k not in RequestOptions.__annotations__}
    else:
        own = {
            k: v
            for k, v in vars(cls).get("__annotations__", {}).items()
            if not k.startswith("_") and k != "OBJECT_NAME"
        }
    holder = type("_Fields", (), {"__annotations__": own, "__module__": cls.__module__})
    hints = typing.get_type_hints(holder, globalns=_module_namespace(cls.__module__), include_extras=True)
    return {name: hints[name] for name in own}


def is_typed_dict(cls: Any) -> bool:
    """A params ``TypedDict`` (as opposed to a resource class or a plain type)."""
    return isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__required_keys__")


def required_keys(cls: type) -> set[str]:
    """The parameters a params ``TypedDict`` requires, request options left out."""
    return set(cls.__required_keys__) - set(RequestOptions.__annotations__)  # type: ignore[attr-defined]


def strip_not_required(tp: Any) -> Any:
    """The type inside ``NotRequired[...]`` / ``Required[...]``."""
    while typing.get_origin(tp) in (typing.NotRequired, typing.Required):
        tp = typing.get_args(tp)[0]
    return tp


def union_args(tp: Any) -> tuple[Any, ...]:
    """The alternatives of a union, or the type itself."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def literals(tp: Any) -> set[Any]:
    """The values of every ``Literal[...]`` among a type's alternatives."""
    values: set[Any] = set()
    for arg in union_args(tp):
        if typing.get_origin(arg) is Literal:
            values.update(typing.get_args(arg))
    return values


def is_optional(tp: Any) -> bool:
    """Whether the SDK allows ``None`` for the type."""
    return NONE_TYPE in union_args(tp)


def is_untyped_object(tp: Any) -> bool:
    """A free-form object (metadata and the like) rather than a declared one."""
    origin = typing.get_origin(tp) or tp
    return isinstance(origin, type) and issubclass(origin, UntypedStripeObject)


# --- operations ------------------------------------------------------------------------------------


class Operation:
    """One Stripe API operation as the SDK declares it; its types are resolved on first use."""

    def __init__(
        self,
        method: str,
        path: str,
        module: str,
        sdk_method: str,
        params_source: str | None,
        returns_source: str | None,
    ) -> None:
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
        for candidate in union_args(_resolve(self._params_source, self._module)):
            if is_typed_dict(candidate):
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
                params = next(
                    (
                        a.annotation
                        for a in func.args.args + func.args.kwonlyargs
                        if a.arg == "params" and a.annotation is not None
                    ),
                    None,
                )
                found[request] = Operation(
                    request[0],
                    request[1],
                    module_name,
                    f"{cls.name}.{func.name}",
                    _source(params),
                    _source(func.returns),
                )
    return found


def operation(method: str, path: str) -> Operation:
    """The SDK's operation for a method and path template; ``KeyError`` if the SDK has none."""
    return operations()[(method.upper(), path)]


def _request_call(func: ast.FunctionDef) -> tuple[str, str] | None:
    for node in ast.walk(func):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "_request"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Constant)
        ):
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
    return frozenset(literals(declared_fields(stripe.Event)["type"]))


@functools.cache
def error_codes() -> frozenset[str]:
    """Every error code Stripe documents at this version (``SetupIntent.LastSetupError.code``)."""
    return frozenset(literals(declared_fields(stripe.SetupIntent.LastSetupError)["code"]))


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
