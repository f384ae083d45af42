"""The official XRechnung / EN 16931 rules from ``../shared/einvoice`` (never copied into the project).

``XRECHNUNG_RULES_HOME`` names the folder (it holds ``rules/``, ``schema/`` and ``validate_xrechnung.py``);
by default it is ``../shared/einvoice`` beside the repository. Where it is absent, a test that needs
the rules is skipped and says how to get them; drafthorse's own XSD check runs everywhere.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES_HOME = Path(os.environ.get("XRECHNUNG_RULES_HOME") or REPO.parent / "shared" / "einvoice")
_HOW_TO_GET = (
    f"the official XRechnung rules are not at {RULES_HOME}: set XRECHNUNG_RULES_HOME to a folder "
    "holding validate_xrechnung.py, rules/ and schema/ (the project's shared/einvoice)"
)
_local = threading.local()  # a validator is not thread-safe: one per thread


@functools.cache
def _module() -> Any:
    script = RULES_HOME / "validate_xrechnung.py"
    if not script.is_file():
        return None
    os.environ.setdefault("XRECHNUNG_RULES_HOME", str(RULES_HOME))
    spec = importlib.util.spec_from_file_location("validate_xrechnung", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def validator() -> Any:
    """This thread's ``XRechnungValidator`` (compiled once), or skip the test when the rules are absent."""
    module = _module()
    if module is None:
        pytest.skip(_HOW_TO_GET)
    if getattr(_local, "validator", None) is None:
        _local.validator = module.XRechnungValidator(xsd=module.CII_XSD)  # the CII D16B XSD too (lxml)
    return _local.validator


def assert_valid_xrechnung(xml: bytes) -> None:
    """0 errors under the CII XSD, EN 16931 (1.3.15 and 1.3.16) and XRechnung 2.5.0, with the KoSIT levels."""
    result = validator().validate(xml)
    assert result.ok, result.format()
