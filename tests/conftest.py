"""Fixtures shared by every test tier.

``stack`` is the whole local stack, started once per session through the same ``start_stack()``
that ``make dev`` runs, on free ports and in a temporary directory (so a running ``make dev`` is
left alone). It starts only when a test asks for it; such tests get the ``stack`` marker, so
``pytest -m "not stack"`` skips them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from local_stack import Stack

_PORT_ATTEMPTS = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the local stack with ``stack``."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The running local stack for the whole session; ``stack.info`` is its stack.json."""
    from local_stack import PortInUse, StackPorts, start_stack

    root = tmp_path_factory.mktemp("local-stack")
    for attempt in range(_PORT_ATTEMPTS):
        try:
            running = start_stack(StackPorts.free(), root)
            break
        except PortInUse:
            # Another process took one of the free ports between choosing and binding it.
            if attempt == _PORT_ATTEMPTS - 1:
                raise
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def clean_stack(stack: Stack) -> Stack:
    """The session's stack with empty queues, tables and Stripe emulator (see ``Stack.reset``)."""
    stack.reset()
    return stack
