"""The billing-api Flask app factory: the process's composition root."""

from __future__ import annotations

import logging

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from billing_api import page, web
from billing_api.auth import JwksCache, TokenVerifier, fetch_jwks_over_http
from billing_api.operator_routes import operator_api
from billing_api.routes import ApiComponents, api
from billing_core import logging as billing_logging
from billing_core.bootstrap import (
    API,
    REQUIRED_SETTINGS,
    ApiServices,
    bootstrap_api,
    cost_preview_for,
    policy_from_settings,
)
from billing_core.settings import Settings
from billing_core.use_cases.cost_preview import CostPreviewService

log = logging.getLogger(__name__)


def token_verifier(settings: Settings, jwks: JwksCache | None = None) -> TokenVerifier:
    """The verifier for the configured pool, app client and admin group."""
    settings.require(*REQUIRED_SETTINGS[API], process=API)
    return TokenVerifier(
        jwks or JwksCache(fetch_jwks_over_http(settings.required("cognito_jwks_url", process=API))),
        issuer=settings.required("cognito_issuer", process=API),
        client_id=settings.required("cognito_client_id", process=API),
        admin_group=settings.admin_group,
        operator_group=settings.operator_group,
        token_use=settings.cognito_token_use,
        account_claim=settings.account_claim,
    )


def create_app(
    settings: Settings | None = None,
    services: ApiServices | None = None,
    *,
    verifier: TokenVerifier | None = None,
    preview: CostPreviewService | None = None,
) -> Flask:
    """Build the app from ``settings`` (default: the environment) and wired ``services`` (default: bootstrap).

    ``verifier`` and ``preview`` replace the ones built from the settings (tests).
    """
    if settings is None:
        settings = Settings.from_env()
        billing_logging.configure(settings.log_level)
    if services is None:
        services = bootstrap_api(settings)
    verifier = verifier or token_verifier(settings)
    if preview is None:
        policy = policy_from_settings(settings)
        if policy.fx is None and policy.currency != "USD" and services.period_rates is None:
            # Cost Explorer answers in USD: without a rate the preview would price USD as EUR.
            log.warning(
                "no exchange rate store and no FX_RATE: the cost preview is off", extra={"currency": policy.currency}
            )
        else:
            preview = cost_preview_for(services, policy)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # answers keep the field order the representation chose
    app.extensions["billing"] = services
    app.extensions["billing_api"] = ApiComponents(services=services, verifier=verifier, cost_preview=preview)
    web.install(app, verifier, settings.cors_allowed_origins, services.memberships)
    app.register_blueprint(api)
    app.register_blueprint(operator_api)
    app.register_blueprint(page.admin_page)
    return app
