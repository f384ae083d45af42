"""The type check that guards the Stripe adapter: a parameter the pinned API version removed fails it.

``make test`` runs mypy (strict for the Stripe code paths); this test shows the check has teeth by
feeding it the very request that once reached main: ``payment_method_types`` on SetupIntent creation.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

SNIPPET = """
from stripe.params import SetupIntentCreateParams

params: SetupIntentCreateParams = {{"customer": "cus_1", {field}: ["card", "sepa_debit"], "usage": "off_session"}}
"""


def _check(tmp_path: Path, field: str) -> tuple[str, int]:
    source = tmp_path / "request.py"
    source.write_text(textwrap.dedent(SNIPPET.format(field=repr(field))))
    stdout, _, status = api.run([str(source), "--no-incremental", "--cache-dir", str(tmp_path / "cache")])
    return stdout, status


def test_the_removed_payment_method_types_parameter_fails_the_type_check(tmp_path):
    stdout, status = _check(tmp_path, "payment_method_types")
    assert status == 1
    assert 'Extra key "payment_method_types" for TypedDict "SetupIntentCreateParams"' in stdout


def test_the_parameter_the_version_has_passes_it(tmp_path):
    stdout, status = _check(tmp_path, "allowed_payment_method_types")
    assert status == 0, stdout
