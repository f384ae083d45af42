"""The billing-api Flask app factory: the process's composition root."""

from __future__ import annotations

import logging

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from billing_api import credit_note_routes, mail_routes, page, web
from billing_api.auth import JwksCache, TokenVerifier, fetch_jwks_over_http
from billing_api.operator_routes import operator_api
from billing_api.routes import ApiComponents, api
from billing_core import logging as billing_logging
from billing_core.bootstrap import API, REQUIRED_SETTINGS, ApiUseCases, bootstrap_api
from billing_core.settings import Settings
from billing_core.use_cases.cost_preview import CostPreviewService

log = logging.getLogger(__name__)

# The credit-note and mail routes live in modules of their own on the blueprints.
OPERATOR_ROUTE_MODULES = (credit_note_routes, mail_routes)


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
    use_cases: ApiUseCases | None = None,
    *,
    verifier: TokenVerifier | None = None,
    preview: CostPreviewService | None = None,
) -> Flask:
    """Build the app from ``settings`` (default: the environment) and its ``use_cases`` (default: bootstrap).

    ``verifier`` and ``preview`` replace the ones built from the settings (tests).
    """
    if settings is None:
        settings = Settings.from_env()
        billing_logging.configure(settings.log_level)
    if use_cases is None:
        use_cases = bootstrap_api(settings)
    verifier = verifier or token_verifier(settings)
    if preview is None:
        preview = use_cases.cost_preview
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # answers keep the field order the representation chose
    app.extensions["billing_api"] = ApiComponents(use_cases=use_cases, verifier=verifier, cost_preview=preview)
    web.install(app, verifier, settings.cors_allowed_origins, use_cases.memberships)
    app.register_blueprint(api)
    app.register_blueprint(operator_api)  # with the routes of credit_note_routes on it
    app.register_blueprint(page.admin_page)
    return app
