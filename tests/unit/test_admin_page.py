"""The admin page's route: served without a token, its settings embedded, a CSP naming only what it uses."""

from __future__ import annotations

import json
import re

import pytest

from billing_api import create_app
from billing_api.auth import JwksCache, TokenVerifier
from billing_core.bootstrap import ApiPorts, ApiUseCases
from billing_core.errors import SettingsError
from billing_core.settings import Settings
from tests.support.api import ADMIN_GROUP, CLIENT_ID, ISSUER, POOL_ID
from tests.support.fakes import FakeAccountRepository, FakeInvoiceRepository, FakePaymentGateway, FakeSecretsProvider

LOCAL = {
    "AUTH_MODE": "local",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
    "STRIPE_API_BASE": "http://127.0.0.1:12111",
    "STRIPE_JS_URL": "http://127.0.0.1:12111/v3/",
}
HOSTED = {"COGNITO_DOMAIN": "https://auth.example.com"}


def client_for(environment: dict[str, str]):
    settings = Settings.from_env(
        {"COGNITO_USER_POOL_ID": POOL_ID, "COGNITO_CLIENT_ID": CLIENT_ID, "COGNITO_ISSUER": ISSUER, **environment}
    )
    services = ApiPorts(
        settings=settings,
        invoices=FakeInvoiceRepository([]),
        accounts=FakeAccountRepository(),
        costs=None,
        payments=FakePaymentGateway(),
        secrets=FakeSecretsProvider(publishable_key="pk_test_page"),
        billing_jobs=None,
    )
    verifier = TokenVerifier(
        JwksCache(lambda: {"keys": []}), issuer=ISSUER, client_id=CLIENT_ID, admin_group=ADMIN_GROUP
    )
    return create_app(settings, ApiUseCases(services), verifier=verifier, preview=None).test_client()


def page_config(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="page-config">(.*?)</script>', html, re.S)
    assert match, "the page embeds its settings"
    return json.loads(match.group(1))


def csp(response) -> dict[str, list[str]]:
    directives = [part.split() for part in response.headers["Content-Security-Policy"].split(";")]
    return {parts[0]: parts[1:] for parts in directives if parts}


def test_the_page_is_served_without_a_token_in_german_by_default():
    response = client_for(LOCAL).get("/admin/billing")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert '<html lang="de">' in html
    assert "Zahlungsmethode hinzufügen" in html
    assert "Rechnungshistorie" in html


def test_page_language_setting_makes_english_the_default():
    html = client_for({**LOCAL, "PAGE_LANGUAGE": "en"}).get("/admin/billing").get_data(as_text=True)

    assert '<html lang="en">' in html
    assert page_config(html)["language"] == "en"


def test_local_stack_page_signs_in_against_the_local_cognito_and_loads_the_stand_in():
    config = page_config(client_for(LOCAL).get("/admin/billing").get_data(as_text=True))

    assert config == {
        "language": "de",
        "authMode": "local",
        "cognito": {
            "clientId": CLIENT_ID,
            "region": "eu-central-1",
            "idpEndpoint": "http://127.0.0.1:4566/",
            "domain": None,
        },
        "stripeJsUrl": "http://127.0.0.1:12111/v3/",
        "apiBase": "",
    }


def test_production_page_uses_the_hosted_ui_and_stripe_js_from_stripe():
    config = page_config(client_for(HOSTED).get("/admin/billing").get_data(as_text=True))

    assert config["authMode"] == "hosted-ui"
    assert config["cognito"]["domain"] == "https://auth.example.com"
    assert config["cognito"]["idpEndpoint"] == "https://cognito-idp.eu-central-1.amazonaws.com/"
    assert config["stripeJsUrl"] == "https://js.stripe.com/v3/"


def test_the_page_carries_no_key_or_secret():
    html = client_for(LOCAL).get("/admin/billing").get_data(as_text=True)

    assert "pk_test_page" not in html  # the publishable key comes with each SetupIntent, after sign-in
    assert "sk_" not in html


def test_production_csp_allows_scripts_only_from_here_and_stripe_and_connections_to_stripe_and_cognito():
    policy = csp(client_for(HOSTED).get("/admin/billing"))

    assert policy["script-src"] == ["'self'", "https://js.stripe.com"]
    assert policy["connect-src"] == [
        "'self'",
        "https://api.stripe.com",
        "https://js.stripe.com",
        "https://cognito-idp.eu-central-1.amazonaws.com",
        "https://auth.example.com",
    ]
    assert policy["frame-src"] == ["https://js.stripe.com", "https://hooks.stripe.com"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["default-src"] == ["'self'"]


def test_local_csp_names_the_emulator_and_moto_instead():
    policy = csp(client_for(LOCAL).get("/admin/billing"))

    assert policy["script-src"] == ["'self'", "http://127.0.0.1:12111"]
    assert policy["connect-src"] == ["'self'", "http://127.0.0.1:12111", "http://127.0.0.1:4566"]


def test_a_browser_facing_sign_in_endpoint_replaces_the_services_aws_endpoint():
    environment = {**LOCAL, "AWS_ENDPOINT_URL": "http://moto:5000", "COGNITO_SIGNIN_ENDPOINT": "http://localhost:4566"}
    response = client_for(environment).get("/admin/billing")

    assert page_config(response.get_data(as_text=True))["cognito"]["idpEndpoint"] == "http://localhost:4566/"
    assert "http://localhost:4566" in csp(response)["connect-src"]
    assert "http://moto:5000" not in csp(response)["connect-src"]


@pytest.mark.parametrize("asset", ["billing.js", "auth.js", "api.js", "i18n.js", "billing.css"])
def test_the_page_assets_are_served_without_a_token(asset):
    response = client_for(LOCAL).get(f"/admin/static/{asset}")

    assert response.status_code == 200
    assert response.mimetype in ("text/javascript", "application/javascript", "text/css")


def test_the_json_api_still_demands_a_token():
    assert client_for(LOCAL).get("/billing").status_code == 401


def test_auth_mode_accepts_only_the_two_sign_in_modes():
    with pytest.raises(SettingsError, match="AUTH_MODE"):
        Settings.from_env({"AUTH_MODE": "password"})


def test_stripe_js_url_keeps_its_trailing_slash():
    assert (
        Settings.from_env({"STRIPE_JS_URL": "https://js.stripe.com/v3/"}).stripe_js_url == "https://js.stripe.com/v3/"
    )
