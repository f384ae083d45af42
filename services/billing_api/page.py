"""The admin Billing page: one HTML document plus its CSS and JS modules, served by billing-api.

The page is public (it holds no data); everything it shows comes from the JSON API with the
admin's Cognito token. Its settings (sign-in mode, Cognito client, where Stripe.js comes from, the
default language) are written into the document as JSON, and its Content-Security-Policy allows
exactly the origins those settings name: this origin, Stripe.js and the Stripe API, Cognito.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from billing_api.web import public
from billing_core.settings import Settings

log = logging.getLogger(__name__)

PAGE_PATH = "/admin/billing"
REAL_STRIPE_API = "https://api.stripe.com"
# Stripe.js runs 3-D Secure and other challenges in frames from these origins.
STRIPE_FRAME_ORIGINS = ("https://js.stripe.com", "https://hooks.stripe.com")

admin_page = Blueprint(
    "admin_page", __name__, template_folder="templates", static_folder="static", static_url_path="/admin/static"
)


@admin_page.get(PAGE_PATH)
@public
def billing_page() -> Response:
    """The Billing tab: sign-in, payment method, current costs, invoice history, AWS services breakdown."""
    return _page("billing_page.html")


def _page(template: str) -> Response:
    settings: Settings = current_app.config["SETTINGS"]
    html = render_template(template, config=page_config(settings), language=settings.page_language)
    response = make_response(html)
    response.headers["Content-Security-Policy"] = content_security_policy(settings)
    return response


OPERATOR_PAGE_PATH = "/operator"


@admin_page.get(OPERATOR_PAGE_PATH)
@public
def operator_page() -> Response:
    """The operator's page: accounts, the last run, failed payments, invoices across accounts, the audit log."""
    return _page("operator_page.html")


@admin_page.get("/admin/")
@public
def admin_home() -> WerkzeugResponse:
    """The admin area has one page so far."""
    return redirect(url_for("admin_page.billing_page"))


def cognito_idp_endpoint(settings: Settings) -> str:
    """Where the browser's password sign-in calls ``InitiateAuth``.

    As configured, else the local AWS endpoint, else the regional Cognito endpoint.
    """
    if settings.cognito_signin_endpoint:
        return settings.cognito_signin_endpoint.rstrip("/") + "/"
    if settings.aws_endpoint_url:
        return settings.aws_endpoint_url.rstrip("/") + "/"
    return f"https://cognito-idp.{settings.aws_region}.amazonaws.com/"


def page_config(settings: Settings) -> dict[str, Any]:
    """What the page's script needs to know; public values only (the page is served without sign-in)."""
    if settings.auth_mode == "hosted-ui" and not settings.cognito_domain:
        log.warning("AUTH_MODE=hosted-ui without COGNITO_DOMAIN: the admin page cannot sign anyone in")
    return {
        "language": settings.page_language,
        "authMode": settings.auth_mode,
        "cognito": {
            "clientId": settings.cognito_client_id,
            "region": settings.aws_region,
            "idpEndpoint": cognito_idp_endpoint(settings),
            "domain": settings.cognito_domain,
        },
        "stripeJsUrl": settings.stripe_js_url,
        "apiBase": "",
    }


def content_security_policy(settings: Settings) -> str:
    """Scripts, frames and connections only to this origin, Stripe and Cognito; never framed."""
    stripe_js = _origin(settings.stripe_js_url)
    stripe_api = _origin(settings.stripe_api_base) if settings.stripe_api_base else REAL_STRIPE_API
    cognito = [_origin(cognito_idp_endpoint(settings))]
    if settings.cognito_domain:
        cognito.append(_origin(settings.cognito_domain))
    frames = _unique([stripe_js, *(STRIPE_FRAME_ORIGINS if stripe_js == STRIPE_FRAME_ORIGINS[0] else ())])
    directives = {
        "default-src": ["'self'"],
        "script-src": _unique(["'self'", stripe_js]),
        # Stripe.js (and its stand-in) add their own style rules at run time.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": _unique(["'self'", stripe_api, stripe_js, *cognito]),
        "frame-src": frames,
        "form-action": _unique(["'self'", *cognito[1:]]),
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))
