"""Terraform is formatted, every root validates with the real AWS provider, and checkov finds nothing."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.infra.conftest import ENVIRONMENTS, REPO, TERRAFORM_DIR, Terraform, Tools, run

SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def test_terraform_files_are_formatted(tools: Tools) -> None:
    result = run(
        [str(tools.terraform), "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM_DIR)], check=False
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}"


def test_there_is_an_example_environment_and_a_local_data_plane_root() -> None:
    assert {"example", "local-data"} <= set(ENVIRONMENTS)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_root_validates_with_the_aws_provider(terraform: Terraform, environment: str) -> None:
    result = terraform.run(environment, "validate", "-json", "-no-color", check=False)
    report = json.loads(result.stdout)
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["error_count"] == 0


def _checkov(tools: Tools, *args: str) -> dict:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = run([str(tools.checkov), *args, "--output", "json", "--quiet", "--skip-download"], env=env, check=False)
    assert result.returncode in (0, 1), result.stderr
    reports = json.loads(result.stdout)
    return reports[0] if isinstance(reports, list) else reports


def _failures(report: dict) -> list[str]:
    return [
        f"{check['check_id']} {check['resource']} ({check['file_path']}:{check['file_line_range']})"
        for check in report.get("results", {}).get("failed_checks", [])
    ]


def test_checkov_finds_no_failed_check_in_terraform(tools: Tools) -> None:
    report = _checkov(tools, "--directory", str(TERRAFORM_DIR), "--framework", "terraform")
    assert report["summary"]["passed"] > 100  # it really scanned the modules
    assert _failures(report) == []


def test_checkov_finds_no_failed_check_in_the_dockerfile(tools: Tools) -> None:
    report = _checkov(tools, "--file", str(REPO / "deploy" / "Dockerfile"), "--framework", "dockerfile")
    assert report["summary"]["passed"] > 0
    assert _failures(report) == []


def test_every_checkov_skip_gives_its_reason() -> None:
    files = [*TERRAFORM_DIR.rglob("*.tf"), REPO / "deploy" / "Dockerfile"]
    skips = [(path, match) for path in files for match in SKIP_COMMENT.finditer(path.read_text())]
    assert skips, "expected the documented skips to be found"
    unexplained = [
        f"{path.relative_to(REPO)}: {match.group(1)}"
        for path, match in skips
        if len((match.group(2) or "").strip()) < 20
    ]
    assert unexplained == []
