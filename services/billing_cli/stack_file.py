"""``billing --stack .local/stack.json``: act on a local stack, with the settings its worker runs with.

The local stack writes its worker's environment into stack.json (``worker_environment``); this only
reads it back, so nothing here knows what a local stack consists of.
"""

from __future__ import annotations

import json
from pathlib import Path

from billing_core.errors import SettingsError


def stack_environment(path: Path) -> dict[str, str]:
    """The variables of the stack ``path`` describes; ``SettingsError`` if it is no local stack's stack.json."""
    try:
        environment = json.loads(path.read_text())["worker_environment"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SettingsError(f"--stack {path}: not a local stack's stack.json ({type(error).__name__})") from None
    if not isinstance(environment, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in environment.items()
    ):
        raise SettingsError(f"--stack {path}: its worker_environment is not a mapping of variables to strings")
    return environment
