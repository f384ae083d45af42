"""The token attack matrix against the running billing-api (gunicorn) with real moto Cognito tokens.

moto signs the tokens of every user pool with one and the same key (kid "dummy"), so a token from
another pool on the same moto carries a signature this API accepts: only the issuer check rejects
it. ``test_another_pools_token_is_rejected_by_the_issuer_check_alone`` proves that check is there.
"""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from local_stack.provision import random_password
from tests.support.api import (
    TokenFactory,
    bearer,
    hmac_token,
    moto_signing_key,
    new_rsa_key,
    sign_in,
    unsigned_token,
)


@pytest.fixture(scope="module")
def api(stack) -> str:
    return stack.info["api_url"]


@pytest.fixture(scope="module")
def admin_tokens(stack) -> dict[str, str]:
    return sign_in(stack, stack.admin.username, stack.admin.password)


@pytest.fixture(scope="module")
def moto_key_tokens(stack) -> TokenFactory:
    """Tokens signed with moto's own key for the stack's pool and client (claims made to order)."""
    return TokenFactory(
        moto_signing_key(),
        kid="dummy",
        issuer=stack.info["cognito"]["issuer"],
        client_id=stack.info["cognito"]["client_id"],
    )


@pytest.fixture(scope="module")
def other_pool_token(stack) -> str:
    """An admin-group access token from a second user pool on the same moto."""
    cognito = stack.aws_client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName="another-pool")["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="another-client", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    cognito.create_group(UserPoolId=pool_id, GroupName="admin")
    password = random_password()
    cognito.admin_create_user(UserPoolId=pool_id, Username="intruder", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="intruder", Password=password, Permanent=True)
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username="intruder", GroupName="admin")
    return sign_in(stack, "intruder", password, client_id=client_id)["AccessToken"]


def get_billing(api: str, headers: dict | None = None) -> requests.Response:
    return requests.get(f"{api}/billing", headers=headers or {}, timeout=10)


def assert_refused(response: requests.Response, status: int) -> None:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}


def test_the_admins_cognito_access_token_gets_their_own_account(api, stack, admin_tokens):
    response = get_billing(api, bearer(admin_tokens["AccessToken"]))

    assert response.status_code == 200
    assert response.json()["accountId"] == stack.admin.sub
    assert response.json()["currentCosts"]["forecastMethod"] == "linear"  # moto has no cost forecast


def test_a_signed_in_user_outside_the_admin_group_is_forbidden(api, stack):
    token = sign_in(stack, stack.non_admin.username, stack.non_admin.password)["AccessToken"]

    assert_refused(get_billing(api, bearer(token)), 403)


def test_an_id_token_is_refused_where_access_tokens_are_expected(api, admin_tokens):
    assert_refused(get_billing(api, bearer(admin_tokens["IdToken"])), 401)


def test_another_pools_token_is_refused(api, other_pool_token):
    assert_refused(get_billing(api, bearer(other_pool_token)), 401)


def test_another_pools_token_is_rejected_by_the_issuer_check_alone(api, stack, other_pool_token, moto_key_tokens):
    claims = jwt.decode(other_pool_token, options={"verify_signature": False})
    # Same signing key, our client id, admin group: the only thing wrong is the issuer.
    claims.update(client_id=stack.info["cognito"]["client_id"], exp=int(time.time()) + 600)

    assert_refused(get_billing(api, bearer(moto_key_tokens.sign(claims))), 401)
    claims["iss"] = stack.info["cognito"]["issuer"]
    assert get_billing(api, bearer(moto_key_tokens.sign(claims))).status_code == 200  # with our issuer it passes


def attack_matrix(stack, admin_tokens, moto_key_tokens):
    """(name, headers, expected status) for every way in that must fail."""
    now = int(time.time())
    real = jwt.decode(admin_tokens["AccessToken"], options={"verify_signature": False})
    moto_jwks = requests.get(stack.info["cognito"]["jwks_url"], timeout=10).json()
    public_key_pem = jwt.PyJWK(moto_jwks["keys"][0]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    attacker = TokenFactory(
        new_rsa_key(), kid="attacker", issuer=moto_key_tokens.issuer, client_id=moto_key_tokens.client_id
    )
    sign = moto_key_tokens.sign
    return [
        ("no token", {}, 401),
        ("garbage", bearer("garbage"), 401),
        ("not bearer", {"Authorization": f"Basic {admin_tokens['AccessToken']}"}, 401),
        ("alg none", bearer(unsigned_token(real, {"alg": "none", "kid": "dummy"})), 401),
        ("HS256 signed with the public key", bearer(hmac_token(real, public_key_pem, "dummy")), 401),
        ("attacker key, unknown kid", bearer(attacker.sign(real)), 401),
        ("attacker key under the real kid", bearer(attacker.sign(real, kid="dummy")), 401),
        ("expired", bearer(sign({**real, "exp": now - 120, "iat": now - 3720})), 401),
        ("not yet valid", bearer(sign({**real, "nbf": now + 600})), 401),
        ("wrong issuer", bearer(sign({**real, "iss": "https://evil.example.com/pool"})), 401),
        ("wrong client", bearer(sign({**real, "client_id": "someone-elses-client"})), 401),
        ("id token where access is expected", bearer(admin_tokens["IdToken"]), 401),
        ("access token without token_use", bearer(sign({k: v for k, v in real.items() if k != "token_use"})), 401),
        ("tampered subject", bearer(_with_payload(admin_tokens["AccessToken"], {**real, "sub": "someone-else"})), 401),
        ("valid, not an admin", bearer(sign({**real, "cognito:groups": ["members"]})), 403),
        ("valid, no groups", bearer(sign({k: v for k, v in real.items() if k != "cognito:groups"})), 403),
    ]


def _with_payload(token: str, claims: dict) -> str:
    import base64
    import json

    header, _, signature = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{payload}.{signature}"


def test_the_attack_matrix_is_refused_with_the_right_status_and_an_opaque_body(
    api, stack, admin_tokens, moto_key_tokens
):
    outcomes = {}
    bodies = set()
    for name, headers, expected in attack_matrix(stack, admin_tokens, moto_key_tokens):
        for path, method in (("/billing", "GET"), ("/billing/setup-intent", "POST")):
            response = requests.request(method, f"{api}{path}", headers=headers, timeout=10)
            outcomes[(name, path)] = (response.status_code, expected)
            assert set(response.json()) == {"error"}
            bodies.add((response.status_code, response.text))

    wrong = {case: got for case, (got, expected) in outcomes.items() if got != expected}
    assert wrong == {}
    # Every 401 says the same thing, every 403 the same thing: nothing tells an attacker which check failed.
    assert len(bodies) == 2
