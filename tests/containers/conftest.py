"""The compose project built and running on this machine's container engine, for the container tests."""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containers.engine import Engine, EngineUnavailable, env_file, prepare, wait_healthy

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / ".cache" / "containers"
COMPOSE_VENV = REPO / ".venv-containers"
FIRST = ("moto", "stripe-emulator", "provision")
SERVICES = ("billing-api", "webhook-receiver", "scheduler-worker")
HEALTH_TIMEOUT_SECONDS = 180


class ComposeStack:
    """The running project: its engine, the services' settings and the admin's login."""

    def __init__(self, engine: Engine, settings: dict[str, str], admin: tuple[str, str]) -> None:
        self.engine = engine
        self.settings = settings
        self.admin = admin

    def billing(self, *argv: str, timeout: float = 300) -> str:
        """``billing ...`` in the worker's container, with the services' settings (as an operator runs it)."""
        command = "set -a && . /run/billing/stack.env && exec python -m billing_cli " + shlex.join(argv)
        return self.engine.podman(
            "exec", self.engine.container("scheduler-worker"), "sh", "-c", command, timeout=timeout
        )


@pytest.fixture(scope="session")
def compose_stack() -> Iterator[ComposeStack]:
    """Build the four targets, bring the project up in two steps, wait for every health check; ``down -v`` after."""
    compose = COMPOSE_VENV / "bin" / "podman-compose"
    if not compose.exists():
        raise EngineUnavailable("no podman-compose: `make container-tools` installs it into .venv-containers")
    started = time.monotonic()
    engine = prepare(REPO, WORK, [str(compose), "--project-name", "aws-cost-billing"])
    engine.compose("down", "-v", timeout=300)  # a run that was killed leaves its containers behind
    building = time.monotonic()
    engine.compose("--podman-build-args=--network=host", "build", timeout=1800)
    engine.timed("build", building)
    up = time.monotonic()
    try:
        engine.compose("up", "-d", *FIRST, timeout=300)
        code = engine.podman("wait", engine.container("provision"), timeout=300).strip()
        provision_log = engine.podman("logs", engine.container("provision"))
        if code != "0":
            raise EngineUnavailable(f"provision exited with {code}:\n{provision_log[-3000:]}")
        engine.compose("up", "-d", "--no-deps", *SERVICES, timeout=300)
        wait_healthy(engine, ("moto", "stripe-emulator", *SERVICES), HEALTH_TIMEOUT_SECONDS)
        engine.timed("up", up)
        login = re.search(r"admin login (\S+) / (\S+);", provision_log)
        assert login, provision_log
        settings = dict(
            env_file(engine.podman("exec", engine.container("billing-api"), "cat", "/run/billing/stack.env"))
        )
        engine.timed("set-up", started)
        yield ComposeStack(engine, settings, (login.group(1), login.group(2)))
    finally:
        down = time.monotonic()
        engine.compose("down", "-v", timeout=300)
        engine.timed("down", down)
        print(f"\ncontainer test timings (s): {json.dumps(engine.timings)}", file=sys.stderr)
