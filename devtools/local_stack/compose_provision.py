"""``python -m local_stack.compose_provision``: provision the local AWS for docker-compose, then exit.

The compose file's one-shot ``provision`` service runs this once moto and the Stripe emulator are
up. It creates what ``make dev`` creates (tables, queues, Cognito pool and users, the Stripe secret,
seeded Cost Explorer results), with the same code, and writes the services' settings as an env
file on a shared volume; the services source it before they start, because pool and client ids
exist only after provisioning.

Stripe modes (``STRIPE_MODE``):
- ``emulator`` (default): registers the webhook endpoint with the emulator and stores its secret.
- ``test``: real Stripe test mode; keys come from ``STRIPE_TEST_SECRET_KEY``,
  ``STRIPE_TEST_PUBLISHABLE_KEY`` and ``STRIPE_TEST_WEBHOOK_SECRET`` (what ``stripe listen
  --print-secret`` prints), and the services get no ``STRIPE_API_BASE``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import requests

from billing_core import resources
from local_stack.cost_seed import seed_cost_explorer
from local_stack.environment import LOCAL_QUEUE_SETTINGS, STRIPE_JS_PATH
from local_stack.errors import StackError
from local_stack.provision import (
    ADMIN_GROUP,
    SECRET_ID,
    create_cognito_pool,
    create_einvoice_bucket,
    create_mail_delivery,
    create_queues,
    create_tables,
    register_webhook_endpoint,
    store_stripe_secret,
)
from local_stack.worker_settings import LOCAL_SELLER_SETTINGS

READY_TIMEOUT_SECONDS = 120.0


COMPOSE_FX_SETTINGS = {"FX_RATE": "1.0", "FX_SOURCE": "local-stack"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Flags; each defaults to the environment variable the compose file sets."""
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.compose_provision",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--aws-endpoint", default=env.get("AWS_ENDPOINT_URL", "http://moto:5000"))
    parser.add_argument("--region", default=env.get("AWS_REGION", "eu-central-1"))
    parser.add_argument("--stripe-mode", choices=("emulator", "test"), default=env.get("STRIPE_MODE", "emulator"))
    parser.add_argument("--stripe-api-base", default=env.get("STRIPE_API_BASE", "http://stripe-emulator:12111"))
    parser.add_argument(
        "--stripe-public-url",
        default=env.get("STRIPE_PUBLIC_URL", "http://localhost:12111"),
        help="the emulator as the browser reaches it (its --public-url in docker-compose.yml)",
    )
    parser.add_argument(
        "--aws-public-url",
        default=env.get("AWS_PUBLIC_URL", "http://localhost:4566"),
        help="moto as the browser reaches it, for the admin page's password sign-in",
    )
    parser.add_argument("--webhook-url", default=env.get("WEBHOOK_URL", "http://webhook-receiver:8001/billing/webhook"))
    parser.add_argument("--env-file", type=Path, default=Path(env.get("SERVICES_ENV_FILE", "/run/billing/stack.env")))
    return parser.parse_args(argv)


def stripe_keys(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(secret key, publishable key, webhook secret or None when the emulator will issue one)."""
    if args.stripe_mode == "emulator":
        return (
            environ.get("STRIPE_EMULATOR_SECRET_KEY", "sk_test_emulator"),
            environ.get("STRIPE_EMULATOR_PUBLISHABLE_KEY", "pk_test_emulator"),
            None,
        )
    names = ("STRIPE_TEST_SECRET_KEY", "STRIPE_TEST_PUBLISHABLE_KEY", "STRIPE_TEST_WEBHOOK_SECRET")
    missing = [name for name in names if not environ.get(name)]
    if missing:
        raise StackError(f"STRIPE_MODE=test needs {', '.join(missing)}")
    secret_key, publishable_key, webhook_secret = (environ[name] for name in names)
    if not secret_key.startswith(("sk_test_", "rk_test_")):
        raise StackError("STRIPE_TEST_SECRET_KEY must be a test-mode key (sk_test_... or rk_test_...)")
    return secret_key, publishable_key, webhook_secret


def service_settings(
    *,
    region: str,
    aws_endpoint: str,
    tables: Mapping[str, str],
    queues: Mapping[str, str],
    user_pool_id: str,
    client_id: str,
    stripe_api_base: str | None,
    stripe_js_url: str | None = None,
    aws_public_url: str | None = None,
    today: date | None = None,
    mail: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the three services (the variables ``billing_core.settings`` reads).

    ``stripe_api_base`` and ``stripe_js_url`` are the emulator's (as the services, and as the
    browser, reach it); ``None`` means real Stripe and its Stripe.js.
    """
    settings = {
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "BILLING_TABLE": tables["billing"],
        "PAYMENT_METHODS_TABLE": tables["payment-methods"],
        "EVENTS_TABLE": tables["events"],
        "BILLING_JOBS_QUEUE_URL": queues["billing-jobs"],
        "STRIPE_EVENTS_QUEUE_URL": queues["stripe-events"],
        "STRIPE_SECRET_ID": SECRET_ID,
        "COGNITO_USER_POOL_ID": user_pool_id,
        "COGNITO_CLIENT_ID": client_id,
        "COGNITO_JWKS_URL": f"{aws_endpoint}/{user_pool_id}/.well-known/jwks.json",
        # moto signs tokens with the issuer real Cognito uses, whatever its own address is.
        "COGNITO_ISSUER": f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}",
        "ADMIN_GROUP": ADMIN_GROUP,
        # Password sign-in against moto's Cognito: there is no Hosted UI locally.
        "AUTH_MODE": "local",
        **LOCAL_QUEUE_SETTINGS,
        # moto's image serves no ECB feed: Cost Explorer's USD is billed as EUR one to one, a manual rate.
        **COMPOSE_FX_SETTINGS,
        **LOCAL_SELLER_SETTINGS,
        "EINVOICE_BUCKET": resources.EINVOICE_BUCKET,
        "FX_DATE": (today or datetime.now(UTC).date()).isoformat(),
    }
    if stripe_api_base:
        settings["STRIPE_API_BASE"] = stripe_api_base
    if stripe_js_url:
        settings["STRIPE_JS_URL"] = stripe_js_url
    if aws_public_url:
        # The browser cannot resolve the compose network's moto:5000.
        settings["COGNITO_SIGNIN_ENDPOINT"] = aws_public_url
    if mail:
        settings.update(
            {
                "DOCUMENT_MAIL_QUEUE_URL": queues["document-mail"],
                "MAIL_EVENTS_QUEUE_URL": queues["mail-events"],
                "INVOICE_MAIL_FROM": mail["sender"],
                "INVOICE_MAIL_CONFIGURATION_SET": mail["configuration_set"],
                "SES_MAX_SEND_RATE": "14",
            }
        )
    return settings


def emulator_stripe_js_url(public_url: str) -> str:
    """Where the browser loads the emulator's Stripe.js stand-in."""
    return public_url.rstrip("/") + STRIPE_JS_PATH


def write_env_file(path: Path, settings: Mapping[str, str]) -> None:
    """Write ``settings`` as shell assignments (sourced with ``set -a``), replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(settings.items())))
    partial.replace(path)


def wait_until(check: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll ``check`` until it is true; ``StackError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(0.5)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Provision, write the env file, print the admin login; returns the exit code."""
    args = parse_args(argv)
    try:
        secret_key, publishable_key, webhook_secret = stripe_keys(args, os.environ)
        wait_until(lambda: _answers(f"{args.aws_endpoint}/moto-api/data.json"), f"moto at {args.aws_endpoint}")
        session = boto3.session.Session(region_name=args.region)
        tables = create_tables(session.client("dynamodb", endpoint_url=args.aws_endpoint))
        queues = create_queues(session.client("sqs", endpoint_url=args.aws_endpoint))
        create_einvoice_bucket(session.client("s3", endpoint_url=args.aws_endpoint))
        mail = create_mail_delivery(
            session.client("sesv2", endpoint_url=args.aws_endpoint),
            session.client("sns", endpoint_url=args.aws_endpoint),
            session.client("sqs", endpoint_url=args.aws_endpoint),
            queues["mail-events"],
        )
        pool = create_cognito_pool(session.client("cognito-idp", endpoint_url=args.aws_endpoint))
        if webhook_secret is None:
            wait_until(
                lambda: _answers(f"{args.stripe_api_base}/healthz"),
                f"the Stripe emulator at {args.stripe_api_base}",
            )
            webhook_secret = register_webhook_endpoint(secret_key, args.stripe_api_base, args.webhook_url)
        store_stripe_secret(
            session.client("secretsmanager", endpoint_url=args.aws_endpoint),
            secret_key=secret_key,
            publishable_key=publishable_key,
            webhook_secret=webhook_secret,
        )
        today = datetime.now(UTC).date()
        seed_cost_explorer(args.aws_endpoint, session.client("ce", endpoint_url=args.aws_endpoint), today)
        emulated = args.stripe_mode == "emulator"
        write_env_file(
            args.env_file,
            service_settings(
                region=args.region,
                aws_endpoint=args.aws_endpoint,
                tables=tables,
                queues=queues,
                user_pool_id=pool.user_pool_id,
                client_id=pool.client_id,
                stripe_api_base=args.stripe_api_base if emulated else None,
                stripe_js_url=emulator_stripe_js_url(args.stripe_public_url) if emulated else None,
                aws_public_url=args.aws_public_url,
                today=today,
                mail=mail,
            ),
        )
    except StackError as error:
        print(f"provision: {error}", file=sys.stderr, flush=True)
        return 1
    # A local, throw-away login; printing it is how a developer learns it (docker compose logs provision).
    print(
        f"provision: done; admin login {pool.admin.username} / {pool.admin.password}; settings in {args.env_file}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
