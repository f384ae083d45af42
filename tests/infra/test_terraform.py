"""Terraform is formatted, every root validates with the real AWS provider, and checkov finds nothing.

The example root is also planned, with the default cost source and with the FOCUS cost export
(cost_source = "focus", with either engine): a plan evaluates what validate cannot (counts, the
module's conditions, the policies' final JSON). Planning reads the roots' data sources, so it runs
against moto (STS only, through a provider override in a copy of the root); nothing is applied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.conftest import ENVIRONMENTS, REPO, TERRAFORM_DIR, Terraform, Tools, moto_server, run

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


def _checkov(tools: Tools, *args: str, quiet: bool = True) -> dict:
    """checkov's JSON report; ``quiet`` leaves the passed checks out of it."""
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    argv = [str(tools.checkov), *args, "--output", "json", *(["--quiet"] if quiet else []), "--skip-download"]
    result = run(argv, env=env, check=False)
    assert result.returncode in (0, 1), result.stderr
    reports = json.loads(result.stdout)
    return reports[0] if isinstance(reports, list) else reports


def _failures(report: dict) -> list[str]:
    return [
        f"{check['check_id']} {check['resource']} ({check['file_path']}:{check['file_line_range']})"
        for check in report.get("results", {}).get("failed_checks", [])
    ]


@pytest.fixture(scope="module")
def terraform_checkov(tools: Tools) -> dict:
    """checkov's report on terraform/ (passed checks too): every module, each resource whatever its count."""
    return _checkov(tools, "--directory", str(TERRAFORM_DIR), "--framework", "terraform", quiet=False)


def test_checkov_finds_no_failed_check_in_terraform(terraform_checkov: dict) -> None:
    assert terraform_checkov["summary"]["passed"] > 100  # it really scanned the modules
    assert _failures(terraform_checkov) == []


def test_checkov_scanned_the_focus_export_and_its_athena_resources(terraform_checkov: dict) -> None:
    # The module's resources are scanned although the default (cost-explorer) creates none of them.
    passed = {
        (check["resource"].removeprefix("module.cost_export."), check["check_id"])
        for check in terraform_checkov["results"]["passed_checks"]
        if check["file_path"].startswith("/modules/cost_export/")
    }

    assert {
        ("aws_athena_workgroup.focus", "CKV_AWS_82"),  # the workgroup's configuration is enforced
        ("aws_athena_workgroup.focus", "CKV_AWS_159"),  # its results are encrypted
        ("aws_s3_bucket.export", "CKV_AWS_145"),  # KMS
        ("aws_s3_bucket.export", "CKV_AWS_21"),  # versioned
        ("aws_s3_bucket.export", "CKV2_AWS_6"),  # public access block
        ("aws_s3_bucket.athena_results", "CKV_AWS_145"),
        ("aws_s3_bucket.athena_results", "CKV2_AWS_6"),
        ("aws_iam_policy_document.export_bucket", "CKV_AWS_283"),
    } <= passed


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


# --- plans of the example root ------------------------------------------------------------------------

EXAMPLE_VARS = ("-var-file=terraform.tfvars.example",)
PLANS = {
    "default": EXAMPLE_VARS,
    "focus-duckdb": (*EXAMPLE_VARS, "-var", "cost_source=focus", "-var", "focus_engine=duckdb"),
    "focus-athena": (*EXAMPLE_VARS, "-var", "cost_source=focus", "-var", "focus_engine=athena"),
}
ACCOUNT = "123456789012"  # moto's
BUCKET = "prod-billing-cost-export"  # environment "prod" of terraform.tfvars.example
EXPORT_FOLDER = "focus/prod-billing-focus"
# What the billing reads of each FOCUS line (services/billing_core/adapters/focus_export.py).
BILLING_COLUMNS = {
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargePeriodStart",
    "InvoiceId",
    "InvoiceIssuerName",
    "ServiceName",
    "SubAccountId",
    "Tags",
}
GIB = 1024**3


def _provider_override(endpoint: str) -> str:
    """Both providers of the example root against moto, with moto's credentials."""
    blocks = []
    for alias in (None, "us_east_1"):
        blocks.append(
            'provider "aws" {\n'
            + (f'  alias = "{alias}"\n' if alias else "")
            + '  access_key = "testing"\n  secret_key = "testing"\n'
            + "  skip_credentials_validation = true\n  skip_metadata_api_check = true\n"
            + f'  endpoints {{\n    sts = "{endpoint}"\n  }}\n}}\n'
        )
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def plans(terraform: Terraform) -> Iterator[dict[str, dict[str, Any]]]:
    """``terraform show -json`` of a plan of the example root per entry of PLANS."""
    root = terraform.root / "environments" / "example-plan"  # beside example: its module paths hold
    shutil.copytree(
        terraform.root / "environments" / "example",
        root,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"),
        dirs_exist_ok=True,
    )
    with moto_server() as endpoint:
        (root / "moto_override.tf").write_text(_provider_override(endpoint))
        run(
            [str(terraform.tools.terraform), "init", "-backend=false", f"-plugin-dir={terraform.tools.plugin_dir}"]
            + ["-input=false", "-no-color"],
            cwd=root,
            env=terraform.env,
        )
        # The three plans at once (they only read): each takes a while for the ~120 resources.
        running = {
            name: subprocess.Popen(
                [str(terraform.tools.terraform), "plan", "-input=false", "-no-color", "-lock=false"]
                + [f"-out={name}.tfplan", *args],
                cwd=root,
                env=terraform.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for name, args in PLANS.items()
        }
        for name, process in running.items():
            output, _ = process.communicate(timeout=600)
            assert process.returncode == 0, f"plan {name} failed:\n{output[-5000:]}"
        shown = {
            name: json.loads(
                run(
                    [str(terraform.tools.terraform), "show", "-json", f"{name}.tfplan"], cwd=root, env=terraform.env
                ).stdout
            )
            for name in PLANS
        }
    yield shown


def _changes(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Planned resource address -> its values after apply (as far as known)."""
    return {change["address"]: change for change in plan["resource_changes"] if change["mode"] == "managed"}


def _after(plan: dict[str, Any], address: str) -> dict[str, Any]:
    return _changes(plan)[address]["change"]["after"]


def _data_sources(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Data sources read while planning (all of their inputs known): address -> values."""

    def walk(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield from module.get("resources", [])
        for child in module.get("child_modules", []):
            yield from walk(child)

    return {
        resource["address"]: resource["values"]
        for resource in walk(plan["prior_state"]["values"]["root_module"])
        if resource["mode"] == "data"
    }


def _policy(plan: dict[str, Any], address: str) -> dict[str, dict[str, Any]]:
    """The statements of a policy document read while planning, by Sid."""
    document = json.loads(_data_sources(plan)[address]["json"])
    return {statement["Sid"]: statement for statement in document["Statement"]}


def _listed(value: str | list[str]) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def test_the_default_plan_creates_no_focus_export_glue_or_athena(plans):
    addresses = set(_changes(plans["default"]))
    types = {change["type"] for change in _changes(plans["default"]).values()}

    assert not {address for address in addresses if address.startswith("module.cost_export")}
    assert not {t for t in types if t.startswith(("aws_bcmdataexports", "aws_glue", "aws_athena"))}
    assert not {address for address in _data_sources(plans["default"]) if "focus" in address}
    assert "DataExportsEncryptCostExport" not in _policy(
        plans["default"], "module.data.data.aws_iam_policy_document.key"
    )


def test_the_focus_plan_adds_the_export_bucket_and_with_athena_glue_and_athena(plans):
    default, duckdb, athena = (set(_changes(plans[name])) for name in ("default", "focus-duckdb", "focus-athena"))

    assert default <= duckdb <= athena
    assert {"module.cost_export[0].aws_bcmdataexports_export.focus", "module.cost_export[0].aws_s3_bucket.export"} <= (
        duckdb - default
    )
    assert not {a for a in duckdb if "glue" in a or "athena" in a}
    assert {
        "module.cost_export[0].aws_glue_catalog_database.focus[0]",
        "module.cost_export[0].aws_glue_catalog_table.focus[0]",
        "module.cost_export[0].aws_athena_workgroup.focus[0]",
        "module.cost_export[0].aws_s3_bucket.athena_results[0]",
    } <= athena - duckdb
    assert all(address.startswith("module.cost_export[0].") for address in athena - default)


def test_the_export_delivers_focus_1_2_parquet_from_us_east_1_to_the_stacks_region(plans):
    plan = plans["focus-athena"]
    (export,) = _after(plan, "module.cost_export[0].aws_bcmdataexports_export.focus")["export"]
    (query,) = export["data_query"]
    (destination,) = export["destination_configurations"][0]["s3_destination"]
    (output,) = destination["s3_output_configurations"]
    match = re.fullmatch(r"SELECT (.+) FROM (\w+)", query["query_statement"])

    assert match and match.group(2) == "FOCUS_1_2_AWS"
    assert BILLING_COLUMNS | {"ProviderName", "PublisherName", "BillingAccountId"} <= set(match.group(1).split(", "))
    assert query["table_configurations"] == {"FOCUS_1_2_AWS": {"TIME_GRANULARITY": "DAILY"}}
    assert output == {
        "format": "PARQUET",
        "compression": "PARQUET",
        "overwrite": "OVERWRITE_REPORT",
        "output_type": "CUSTOM",
    }
    assert export["refresh_cadence"] == [{"frequency": "SYNCHRONOUS"}]
    assert f"{destination['s3_prefix']}/{export['name']}" == EXPORT_FOLDER
    assert destination["s3_region"] == "eu-central-1"  # the stack's region (terraform.tfvars.example)
    # Data Exports' API is in us-east-1: the export goes through the aliased provider.
    (resource,) = [
        r
        for r in plan["configuration"]["root_module"]["module_calls"]["cost_export"]["module"]["resources"]
        if r["type"] == "aws_bcmdataexports_export"
    ]
    assert resource["provider_config_key"] == "aws.us_east_1"
    assert plan["configuration"]["provider_config"]["aws.us_east_1"]["expressions"]["region"] == {
        "constant_value": "us-east-1"
    }


def test_the_export_bucket_grants_data_exports_what_aws_documents_and_only_over_tls(plans):
    statements = _policy(plans["focus-duckdb"], "module.cost_export[0].data.aws_iam_policy_document.export_bucket")
    delivery = statements["EnableAWSDataExportsToWriteToS3AndCheckPolicy"]

    assert delivery["Effect"] == "Allow"
    assert _listed(delivery["Principal"]["Service"]) == {
        "bcm-data-exports.amazonaws.com",
        "billingreports.amazonaws.com",
    }
    assert _listed(delivery["Action"]) == {"s3:PutObject", "s3:GetBucketPolicy"}
    assert _listed(delivery["Resource"]) == {f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"}
    assert delivery["Condition"] == {
        "StringLike": {
            "aws:SourceAccount": ACCOUNT,
            "aws:SourceArn": [
                f"arn:aws:cur:us-east-1:{ACCOUNT}:definition/*",
                f"arn:aws:bcm-data-exports:us-east-1:{ACCOUNT}:export/*",
            ],
        }
    }
    assert statements["HttpsOnly"]["Effect"] == "Deny"
    assert statements["HttpsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(statements) == {"EnableAWSDataExportsToWriteToS3AndCheckPolicy", "HttpsOnly"}


def test_the_export_bucket_is_private_versioned_and_encrypted_with_the_data_key(plans):
    plan = plans["focus-duckdb"]
    prefix = "module.cost_export[0]."
    block = _after(plan, f"{prefix}aws_s3_bucket_public_access_block.export")
    (rule,) = _after(plan, f"{prefix}aws_s3_bucket_server_side_encryption_configuration.export")["rule"]
    (lifecycle,) = _after(plan, f"{prefix}aws_s3_bucket_lifecycle_configuration.export")["rule"]
    module = plan["configuration"]["root_module"]["module_calls"]["cost_export"]

    assert _after(plan, f"{prefix}aws_s3_bucket.export")["bucket"] == BUCKET
    assert all(
        block[key]
        for key in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    assert (
        _after(plan, f"{prefix}aws_s3_bucket_ownership_controls.export")["rule"][0]["object_ownership"]
        == "BucketOwnerEnforced"
    )
    assert (
        _after(plan, f"{prefix}aws_s3_bucket_versioning.export")["versioning_configuration"][0]["status"] == "Enabled"
    )
    assert rule["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    assert rule["bucket_key_enabled"] is True
    assert "module.data.kms_key_arn" in module["expressions"]["kms_key_arn"]["references"]
    # Current files stay (AWS replaces a period's files itself); replaced versions go.
    assert not lifecycle["expiration"][0].get("days")
    assert lifecycle["noncurrent_version_expiration"][0]["noncurrent_days"] > 0


def test_the_data_key_lets_data_exports_encrypt_for_the_export_bucket_only(plans):
    statement = _policy(plans["focus-duckdb"], "module.data.data.aws_iam_policy_document.key")[
        "DataExportsEncryptCostExport"
    ]

    assert _listed(statement["Principal"]["Service"]) == {
        "bcm-data-exports.amazonaws.com",
        "billingreports.amazonaws.com",
    }
    assert _listed(statement["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert statement["Condition"] == {
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}
    }


def test_the_glue_table_reads_the_export_parquet_files_with_projected_billing_periods(plans):
    table = _after(plans["focus-athena"], "module.cost_export[0].aws_glue_catalog_table.focus[0]")
    (storage,) = table["storage_descriptor"]
    columns = {column["name"]: column["type"] for column in storage["columns"]}
    data = f"s3://{BUCKET}/{EXPORT_FOLDER}/data/"

    assert table["table_type"] == "EXTERNAL_TABLE"
    assert storage["location"] == data
    assert (
        storage["ser_de_info"][0]["serialization_library"]
        == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert storage["input_format"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert {column.lower() for column in BILLING_COLUMNS} <= set(columns)
    assert columns["tags"] == "map<string,string>"
    assert columns["billedcost"] == columns["effectivecost"] == "double"
    assert columns["billingperiodstart"] == columns["chargeperiodstart"] == "timestamp"
    assert table["partition_keys"] == [{"name": "billing_period", "type": "string", "comment": None}]
    assert {
        key: value for key, value in table["parameters"].items() if key.startswith(("projection.", "storage."))
    } == {
        "projection.enabled": "true",
        "projection.billing_period.type": "date",
        "projection.billing_period.format": "yyyy-MM",
        "projection.billing_period.range": "NOW-3YEARS,NOW",
        "projection.billing_period.interval": "1",
        "projection.billing_period.interval.unit": "MONTHS",
        "storage.location.template": data + "BILLING_PERIOD=${billing_period}",
    }


def test_the_workgroup_enforces_encrypted_expiring_results_and_a_scan_limit(plans):
    plan = plans["focus-athena"]
    (configuration,) = _after(plan, "module.cost_export[0].aws_athena_workgroup.focus[0]")["configuration"]
    (results,) = configuration["result_configuration"]
    (lifecycle,) = _after(plan, "module.cost_export[0].aws_s3_bucket_lifecycle_configuration.athena_results[0]")["rule"]
    (encryption,) = _after(
        plan, "module.cost_export[0].aws_s3_bucket_server_side_encryption_configuration.athena_results[0]"
    )["rule"]

    assert configuration["enforce_workgroup_configuration"] is True
    assert configuration["bytes_scanned_cutoff_per_query"] == 10 * GIB
    assert results["output_location"] == f"s3://{BUCKET}-athena/results/"
    assert results["encryption_configuration"][0]["encryption_option"] == "SSE_KMS"
    assert results["expected_bucket_owner"] == ACCOUNT
    assert 0 < lifecycle["expiration"][0]["days"] <= 31
    assert encryption["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    assert set(_policy(plan, "module.cost_export[0].data.aws_iam_policy_document.athena_results[0]")) == {"HttpsOnly"}


def test_the_services_may_read_the_export_folder_and_with_athena_query_it(plans):
    duckdb, athena = plans["focus-duckdb"], plans["focus-athena"]
    read = _policy(duckdb, "data.aws_iam_policy_document.read_focus_export[0]")
    query = _policy(athena, "data.aws_iam_policy_document.query_focus_athena[0]")

    assert read["ListFocusExport"]["Action"] == "s3:ListBucket"
    assert read["ListFocusExport"]["Resource"] == f"arn:aws:s3:::{BUCKET}"
    assert read["ListFocusExport"]["Condition"] == {"StringLike": {"s3:prefix": [EXPORT_FOLDER, f"{EXPORT_FOLDER}/*"]}}
    assert read["ReadFocusExport"]["Action"] == "s3:GetObject"
    assert read["ReadFocusExport"]["Resource"] == f"arn:aws:s3:::{BUCKET}/{EXPORT_FOLDER}/*"
    assert "data.aws_iam_policy_document.query_focus_athena[0]" not in _data_sources(duckdb)
    assert _listed(query["RunFocusQueries"]["Action"]) == {
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
    }
    assert query["RunFocusQueries"]["Resource"] == f"arn:aws:athena:eu-central-1:{ACCOUNT}:workgroup/prod-billing-focus"
    assert _listed(query["ReadFocusTable"]["Resource"]) == {
        f"arn:aws:glue:eu-central-1:{ACCOUNT}:catalog",
        f"arn:aws:glue:eu-central-1:{ACCOUNT}:database/prod_billing_focus",
        f"arn:aws:glue:eu-central-1:{ACCOUNT}:table/prod_billing_focus/focus",
    }
    assert query["AthenaWritesResults"]["Resource"] == f"arn:aws:s3:::{BUCKET}-athena/results/*"
