"""The billing-api Flask app factory: the process's composition root."""
from __future__ import annotations

from flask import Blueprint, Flask, Response, jsonify

from billing_core import logging as billing_logging
from billing_core.bootstrap import ApiServices, bootstrap_api
from billing_core.settings import Settings

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> Response:
    """Liveness for the load balancer and the local stack: the process serves requests."""
    return jsonify(status="ok")


def create_app(settings: Settings | None = None, services: ApiServices | None = None) -> Flask:
    """Build the app from ``settings`` (default: the environment) and wired ``services`` (default: bootstrap)."""
    if settings is None:
        settings = Settings.from_env()
        billing_logging.configure(settings.log_level)
    if services is None:
        services = bootstrap_api(settings)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.extensions["billing"] = services
    app.register_blueprint(health)
    return app
