"""What the container test proves is what Fargate runs: ECS's task definitions and ``docker-compose.yml``
start each service the same way (command, user, read-only root, dropped capabilities, health check), and
their environments differ only by the settings named below, each with why.

The task definitions set no command: ECS runs the image's ``CMD``, so the compose file's command must
``exec`` exactly that ``CMD`` (after sourcing the provisioned settings). Terraform evaluates the health
checks and environments (``terraform console`` on the example root).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest
import yaml

from local_stack.compose_provision import service_settings
from tests.infra.conftest import REPO, TERRAFORM_DIR, Terraform
from tests.infra.test_deployed_settings import deployed  # noqa: F401 - the evaluated environments

SERVICES = ("billing-api", "webhook-receiver", "scheduler-worker")
DOCKERFILE = REPO / "deploy" / "Dockerfile"
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
ECS_MODULE = (TERRAFORM_DIR / "modules" / "ecs_service" / "main.tf").read_text()

# Set only by the compose project: the local AWS and Stripe stand-ins and local conveniences.
LOCAL_ONLY = {
    "AWS_ENDPOINT_URL": "moto; production uses the real endpoints",
    "AWS_ACCESS_KEY_ID": "moto's fake credentials; a task has its IAM role",
    "AWS_SECRET_ACCESS_KEY": "moto's fake credentials; a task has its IAM role",
    "STRIPE_API_BASE": "the Stripe emulator",
    "STRIPE_JS_URL": "the emulator's Stripe.js stand-in",
    "AUTH_MODE": "password sign-in against moto's Cognito: no Hosted UI locally",
    "COGNITO_JWKS_URL": "moto's JWKS; production derives Cognito's from region and pool",
    "COGNITO_ISSUER": "moto's pool; production derives it from region and pool",
    "COGNITO_SIGNIN_ENDPOINT": "the browser signs in at moto's published port",
    "FX_RATE": "moto serves no ECB feed in the compose project: a manual rate",
    "FX_SOURCE": "the manual rate's source",
    "FX_DATE": "the manual rate's date",
    "QUEUE_WAIT_SECONDS": "short polls so a local stop is quick",
    "RETRY_BASE_SECONDS": "short back-off locally",
    "RETRY_MAX_SECONDS": "short back-off locally",
    "SECRETS_REFRESH_SECONDS": "a reset emulator's new webhook secret is read within seconds",
    "LOG_LEVEL": "the developer's choice (production: INFO, the default)",
    "WORKER_HEARTBEAT_FILE": "the compose file names it; the worker's task sets it too",
}
# Set only in production: what the load balancer, the Hosted UI and autoscaling need.
PRODUCTION_ONLY = {
    "FORWARDED_ALLOW_IPS": "gunicorn trusts X-Forwarded-* from the load balancer's VPC",
    "WEB_CONCURRENCY": "gunicorn workers per task",
    "COGNITO_DOMAIN": "the Hosted UI",
    "OPERATOR_GROUP": "the Cognito group's deployed name",
    "PAGE_LANGUAGE": "the operator's choice",
    "BILLING_CRON": "the monthly schedule (the default locally)",
    "STRIPE_MAX_REQUESTS_PER_SECOND": "Stripe's budget split over the most worker tasks",
    "INVOICE_MAIL_FROM_NAME": "the sender's display name (the seller's name by default)",
    "INVOICE_MAIL_REPLY_TO": "set where the operator wants replies elsewhere",
    "BILLING_PAGE_URL": "the public Billing tab (the local page has no stable host)",
    "GUNICORN_BIND": "compose sets it in the service's own environment too",
    # The operator's prices, currency, language and VAT: the compose project bills with the defaults.
    "BASE_FEE": "the operator's price (default 20.00)",
    "MARKUP_PERCENT": "the operator's price (default 0)",
    "BILLING_CURRENCY": "the operator's currency (default EUR)",
    "INVOICE_LANGUAGE": "the operator's language (default de)",
    "COST_GROUP_BY": "the operator's cost attribution (default the whole payer account)",
    "TAX_MODE": "the operator's VAT handling (default this system's)",
    "VAT_RATE": "the operator's VAT rate (default 19)",
}


def _stages() -> dict[str, str]:
    parts = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.MULTILINE)[1:]
    return {re.match(r"\S+ AS (\S+)", part).group(1): part for part in parts}


def _json_instruction(stage: str, instruction: str) -> list[str]:
    found = re.findall(rf"^(?:\s*){instruction} (\[.*\])\s*$", stage, flags=re.MULTILINE)
    assert found, instruction
    return json.loads(found[-1])


def _healthcheck(stage: str) -> list[str]:
    match = re.search(r"^HEALTHCHECK [^\n]*\\\n\s+CMD (\[[^\n]*\])", stage, flags=re.MULTILINE)
    assert match, stage
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def health_checks(terraform: Terraform) -> dict[str, list[str]]:
    result = subprocess.run(
        [str(terraform.tools.terraform), "console", "-var-file=terraform.tfvars.example", "-no-color"],
        cwd=terraform.root / "environments" / "example",
        env=terraform.env,
        input="jsonencode(local.health_checks)\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(json.loads(result.stdout.strip()))


@pytest.mark.parametrize("service", SERVICES)
def test_compose_execs_the_command_fargate_runs(service):
    compose_command = COMPOSE["services"][service]["command"]
    assert compose_command[:2] == ["sh", "-c"], service
    script = compose_command[2]
    assert script.startswith("set -a && . /run/billing/stack.env && exec "), script
    assert shlex.split(script.split("exec ", 1)[1]) == _json_instruction(_stages()[service], "CMD")
    assert '"command"' not in ECS_MODULE and "command =" not in ECS_MODULE.split("healthCheck")[0]


@pytest.mark.parametrize("service", SERVICES)
def test_both_run_as_the_images_user_read_only_without_capabilities(service):
    compose = COMPOSE["services"][service]
    assert compose["read_only"] is True and "user" not in compose
    assert compose["cap_drop"] == ["ALL"] and "/tmp" in compose["tmpfs"]
    assert re.findall(r"^USER (\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)[-1] == "10001:10001"
    assert 'user                   = "10001:10001"' in ECS_MODULE
    assert "readonlyRootFilesystem = true" in ECS_MODULE
    assert 'capabilities = { drop = ["ALL"] }' in ECS_MODULE
    assert 'containerPath = "/tmp"' in ECS_MODULE


@pytest.mark.parametrize("service", SERVICES)
def test_the_task_checks_health_as_the_image_does(service, health_checks):
    assert "healthcheck" not in COMPOSE["services"][service]  # compose uses the image's HEALTHCHECK
    assert health_checks[service] == _healthcheck(_stages()[service])


@pytest.mark.parametrize("service", SERVICES)
def test_the_environments_differ_only_by_the_named_settings(service, deployed):  # noqa: F811
    compose_names = set(COMPOSE["services"][service].get("environment", {})) | set(
        service_settings(
            region="eu-central-1",
            aws_endpoint="http://moto:5000",
            tables={"billing": "billing", "payment-methods": "payment-methods", "events": "events"},
            queues={
                name: f"http://moto:5000/q/{name}"
                for name in ("billing-jobs", "stripe-events", "document-mail", "mail-events")
            },
            user_pool_id="pool",
            client_id="client",
            stripe_api_base="http://stripe-emulator:12111",
            stripe_js_url="http://localhost:12111/v3/",
            aws_public_url="http://localhost:4566",
            mail={"sender": "rechnung@beispiel-hosting.de", "configuration_set": "invoice-mail"},
        )
    )
    ecs_names = deployed["names"][service]

    assert ecs_names - compose_names - set(PRODUCTION_ONLY) == set(), "set in ECS only: add to compose or say why"
    # Compose hands every service the same provisioned settings; each must be ECS's for some service.
    everywhere_in_ecs = set().union(*deployed["names"].values())
    assert compose_names - everywhere_in_ecs - set(LOCAL_ONLY) == set(), "set in compose only: deploy it or say why"
