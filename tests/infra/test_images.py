"""The Dockerfile is hadolint-clean and pinned, the compose file is valid and complete."""

from __future__ import annotations

import json
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.infra.conftest import REPO, Tools, run

DOCKERFILE = REPO / "deploy" / "Dockerfile"
LOCK = REPO / "deploy" / "requirements.lock"
COMPOSE = REPO / "docker-compose.yml"
SERVICE_TARGETS = {"billing-api", "webhook-receiver", "scheduler-worker"}


def _stages() -> dict[str, str]:
    """Dockerfile stage name -> its text."""
    parts = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.MULTILINE)[1:]
    return {re.match(r"\S+ AS (\S+)", part).group(1): part for part in parts}


def _lock() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_hadolint_finds_nothing(tools: Tools) -> None:
    result = run([str(tools.hadolint), "--no-color", str(DOCKERFILE)], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_service_has_a_target_with_a_healthcheck_and_a_non_root_user() -> None:
    stages = _stages()
    assert SERVICE_TARGETS <= set(stages)
    for target in SERVICE_TARGETS:
        assert "HEALTHCHECK" in stages[target], target
    runtime = stages["runtime"]
    assert "USER 10001:10001" in runtime
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime
    last_user = re.findall(r"^USER (\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)[-1]
    assert last_user == "10001:10001"


def test_base_image_is_a_pinned_slim_python() -> None:
    bases = {line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("FROM python")}
    assert len(bases) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", bases.pop())


def test_lock_pins_exactly_the_versions_pyproject_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lock = _lock()
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", dependency
        assert lock.get(canonicalize_name(requirement.name)) == specifier.version, dependency


def test_lock_pins_every_package_exactly() -> None:
    lines = [line for line in LOCK.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][A-Za-z0-9.+\-]*", line) for line in lines)
    assert "--no-deps" in DOCKERFILE.read_text()


def _compose_config(tools: Tools, *args: str, env: dict[str, str] | None = None) -> dict:
    result = run(
        [str(tools.compose), "--file", str(COMPOSE), *args, "config", "--format", "json"],
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    return json.loads(result.stdout)


def test_compose_file_is_valid_and_runs_the_whole_system(tools: Tools) -> None:
    config = _compose_config(tools)
    services = config["services"]
    assert {"moto", "stripe-emulator", "provision", *SERVICE_TARGETS} == set(services)
    for name in SERVICE_TARGETS:
        assert services[name]["build"]["target"] == name
        assert services[name]["read_only"] is True
        assert services[name]["depends_on"]["provision"]["condition"] == "service_completed_successfully"
    assert services["stripe-emulator"]["build"]["target"] in _stages()
    assert re.fullmatch(r"motoserver/moto:\d+\.\d+\.\d+", services["moto"]["image"])


def test_stripe_test_profile_adds_the_stripe_cli_forwarding_to_the_receiver(tools: Tools) -> None:
    config = _compose_config(tools, "--profile", "stripe-test", env={"STRIPE_API_KEY": "sk_test_placeholder"})
    cli = config["services"]["stripe-cli"]
    assert re.fullmatch(r"stripe/stripe-cli:v\d+\.\d+\.\d+", cli["image"])
    assert cli["command"][:3] == ["listen", "--forward-to", "webhook-receiver:8001/billing/webhook"]


def test_dockerignore_keeps_the_build_context_to_the_application() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    rules = [line for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"  # ignore everything first, then allow the application back in
    assert not any(line.startswith("!") and (".venv" in line or ".local" in line or "tests" in line) for line in lines)
