"""Stripe's form-encoded bracket parameters, decoded into nested values.

``a[b][0][c]=1&tags[]=x`` becomes ``{"a": {"b": [{"c": "1"}]}, "tags": ["x"]}``. Which parameters an
operation accepts, and of what type, is ``stripe_emulator.contract``'s business (the SDK's params).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from stripe_emulator.errors import ParameterError

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest flat ``key[sub][0]=value`` pairs into dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match:
            raise ParameterError(f"Invalid parameter name: {key}", param=key)
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
                    raise ParameterError(f"Invalid parameter: {key}", param=key)
                node = child
    nested: dict[str, Any] = _listify(root)
    return nested


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def require(params: dict[str, Any], *names: str) -> None:
    """Raise Stripe's parameter_missing for the first absent name."""
    for name in names:
        if params.get(name) in (None, "", [], {}):
            raise ParameterError(f"Missing required param: {name}.", code="parameter_missing", param=name)
