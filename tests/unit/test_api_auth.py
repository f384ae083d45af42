"""Token verification: exactly Cognito access tokens of this pool and client, from admins, get in."""

from __future__ import annotations

import jwt
import pytest

from billing_api.auth import InvalidToken, JwksCache, JwksUnavailable, NotAnAdmin, TokenVerifier, bearer_token
from tests.support.api import (
    ADMIN_GROUP,
    CLIENT_ID,
    ISSUER,
    REGION,
    REMOVE,
    TokenFactory,
    hmac_token,
    new_rsa_key,
    public_pem,
    unsigned_token,
)

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def signing_key():
    return new_rsa_key()


@pytest.fixture(scope="module")
def attacker_key():
    return new_rsa_key()


@pytest.fixture
def tokens(signing_key):
    return TokenFactory(signing_key, now=NOW)


class Clock:
    """A settable clock for the JWKS refetch interval."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Jwks:
    """A JWKS endpoint that counts its fetches and can be changed (key rotation) or broken."""

    def __init__(self, document) -> None:
        self.document = document
        self.fetches = 0
        self.broken = False

    def __call__(self):
        self.fetches += 1
        if self.broken:
            raise JwksUnavailable("JWKS fetch failed")
        return self.document


def verifier_for(jwks_source, *, token_use="access", clock=None, now=NOW) -> TokenVerifier:
    cache = JwksCache(jwks_source, clock=clock or Clock())
    return TokenVerifier(
        cache, issuer=ISSUER, client_id=CLIENT_ID, admin_group=ADMIN_GROUP, token_use=token_use, clock=lambda: now
    )


@pytest.fixture
def verifier(tokens):
    return verifier_for(Jwks(tokens.jwks()))


def test_an_admins_access_token_maps_to_the_account_of_its_sub(tokens, verifier):
    identity = verifier.verify(tokens.token(sub="user-123"))

    assert identity.account_id == "user-123"
    assert identity.sub == "user-123"
    assert ADMIN_GROUP in identity.groups


def test_the_account_can_come_from_another_claim(tokens):
    verifier = TokenVerifier(
        JwksCache(Jwks(tokens.jwks())),
        issuer=ISSUER,
        client_id=CLIENT_ID,
        admin_group=ADMIN_GROUP,
        account_claim="custom:accountId",
        clock=lambda: NOW,
    )

    identity = verifier.verify(tokens.token(sub="user-1", **{"custom:accountId": "acct-9"}))

    assert (identity.sub, identity.account_id) == ("user-1", "acct-9")


def test_an_id_token_is_accepted_by_its_audience_when_id_tokens_are_configured(tokens):
    verifier = verifier_for(Jwks(tokens.jwks()), token_use="id")

    identity = verifier.verify(tokens.token("id", sub="user-7"))

    assert identity.account_id == "user-7"
    assert identity.email == "admin@example.com"


# --- the attack matrix: each is a 401 (InvalidToken), only the non-admin is a 403 (NotAnAdmin) ----


def _cases(tokens: TokenFactory, attacker_key):
    claims = tokens.claims()
    yield "no token", None
    yield "empty token", ""
    yield "garbage", "not-a-jwt"
    yield "three garbage parts", "abc.def.ghi"
    yield "alg none", unsigned_token(claims, {"alg": "none", "kid": tokens.kid})
    yield "alg none with a signature", unsigned_token(claims, {"alg": "none", "kid": tokens.kid}) + "sig"
    yield "HS256 signed with the public key", hmac_token(claims, public_pem(tokens.key), tokens.kid)
    yield "RS512 with the right key", tokens.sign(claims, algorithm="RS512")
    yield "signed by an attacker key under the real kid", tokens.sign(claims, key=attacker_key)
    yield "unknown kid", tokens.sign(claims, key=attacker_key, kid="attacker-kid")
    yield "no kid", jwt.encode(claims, tokens.key, algorithm="RS256")
    yield "expired", tokens.token(exp=int(NOW) - 120, iat=int(NOW) - 3720)
    yield "not yet valid", tokens.token(nbf=int(NOW) + 600)
    yield "issued in the future", tokens.token(iat=int(NOW) + 600, exp=int(NOW) + 4200)
    yield "wrong issuer", tokens.token(iss="https://evil.example.com/pool")
    yield "another pool", tokens.token(iss=f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_OtherPool")
    yield "wrong client", tokens.token(client_id="another-client")
    yield "id token where access is expected", tokens.token("id")
    yield "no token_use", tokens.token(token_use=REMOVE)
    yield "no expiry", tokens.token(exp=REMOVE)
    yield "empty subject", tokens.sign({**claims, "sub": ""})
    yield "no subject", tokens.sign({k: v for k, v in claims.items() if k != "sub"})
    yield "tampered payload", _tamper(tokens.token(), sub="someone-else")
    yield "oversized", "a" * 10_000


def _tamper(token: str, **changes) -> str:
    import base64
    import json

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def test_every_token_in_the_attack_matrix_is_rejected_as_unauthenticated(tokens, attacker_key, verifier):
    accepted = []
    for name, token in _cases(tokens, attacker_key):
        try:
            verifier.verify(token)
            accepted.append(name)
        except InvalidToken:
            pass
    assert accepted == []


@pytest.mark.parametrize("token_use", ["access", "id"])
def test_the_other_kind_of_token_is_rejected(tokens, token_use):
    verifier = verifier_for(Jwks(tokens.jwks()), token_use=token_use)
    other = "id" if token_use == "access" else "access"

    verifier.verify(tokens.token(token_use))
    with pytest.raises(InvalidToken):
        verifier.verify(tokens.token(other))


def test_an_id_token_for_another_audience_is_rejected(tokens):
    verifier = verifier_for(Jwks(tokens.jwks()), token_use="id")

    with pytest.raises(InvalidToken):
        verifier.verify(tokens.token("id", aud="another-client"))


@pytest.mark.parametrize("groups", [None, (), ("members",), ("Admin",), ("admins",)])
def test_a_valid_token_outside_the_admin_group_is_forbidden(tokens, verifier, groups):
    with pytest.raises(NotAnAdmin):
        verifier.verify(tokens.token(groups=groups))


def test_a_groups_claim_that_is_a_string_is_not_a_group_list(tokens, verifier):
    with pytest.raises(NotAnAdmin):
        verifier.verify(tokens.sign({**tokens.claims(), "cognito:groups": "admin"}))


def test_expiry_and_not_before_allow_a_small_clock_skew(tokens, verifier):
    verifier.verify(tokens.token(exp=int(NOW) - 10))
    verifier.verify(tokens.token(nbf=int(NOW) + 10))
    with pytest.raises(InvalidToken):
        verifier.verify(tokens.token(exp=int(NOW) - 31))


# --- the JWKS cache -------------------------------------------------------------------------------


def test_keys_are_fetched_once_and_then_served_from_the_cache(tokens):
    source = Jwks(tokens.jwks())
    verifier = verifier_for(source)

    for _ in range(5):
        verifier.verify(tokens.token())

    assert source.fetches == 1


def test_an_unknown_kid_refetches_at_most_once_a_minute(tokens, attacker_key):
    source, clock = Jwks(tokens.jwks()), Clock()
    verifier = verifier_for(source, clock=clock)
    verifier.verify(tokens.token())
    forged = tokens.sign(tokens.claims(), key=attacker_key, kid="attacker-kid")

    for _ in range(50):
        with pytest.raises(InvalidToken):
            verifier.verify(forged)
    clock.now += 59
    with pytest.raises(InvalidToken):
        verifier.verify(forged)
    fetches_within_the_minute = source.fetches
    clock.now += 1
    with pytest.raises(InvalidToken):
        verifier.verify(forged)

    assert fetches_within_the_minute == 1  # the first load was less than a minute ago
    assert source.fetches == 2


def test_a_rotated_signing_key_is_picked_up_through_the_unknown_kid_refetch(tokens, attacker_key):
    source, clock = Jwks(tokens.jwks()), Clock()
    verifier = verifier_for(source, clock=clock)
    verifier.verify(tokens.token())
    rotated = TokenFactory(attacker_key, kid="test-key-2", now=NOW)
    source.document = {"keys": tokens.jwks()["keys"] + rotated.jwks()["keys"]}
    clock.now += 61

    assert verifier.verify(rotated.token(sub="user-2")).account_id == "user-2"


def test_jwks_keys_for_other_algorithms_or_uses_are_ignored(tokens):
    key = tokens.jwks()["keys"][0]
    source = Jwks({"keys": [{**key, "alg": "RS512"}, {**key, "kid": "enc", "use": "enc"}]})
    verifier = verifier_for(source)

    with pytest.raises(InvalidToken):
        verifier.verify(tokens.token())


def test_an_unreachable_jwks_is_reported_as_such_not_as_a_bad_token(tokens):
    source = Jwks(tokens.jwks())
    source.broken = True

    with pytest.raises(JwksUnavailable):
        verifier_for(source).verify(tokens.token())


def test_a_failed_first_fetch_is_retried_after_a_few_seconds_not_a_minute(tokens):
    source, clock = Jwks(tokens.jwks()), Clock()
    verifier = verifier_for(source, clock=clock)
    source.broken = True
    with pytest.raises(JwksUnavailable):
        verifier.verify(tokens.token())
    source.broken = False
    with pytest.raises(InvalidToken):
        verifier.verify(tokens.token())  # within the retry pause: no fetch, no key
    clock.now += 5

    assert verifier.verify(tokens.token(sub="u")).account_id == "u"


@pytest.mark.parametrize(
    "header, expected",
    [(None, None), ("", None), ("Bearer", None), ("Basic abc", None), ("Bearer abc", "abc"), ("bearer  abc ", "abc")],
)
def test_only_a_bearer_authorization_header_carries_a_token(header, expected):
    assert bearer_token(header) == expected
