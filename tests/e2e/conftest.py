"""The e2e tests' worker wiring on the local stack."""

from __future__ import annotations

import pytest

from local_stack.demo import worker_services


@pytest.fixture
def services(clean_stack):
    """The worker's ports on the session's clean local stack (the ``billing`` command's)."""
    return worker_services(clean_stack)
