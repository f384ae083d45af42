"""The webhook-receiver Flask app factory: the process's composition root.

``POST /billing/webhook`` verifies Stripe's signature and enqueues the event; errors map to status
codes in one place (``_errors``): bad signature or payload 400 (also a body the server cannot read,
such as a malformed chunk), body over 1 MiB 413, wrong method 405, queue or secrets unavailable 503
(Stripe retries), everything else 500.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from gunicorn.http.errors import NoMoreData
from gunicorn.http.errors import ParseException as ServerParseError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from billing_core import logging as billing_logging
from billing_core.bootstrap import WebhookReceiverUseCases, bootstrap_webhook_receiver
from billing_core.errors import InvalidStripeEvent, InvalidWebhookSignature, SecretsUnavailable, StorageUnavailable
from billing_core.settings import Settings
from billing_core.use_cases.receive_webhook import WebhookIntake  # noqa: F401 - the intake the endpoint uses

log = logging.getLogger("webhook_receiver")

WEBHOOK_PATH = "/billing/webhook"
MAX_BODY_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = "5"

health = Blueprint("health", __name__)
webhook = Blueprint("webhook", __name__)


@health.get("/healthz")
def healthz() -> Response:
    """Liveness for the load balancer and the local stack: the process serves requests."""
    return jsonify(status="ok")


@webhook.post(WEBHOOK_PATH)
def receive_stripe_webhook() -> Response:
    """Verify the signature on the raw body, enqueue the event, answer 200 once SQS has it."""
    intake: WebhookIntake = current_app.extensions["webhook_intake"]
    receipt = intake.accept(_bounded_body(), request.headers.get("Stripe-Signature"))
    log.info(
        "stripe webhook accepted" if receipt.enqueued else "stripe webhook of an unused type acknowledged",
        extra={"eventId": receipt.event_id, "eventType": receipt.event_type, "enqueued": receipt.enqueued},
    )
    return jsonify(received=True, enqueued=receipt.enqueued)


def _bounded_body() -> bytes:
    """The raw body; 413 past ``MAX_BODY_BYTES``, also for a chunked body (no Content-Length).

    Werkzeug refuses a declared length over the limit itself, but cuts a chunked body off at the
    limit, which would then fail its signature as a 400: read it here, one byte past the limit.
    """
    if request.content_length is not None:
        return request.get_data(cache=False)
    stream = request.environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY_BYTES:
        chunk = stream.read(min(64 * 1024, MAX_BODY_BYTES + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    return b"".join(chunks)


def _error(status: int, code: str, message: str) -> Response:
    """The error shape of every service of the system: ``{"error": {"code", "message"}}``, fixed texts only."""
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    return response


def _errors(app: Flask) -> None:
    """Every error type of the request path, mapped to its status code (and no detail that helps an attacker)."""

    @app.errorhandler(InvalidWebhookSignature)
    def bad_signature(error: InvalidWebhookSignature) -> Response:
        log.warning("stripe webhook rejected", extra={"reason": str(error)})
        return _error(400, "invalid_signature", "The Stripe-Signature header does not verify this body.")

    @app.errorhandler(InvalidStripeEvent)
    def bad_event(error: InvalidStripeEvent) -> Response:
        log.warning("stripe webhook rejected", extra={"reason": str(error)})
        return _error(400, "invalid_payload", "The body is not a Stripe event.")

    @app.errorhandler(StorageUnavailable)
    @app.errorhandler(SecretsUnavailable)
    def unavailable(error: Exception) -> Response:
        # Not acknowledged: Stripe retries, and the event reaches the queue once it is back.
        log.error("stripe webhook not accepted; dependency unavailable", extra={"reason": str(error)})
        response = _error(503, "unavailable", "The service is temporarily unavailable; try again shortly.")
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @app.errorhandler(ServerParseError)
    @app.errorhandler(NoMoreData)
    def unreadable_body(error: Exception) -> Response:
        # gunicorn's parser failed while the body was read (a malformed chunk, a body cut short).
        return _error(400, "bad_request", "The request body is malformed.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        name = (error.name or "error").lower()
        response = _error(error.code or 500, name.replace(" ", "_"), f"{error.name or 'Error'}.")
        allowed = error.get_response().headers.get("Allow") if error.code == 405 else None
        if allowed:
            response.headers["Allow"] = allowed  # what the route takes: POST on the webhook, GET on /healthz
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("stripe webhook failed unexpectedly")
        return _error(500, "internal_error", "Something went wrong on our side.")


def create_app(settings: Settings | None = None, use_cases: WebhookReceiverUseCases | None = None) -> Flask:
    """Build the app from ``settings`` (default: the environment) and its ``use_cases`` (default: bootstrap)."""
    if settings is None:
        settings = Settings.from_env()
        billing_logging.configure(settings.log_level)
    if use_cases is None:
        use_cases = bootstrap_webhook_receiver(settings)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    # Werkzeug refuses a longer body with 413 before the view reads it (also for chunked bodies).
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["webhook_intake"] = use_cases.webhook_intake
    app.register_blueprint(health)
    app.register_blueprint(webhook)
    _errors(app)
    return app
