"""Fixtures of the infrastructure checks: the pinned tools, and Terraform that runs offline.

The tools come from `make infra-tools` (.venv-tools, .venv-checkov) and the Terraform provider
from the filesystem mirror /opt/tf-plugins (TF_PLUGIN_DIR overrides it). A missing tool fails
the test instead of skipping it: `make test` must never pass without having run every check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from local_stack.moto_server import BackgroundMotoServer

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "terraform"
ENVIRONMENTS = sorted(path.name for path in (TERRAFORM_DIR / "environments").iterdir() if path.is_dir())


@dataclass(frozen=True)
class Tools:
    """Paths of the tools the checks run."""

    terraform: Path
    hadolint: Path
    compose: Path
    checkov: Path
    plugin_dir: Path


def _tool(path: Path | str | None, how: str) -> Path:
    if path is None or not Path(path).exists():
        pytest.fail(f"{path or 'tool'} is missing; {how}", pytrace=False)
    return Path(path)


@pytest.fixture(scope="session")
def tools() -> Tools:
    """The pinned tools; fails (never skips) when one is missing."""
    make = "run `make infra-tools` (or `make test`)"
    return Tools(
        terraform=_tool(shutil.which("terraform"), "install Terraform >= 1.6"),
        hadolint=_tool(REPO / ".venv-tools" / "bin" / "hadolint", make),
        compose=_tool(REPO / ".venv-tools" / "bin" / "docker-compose", make),
        checkov=_tool(REPO / ".venv-checkov" / "bin" / "checkov", make),
        plugin_dir=_tool(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"), "set TF_PLUGIN_DIR to a provider mirror"),
    )


@dataclass(frozen=True)
class Terraform:
    """Runs terraform on a private copy of terraform/, offline, with no user configuration."""

    tools: Tools
    root: Path  # the copy of terraform/
    env: dict[str, str]

    def run(
        self, environment: str, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess:
        """``terraform <args>`` in environments/<environment> of the copy."""
        return run(
            [str(self.tools.terraform), *args],
            cwd=self.root / "environments" / environment,
            env=self.env,
            check=check,
            timeout=timeout,
        )

    def init(self, environment: str) -> None:
        """``terraform init`` from the provider mirror, without a backend."""
        self.run(
            environment, "init", "-backend=false", f"-plugin-dir={self.tools.plugin_dir}", "-input=false", "-no-color"
        )


@pytest.fixture(scope="session")
def terraform(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    """Terraform on a copy of terraform/ (so runs leave nothing in the checkout), initialised per root once."""
    work = tmp_path_factory.mktemp("terraform")
    root = work / "terraform"
    shutil.copytree(
        TERRAFORM_DIR, root, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl")
    )
    cli_config = work / "terraformrc"
    cli_config.write_text("")  # an empty CLI configuration, so no user setting interferes
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",  # no version check over the network
    }
    runner = Terraform(tools=tools, root=root, env=env)
    for environment in ENVIRONMENTS:
        runner.init(environment)
    return runner


def run(
    argv: Sequence[str],
    *,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run a tool, capturing its output; with ``check``, fail the test showing that output."""
    result = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}", pytrace=False)
    return result


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free port, yielding its endpoint; empty at start and reset at the end."""
    server = BackgroundMotoServer().start()
    endpoint = server.endpoint
    # In-process moto servers share one state; start from, and leave, an empty account.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    try:
        yield endpoint
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        server.stop()
