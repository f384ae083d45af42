"""What every request goes through: request id, body limit, authentication, CORS, security headers,
and the one place that maps error types to HTTP status codes.

Order per request:

    request id bound to the log lines -> body size (413) -> token unless the view is public (401/403)
    -> view -> error handler (one JSON shape) -> CORS and security headers on every response
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, jsonify, request
from gunicorn.http.errors import NoMoreData
from gunicorn.http.errors import ParseException as ServerParseError
from werkzeug.exceptions import HTTPException

from billing_api import representation
from billing_api.auth import AuthError, Identity, InvalidToken, JwksUnavailable, NotAnAdmin, TokenVerifier, bearer_token
from billing_core import logging as billing_logging
from billing_core.errors import (
    BillingError,
    InvalidCursor,
    NotFound,
    PaymentGatewayError,
    SecretsUnavailable,
    StorageUnavailable,
    StripeUnavailable,
)
from billing_core.ports import Memberships
from billing_core.use_cases.request_budget import RequestLimited

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
RETRY_AFTER_SECONDS = "5"  # a dependency is unavailable: try again shortly
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
View = TypeVar("View", bound=Callable[..., Any])


class InvalidParameter(BillingError):
    """A query parameter or path value the API cannot accept (HTTP 400)."""


# Error type -> (status, code, message). The first matching type wins, so subclasses come first.
# Messages are fixed texts: nothing from the exception (which may name a key id, a table or a
# Stripe detail) reaches the caller.
ERROR_RESPONSES: tuple[tuple[type[BaseException], int, str, str], ...] = (
    (InvalidToken, 401, "unauthorized", "A valid bearer token is required."),
    (NotAnAdmin, 403, "forbidden", "This account may not use the billing API."),
    (JwksUnavailable, 503, "unavailable", "Sign-in cannot be checked right now; try again shortly."),
    (InvalidCursor, 400, "invalid_cursor", "The cursor is not one this API issued."),
    (InvalidParameter, 400, "invalid_parameter", "A request parameter is invalid."),
    (NotFound, 404, "not_found", "Not found."),
    (StorageUnavailable, 503, "unavailable", "The service is temporarily unavailable; try again shortly."),
    (SecretsUnavailable, 503, "unavailable", "The service is temporarily unavailable; try again shortly."),
    # Stripe unreachable, stalled, 5xx or rate limiting: nothing was done twice (idempotency keys); try again.
    (StripeUnavailable, 503, "unavailable", "The service is temporarily unavailable; try again shortly."),
    (PaymentGatewayError, 502, "payment_provider_error", "The payment provider could not complete the request."),
)
HTTP_ERROR_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "A valid bearer token is required."),
    403: ("forbidden", "This account may not use the billing API."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("payload_too_large", f"The request body exceeds {MAX_BODY_BYTES} bytes."),
    415: ("unsupported_media_type", "This content type is not supported."),
    500: ("internal_error", "Something went wrong on our side."),
}

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# JSON is never rendered, so it may load nothing and be framed by nobody. HTML pages set their own.
JSON_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
CORS_METHODS = "GET, POST, PATCH, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, X-Request-Id"


def public(view: View) -> View:
    """Mark a view as reachable without a token (health, the OpenAPI document, the sign-in page)."""
    view.public = True  # type: ignore[attr-defined]
    return view


def writes_to_stripe(action: str, *, operator: bool = False) -> Callable[[View], View]:
    """Take one request of the caller's Stripe-write budget before the view runs (429 past it): the
    account's budget for a customer's admin, the operator's own for the operator API."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            budget = current_app.extensions["billing_api"].use_cases.stripe_write_budget
            caller = identity()
            if operator:
                budget.for_operator(caller.sub, action)
            else:
                budget.for_account(caller.account_id, action)
            return view(*args, **kwargs)

        return limited  # type: ignore[return-value]

    return decorate


def identity() -> Identity:
    """The verified caller of the current request."""
    caller: Identity = g.identity
    return caller


def request_id() -> str:
    """The current request's id (the caller's ``X-Request-Id`` if well-formed, else a new one)."""
    current: str = g.request_id
    return current


def error_response(status: int, code: str, message: str) -> Response:
    """A response in the API's one error shape."""
    response = jsonify(representation.error(code, message))
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="billing"'
    if status == 503:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def install(
    app: Flask, verifier: TokenVerifier, cors_allowed_origins: tuple[str, ...], memberships: Memberships | None = None
) -> None:
    """Register the request hooks and error handlers on ``app``.

    The account a verified caller acts for is their membership's (recorded when the operator invited
    them), else the one the token's account claim names: decided here, never from the request.
    """
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    allowed_origins = frozenset(cors_allowed_origins)

    @app.before_request
    def _begin() -> Response | None:
        supplied = request.headers.get("X-Request-Id", "")
        g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        g.correlation = billing_logging.correlation(g.request_id)
        g.correlation.__enter__()
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return error_response(413, *HTTP_ERROR_CODES[413])
        if request.method == "OPTIONS" or _is_public(app):
            return None
        token = bearer_token(request.headers.get("Authorization"))
        # An unrouted path under /operator/ is the operator API's: an operator gets its 404, not the
        # admin check's 403.
        unrouted_operator = request.url_rule is None and request.path.startswith("/operator/")
        if request.blueprint == "operator" or unrouted_operator:
            g.identity = verifier.verify_operator(token)  # the operator acts for no account of its own
            return None
        identity = verifier.verify(token)
        member_of = memberships.account_of(identity.sub) if memberships is not None else None
        g.identity = dataclasses.replace(identity, account_id=member_of) if member_of else identity
        return None

    @app.teardown_request
    def _end(_error: BaseException | None) -> None:
        correlation = g.pop("correlation", None)
        if correlation is not None:
            correlation.__exit__(None, None, None)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "application/json":
            response.headers["Content-Security-Policy"] = JSON_CONTENT_SECURITY_POLICY
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if allowed_origins:
            response.vary.add("Origin")
            origin = request.headers.get("Origin")
            if origin in allowed_origins:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Expose-Headers"] = "X-Request-Id"
                if request.method == "OPTIONS":
                    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
                    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
                    response.headers["Access-Control-Max-Age"] = "600"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code, message = HTTP_ERROR_CODES.get(status, ("error", "The request could not be handled."))
        response = error_response(status, code, message)
        if status == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(ServerParseError)
    @app.errorhandler(NoMoreData)
    def _unreadable_body(_error: Exception) -> Response:
        # gunicorn's parser failed while the app read the body (a malformed chunk, a body cut short).
        return error_response(400, *HTTP_ERROR_CODES[400])

    @app.errorhandler(RequestLimited)
    def _limited(error: RequestLimited) -> Response:
        log.info("request refused", extra={"status": 429, "code": "rate_limited", "reason": str(error)})
        response = error_response(429, "rate_limited", "Too many requests of this kind; try again later.")
        response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(AuthError)
    @app.errorhandler(BillingError)
    def _known_error(error: Exception) -> Response:
        for error_type, status, code, message in ERROR_RESPONSES:
            if isinstance(error, error_type):
                level = logging.WARNING if status >= 500 else logging.INFO
                log.log(level, "request refused", extra={"status": status, "code": code, "reason": str(error)})
                return error_response(status, code, message)
        return _unexpected(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.error("unhandled error", exc_info=error)
        return error_response(500, *HTTP_ERROR_CODES[500])


def _is_public(app: Flask) -> bool:
    if request.endpoint is None:
        return False  # unknown path or method: no hints about the API without a token
    if request.endpoint == "static" or request.endpoint.endswith(".static"):
        return True
    view = app.view_functions.get(request.endpoint)
    return bool(getattr(view, "public", False))


def settings() -> Any:
    """The app's ``Settings``."""
    return current_app.config["SETTINGS"]
