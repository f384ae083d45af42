"""What the stack's children run with: local fake AWS credentials, no inherited AWS settings, the services' settings.

``compose_provision`` takes the local settings (queue polls, FX rate, Stripe.js path) from here too.
"""

from __future__ import annotations

import os
from typing import Any

import boto3

from local_stack.processes import HOST
from local_stack.provision import ADMIN_GROUP, SECRET_ID
from local_stack.worker_settings import LOCAL_AWS_CREDENTIALS, worker_environment

STRIPE_JS_PATH = "/v3/"  # the Stripe emulator serves its Stripe.js stand-in here
# Local fake credentials; moto accepts any, and they keep boto3 from looking for real ones.
AWS_TEST_CREDENTIALS = LOCAL_AWS_CREDENTIALS
# Variables that could point a child at a real AWS account or another endpoint.
_INHERITED_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CA_BUNDLE",
)
# Short long polls, so the worker stops within seconds (Ctrl-C, tests); production polls 20 s. A failed
# message is retried after 5 s doubling up to a minute (production: 15 s up to two hours), so a local
# outage is over in minutes.
LOCAL_QUEUE_SETTINGS = {"QUEUE_WAIT_SECONDS": "2", "RETRY_BASE_SECONDS": "5", "RETRY_MAX_SECONDS": "60"}
# Resetting the emulator gives its webhook endpoint a new signing secret (Stack.reset_stripe): the
# services read the secret every 2 s here so deliveries right after a reset verify within seconds;
# production reads it every 10 s (a real rotation keeps the old secret valid meanwhile).
LOCAL_SECRETS_SETTINGS = {"SECRETS_REFRESH_SECONDS": "2"}


def aws_session(region: str) -> boto3.session.Session:
    """A boto3 session with the local fake credentials (never the developer's real ones)."""
    return boto3.session.Session(
        aws_access_key_id=AWS_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )


def child_environment(region: str, aws_endpoint: str) -> dict[str, str]:
    """The environment of every child: the caller's, without its AWS settings, pointed at moto."""
    env = {key: value for key, value in os.environ.items() if key not in _INHERITED_AWS_VARIABLES}
    env.update(AWS_TEST_CREDENTIALS)
    env.update(
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        AWS_ENDPOINT_URL=aws_endpoint,
        PYTHONUNBUFFERED="1",
        # Local traffic must never go through a proxy a developer has configured.
        NO_PROXY=",".join(filter(None, [env.get("NO_PROXY"), HOST, "localhost"])),
    )
    return env


def service_environment(info: dict[str, Any]) -> dict[str, str]:
    """The environment variables ``billing_core.settings.Settings`` reads, for the stack's resources."""
    environment = worker_environment(info)
    # The services get the region and endpoint from the child environment (AWS_DEFAULT_REGION too).
    for variable in ("AWS_REGION", "AWS_ENDPOINT_URL"):
        environment.pop(variable)
    return {
        **environment,
        "STRIPE_SECRET_ID": SECRET_ID,
        "COGNITO_USER_POOL_ID": info["cognito"]["user_pool_id"],
        "COGNITO_CLIENT_ID": info["cognito"]["client_id"],
        "COGNITO_JWKS_URL": info["cognito"]["jwks_url"],
        "COGNITO_ISSUER": info["cognito"]["issuer"],
        "ADMIN_GROUP": ADMIN_GROUP,
        # The admin page: password sign-in against moto's Cognito, Stripe.js from the emulator's stand-in.
        "AUTH_MODE": "local",
        "STRIPE_JS_URL": f"{info['stripe_api_base']}{STRIPE_JS_PATH}",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        **LOCAL_QUEUE_SETTINGS,
        **LOCAL_SECRETS_SETTINGS,
    }
