"""The example Terraform environment sets every setting the code declares, or the setting's default is right.

Terraform itself evaluates the services' environments (``terraform console`` on the example root, with
``terraform.tfvars.example``), so what is checked is what a deployment would get. A setting added to
``billing_core.settings.Settings`` fails here until it is set for the services in
``terraform/environments/example/main.tf`` or listed below with the reason its default is right.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from billing_core.bootstrap import REQUIRED_SETTINGS
from billing_core.settings import Settings
from scheduler_worker.worker import STOP_GRACE_SECONDS
from tests.infra.conftest import REPO, TERRAFORM_DIR, Terraform

EXAMPLE = TERRAFORM_DIR / "environments" / "example"
SERVICES = ("billing-api", "webhook-receiver", "scheduler-worker")
# ECS sends SIGKILL this long after SIGTERM unless the task definition sets stopTimeout (ours does not).
ECS_STOP_TIMEOUT_SECONDS = 30

# Settings no service sets in production, each with why its default is the right production value.
DEFAULT_IS_RIGHT_IN_PRODUCTION = {
    "AWS_ENDPOINT_URL": "unset means the real AWS endpoints; only the local stacks point it at moto.",
    "STRIPE_API_BASE": "unset means the real Stripe API.",
    "STRIPE_MAX_NETWORK_RETRIES": (
        "two SDK retries (same idempotency key) ride out a blip; the queues retry after that."
    ),
    "SECRETS_REFRESH_SECONDS": "ten seconds: a revoked webhook secret or key stops within 10 s, at one read per 10 s.",
    "RETRY_BASE_SECONDS": "15 s, doubling: a blip costs seconds, an outage a few dozen retries a day per message.",
    "RETRY_MAX_SECONDS": "two hours between attempts at most: an outage of days never dead-letters.",
    "COGNITO_JWKS_URL": "derived from region and pool: the JWKS of the real Cognito pool.",
    "COGNITO_ISSUER": "derived from region and pool: the issuer the real Cognito pool signs with.",
    "COGNITO_TOKEN_USE": "the admin page sends the Cognito access token, which names the app client.",
    "ACCOUNT_CLAIM": "sub is the admin's stable Cognito user id, in every access token.",
    "CORS_ALLOWED_ORIGINS": "billing-api serves the admin page itself, so its calls are same-origin.",
    "COST_PREVIEW_TTL_SECONDS": "six hours: Cost Explorer refreshes a few times a day and bills every request.",
    "COST_EXPLORER_METRIC": "UnblendedCost is what AWS bills the payer account.",
    "WORKER_THREADS": "four I/O-bound job threads suit a 0.25 vCPU task; more throughput comes from more tasks.",
    "QUEUE_WAIT_SECONDS": (
        "20 s, the longest long poll, is the cheapest at idle and lets a stop fit ECS's stop timeout."
    ),
    "STRIPE_JS_URL": "Stripe requires Stripe.js to be loaded from js.stripe.com.",
    "COGNITO_SIGNIN_ENDPOINT": "production signs in through the Hosted UI; the password form is local only.",
    "EXCLUDED_RECORD_TYPES": "Tax: AWS's own VAT is input tax the operator reclaims, never a cost to pass on.",
    "FX_RULE": "the last working day's ECB rate is the usual rate of a monthly invoice.",
    "ECB_FEED_URL": "the ECB's own 90-day feed.",
    "FX_RATE": "unset: each billed month is converted at the ECB reference rate of the period, stored once.",
    "FX_SOURCE": "only with a manual FX_RATE; unset, the ECB rate carries its own source.",
    "FX_DATE": "only with a manual FX_RATE; unset, the ECB rate carries its own date.",
    "SELLER_TAX_NUMBER": "a seller with a USt-IdNr (SELLER_VAT_ID) needs no Steuernummer on its invoices.",
    "ECB_HISTORY_URL": "the ECB's own full-history feed.",
    "CORRECTION_MONTHS": "three months covers AWS's late refunds and credits; one query however many months.",
    "COST_FINALITY": "final: AWS's bill is final only days after the month; bill it, not the estimate.",
    "RETRY_FAILED_ON_NEW_PAYMENT_METHOD": "true: a customer who saved a working card expects the failed invoice paid.",
    "FINAL_COSTS_DEADLINE_DAY": "the 8th: after AWS's usual closing (day 3-5) and Support fees (6th-7th).",
    "FINAL_COSTS_CHECK_HOUR": "06:00 UTC, once a day: Cost Explorer refreshes a few times a day.",
    "FOCUS_CACHE_DIR": "/tmp/focus-export: /tmp is the task's one writable place, on its ephemeral storage.",
    "FOCUS_COST_COLUMN": "BilledCost is what AWS invoices, as Cost Explorer's UnblendedCost is for its source.",
    "FOCUS_MARKETPLACE": "line: a Marketplace charge AWS invoices is passed on as its own line, as it is paid.",
    "SHARED_COST_SERVICES": "none: each cost scope pays its own costs unless the operator names shared services.",
    "SHARED_COST_UNATTRIBUTED": "false: costs no scope claims are not billed to the others unless chosen.",
    "SHARED_COST_SPLIT": "proportional: with no shared services set, the split is never used.",
    "STRIPE_WRITES_PER_MINUTE": "10 a minute per account and action: far above a person's clicks, far below Stripe's "
    "25-100 requests a second for everyone.",
    "OPERATOR_STRIPE_WRITES_PER_MINUTE": "120 a minute per operator and action: bulk work goes through the CLI.",
}
# The example root with the FOCUS cost export (README "The FOCUS cost export"), with either engine:
# the settings only these set count as set too.
FOCUS_VARIABLES = {
    "focus-duckdb": ("-var", "cost_source=focus", "-var", "focus_engine=duckdb"),
    "focus-athena": ("-var", "cost_source=focus", "-var", "focus_engine=athena"),
}
FOCUS_EXPORT_URI = "s3://prod-billing-cost-export/focus/prod-billing-focus"  # environment "prod"
COST_READERS = ("billing-api", "scheduler-worker")


def _declared_settings() -> set[str]:
    return {variable for variable, _, _ in Settings.documentation()}


def _server_variables() -> set[str]:
    """Variables gunicorn's configuration reads (set for the web services, not settings of the app)."""
    return set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', (REPO / "deploy" / "gunicorn.conf.py").read_text()))


def _console_values(console_output: str) -> tuple[dict[str, set[str]], dict[str, dict[str, str]]]:
    """(service -> every variable name, service -> variable -> value) from the console's answer.

    The names come through ``jsonencode`` and are exact. The values are read from the printed map
    and cover only what Terraform knows before apply (the rest, resource ids, print as
    ``(known after apply)``).
    """
    names: dict[str, set[str]] = {}
    values: dict[str, dict[str, str]] = {}
    block = None
    for line in console_output.splitlines():
        if match := re.fullmatch(r'\s*"names" = (".*")', line):
            names = {service: set(found) for service, found in json.loads(json.loads(match.group(1))).items()}
        elif match := re.fullmatch(r'\s*"([a-z-]+)" = \{', line):
            block = match.group(1)
        elif (match := re.fullmatch(r'\s*"([A-Z0-9_]+)" = (".*")', line)) and block:
            values.setdefault(block, {})[match.group(1)] = json.loads(match.group(2))
    return names, values


def _evaluate(terraform: Terraform, *variables: str) -> dict[str, Any]:
    """The services' environments as Terraform evaluates them with ``terraform.tfvars.example`` and
    ``variables``: every variable name, and the values known before apply."""
    # The console answers only the last expression it reads from a pipe: ask for both in one.
    expression = (
        "{names = jsonencode({for name, environment in local.service_environment"
        " : name => keys(environment)}),"
        " environments = local.service_environment}"
    )
    result = subprocess.run(
        [str(terraform.tools.terraform), "console", "-var-file=terraform.tfvars.example", *variables, "-no-color"],
        cwd=terraform.root / "environments" / "example",
        env=terraform.env,
        input=expression + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    names, values = _console_values(result.stdout)
    assert names and values, result.stdout
    return {"names": names, "values": values}


@pytest.fixture(scope="module")
def deployed(terraform: Terraform) -> dict[str, Any]:
    """The services' environments of the example as it comes (Cost Explorer)."""
    return _evaluate(terraform)


@pytest.fixture(scope="module")
def deployed_focus(terraform: Terraform) -> dict[str, dict[str, Any]]:
    """The services' environments with the FOCUS cost export, per entry of FOCUS_VARIABLES."""
    return {name: _evaluate(terraform, *variables) for name, variables in FOCUS_VARIABLES.items()}


def _set_somewhere(deployed: dict[str, Any], deployed_focus: dict[str, dict[str, Any]]) -> set[str]:
    every = [deployed, *deployed_focus.values()]
    return set().union(*(names for evaluated in every for names in evaluated["names"].values()))


def test_every_setting_is_set_for_a_service_or_its_default_is_right_in_production(deployed, deployed_focus):
    set_somewhere = _set_somewhere(deployed, deployed_focus)

    neither = _declared_settings() - set_somewhere - set(DEFAULT_IS_RIGHT_IN_PRODUCTION)

    assert neither == set(), (
        "set these for the services in terraform/environments/example/main.tf, or add each to "
        "DEFAULT_IS_RIGHT_IN_PRODUCTION with the reason its default is right"
    )


def test_the_default_is_right_list_names_only_settings_that_exist_and_are_not_set(deployed, deployed_focus):
    set_somewhere = _set_somewhere(deployed, deployed_focus)
    listed = set(DEFAULT_IS_RIGHT_IN_PRODUCTION)

    assert listed - _declared_settings() == set()
    assert listed & set_somewhere == set()
    assert all(len(reason) > 20 for reason in DEFAULT_IS_RIGHT_IN_PRODUCTION.values())


def test_every_variable_terraform_sets_is_a_setting_or_read_by_gunicorn(deployed, deployed_focus):
    for evaluated in (deployed, *deployed_focus.values()):
        for service, names in evaluated["names"].items():
            assert names - _declared_settings() - _server_variables() == set(), service


def test_the_three_services_get_an_environment_and_their_required_settings(deployed):
    assert set(deployed["names"]) == set(SERVICES)
    for service in SERVICES:
        required = {Settings.env_name(attribute) for attribute in REQUIRED_SETTINGS[service]}
        assert required <= deployed["names"][service], service


def test_the_values_terraform_knows_before_apply_are_valid_settings(deployed, deployed_focus):
    for evaluated in (deployed, *deployed_focus.values()):
        for service in SERVICES:
            known = {
                name: value for name, value in evaluated["values"][service].items() if name in _declared_settings()
            }
            assert known, service
            Settings.from_env(known)  # raises SettingsError naming any variable with an invalid value


def test_billing_api_and_the_worker_price_costs_alike(deployed):
    pricing = {
        "BASE_FEE",
        "MARKUP_PERCENT",
        "FX_RATE",
        "FX_SOURCE",
        "FX_DATE",
        "INVOICE_LANGUAGE",
        "COST_GROUP_BY",
        "BILLING_CURRENCY",
    }
    api, worker = (deployed["values"][service] for service in ("billing-api", "scheduler-worker"))

    assert {name: api.get(name) for name in pricing} == {name: worker.get(name) for name in pricing}


def test_billing_api_and_the_worker_share_the_vat_settings_from_terraform_variables(deployed):
    api, worker = (deployed["values"][service] for service in ("billing-api", "scheduler-worker"))
    main = (EXAMPLE / "main.tf").read_text()

    assert {name: api.get(name) for name in ("TAX_MODE", "VAT_RATE")} == {"TAX_MODE": "rates", "VAT_RATE": "19"}
    assert {name: worker.get(name) for name in ("TAX_MODE", "VAT_RATE")} == {"TAX_MODE": "rates", "VAT_RATE": "19"}
    assert re.search(r"TAX_MODE\s*=\s*var\.tax_mode", main) and re.search(r"VAT_RATE\s*=\s*var\.vat_rate", main)


def test_the_einvoice_bucket_of_the_data_module_goes_to_its_writer_and_its_reader_only(deployed):
    main = (EXAMPLE / "main.tf").read_text()

    assert re.search(r"EINVOICE_BUCKET\s*=\s*module\.data\.einvoice_bucket_name", main)
    assert {service for service, names in deployed["names"].items() if "EINVOICE_BUCKET" in names} == {
        "billing-api",
        "scheduler-worker",
    }


def test_the_admin_page_signs_in_through_the_hosted_ui_of_the_cognito_module(deployed):
    assert deployed["values"]["billing-api"]["AUTH_MODE"] == "hosted-ui"
    assert "COGNITO_DOMAIN" in deployed["names"]["billing-api"]
    main = (EXAMPLE / "main.tf").read_text()
    assert re.search(r"COGNITO_DOMAIN\s*=\s*local\.hosted_ui_url", main)
    assert re.search(r'hosted_ui_url\s*=\s*"https://\$\{module\.cognito\.hosted_ui_domain\}\.auth\.', main)


def test_the_worker_heartbeat_file_is_the_one_its_health_checks_read(deployed):
    heartbeat_file = deployed["values"]["scheduler-worker"]["WORKER_HEARTBEAT_FILE"]
    worker_stage = (REPO / "deploy" / "Dockerfile").read_text().split("AS scheduler-worker", 1)[1].split("FROM ", 1)[0]
    main = (EXAMPLE / "main.tf").read_text()

    assert f'"--heartbeat", "{heartbeat_file}"' in worker_stage
    assert re.search(rf'worker_heartbeat_file\s*=\s*"{re.escape(heartbeat_file)}"', main)
    assert re.search(r'"--heartbeat", local\.worker_heartbeat_file', main)


def test_the_worker_stops_before_ecs_kills_it():
    assert Settings.from_env({}).queue_wait_seconds + STOP_GRACE_SECONDS <= ECS_STOP_TIMEOUT_SECONDS


def test_the_default_sets_no_cost_source_setting(deployed):
    # COST_SOURCE's default is Cost Explorer; nothing of the FOCUS export without it.
    assert not {
        name for names in deployed["names"].values() for name in names if name.startswith(("COST_SOURCE", "FOCUS_"))
    }


@pytest.mark.parametrize("variant", sorted(FOCUS_VARIABLES))
def test_with_the_focus_export_both_cost_readers_read_the_same_export_and_no_one_else(deployed_focus, variant):
    evaluated = deployed_focus[variant]
    engine = variant.removeprefix("focus-")
    focus = {
        service: {
            name: value
            for name, value in evaluated["values"][service].items()
            if name == "COST_SOURCE" or name.startswith("FOCUS_")
        }
        for service in SERVICES
    }
    expected = {"COST_SOURCE": "focus", "FOCUS_EXPORT_URI": FOCUS_EXPORT_URI, "FOCUS_ENGINE": engine}
    if engine == "athena":
        expected |= {
            "FOCUS_ATHENA_WORKGROUP": "prod-billing-focus",
            "FOCUS_ATHENA_DATABASE": "prod_billing_focus",
            "FOCUS_ATHENA_TABLE": "focus",
        }
    else:
        expected |= {"FOCUS_MEMORY_LIMIT": "128MB"}

    assert focus["webhook-receiver"] == {}
    for service in COST_READERS:
        assert focus[service] == expected, service
    main = (EXAMPLE / "main.tf").read_text()
    assert re.search(r"FOCUS_EXPORT_URI\s*=\s*one\(module\.cost_export\[\*\]\.export_uri\)", main)
