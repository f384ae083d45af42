"""Cognito JWT verification: who is calling, and may they use the billing API at all.

Every check a token must pass, in order (the first failure decides):

    header   alg is exactly RS256 (never "none", never an HMAC algorithm), kid is a string
    key      the pool's JWKS has that kid (cached; an unknown kid refetches, at most once a minute)
    claims   signature, iss, exp and nbf/iat (with a small leeway), token_use as configured,
             client_id (access tokens) or aud (ID tokens) equal to the app client
    group    cognito:groups contains the admin group               -> otherwise Forbidden (403)

Anything before the group check failing is ``InvalidToken`` (401). The error messages say which
kind of check failed for the logs; the HTTP layer never passes them on to the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from jwt.exceptions import InvalidTokenError, PyJWKError

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
TOKEN_USES = ("access", "id")
DEFAULT_LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 8192
REFETCH_INTERVAL_SECONDS = 60.0
# Without any key every request fails; retry a failed first fetch sooner than the refetch interval.
RETRY_WITHOUT_KEYS_SECONDS = 5.0


class AuthError(Exception):
    """Base of the authentication and authorization failures."""


class InvalidToken(AuthError):
    """No token, or a token that fails any check before the group check (HTTP 401)."""


class NotAnAdmin(AuthError):
    """A valid token whose user is not in the admin group (HTTP 403)."""


class JwksUnavailable(AuthError):
    """The pool's JWKS could not be fetched or read, so no token can be checked (HTTP 503)."""


@dataclass(frozen=True)
class Identity:
    """The verified caller: the Cognito user and the billing account it maps to."""

    sub: str
    username: str | None
    account_id: str  # the ``userId`` key of the ``billing`` and ``payment-methods`` tables
    email: str | None
    groups: tuple[str, ...]


def fetch_jwks_over_http(url: str, *, timeout_seconds: float = 5.0) -> Callable[[], Mapping[str, Any]]:
    """A JWKS fetcher reading ``url`` with ``requests`` (the production fetcher)."""

    def fetch() -> Mapping[str, Any]:
        try:
            response = requests.get(url, timeout=timeout_seconds)
            response.raise_for_status()
            keys: Mapping[str, Any] = response.json()
            return keys
        except (requests.RequestException, ValueError) as error:
            raise JwksUnavailable(f"JWKS fetch failed: {type(error).__name__}") from None

    return fetch


class JwksCache:
    """The pool's signing keys by ``kid``, fetched lazily and refetched on an unknown ``kid``.

    An attacker can send any ``kid``; without the interval every such request would make us fetch
    the JWKS. So at most one fetch per ``refetch_interval`` seconds, whatever the traffic.
    """

    def __init__(
        self,
        fetch: Callable[[], Mapping[str, Any]],
        *,
        clock: Callable[[], float] = time.monotonic,
        refetch_interval: float = REFETCH_INTERVAL_SECONDS,
        retry_without_keys: float = RETRY_WITHOUT_KEYS_SECONDS,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._refetch_interval = refetch_interval
        self._retry_without_keys = retry_without_keys
        self._keys: dict[str, jwt.PyJWK] = {}
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The key with ``kid``, or ``None`` if the JWKS has none (even after an allowed refetch)."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is None and self._may_fetch():
                self._refresh()
                key = self._keys.get(kid)
        return key

    def _may_fetch(self) -> bool:
        if self._last_attempt is None:
            return True
        wait = self._refetch_interval if self._keys else self._retry_without_keys
        return self._clock() - self._last_attempt >= wait

    def _refresh(self) -> None:
        self._last_attempt = self._clock()
        self.fetches += 1
        document = self._fetch()
        keys: dict[str, jwt.PyJWK] = {}
        entries = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(entries, list):
            raise JwksUnavailable("JWKS document has no key list")
        for entry in entries:
            if not isinstance(entry, Mapping) or entry.get("kty") != "RSA" or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(dict(entry), algorithm=ALGORITHM)
            except PyJWKError:
                log.warning("skipping unreadable JWKS key", extra={"kid": entry["kid"]})
        self._keys = keys
        log.info("JWKS loaded", extra={"keyCount": len(keys)})


class TokenVerifier:
    """Checks a Cognito token for this pool, app client and admin group; returns the ``Identity``."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        client_id: str,
        admin_group: str,
        operator_group: str = "operator",
        token_use: str = "access",
        account_claim: str = "sub",
        leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if token_use not in TOKEN_USES:
            raise ValueError(f"token_use must be one of {TOKEN_USES}, got {token_use!r}")
        self._jwks = jwks
        self._issuer = issuer
        self._client_id = client_id
        self._admin_group = admin_group
        self._operator_group = operator_group
        self._token_use = token_use
        self._account_claim = account_claim
        self._leeway = leeway_seconds
        self._clock = clock

    def verify(self, token: str | None) -> Identity:
        """The caller's identity; ``InvalidToken`` (401) or ``NotAnAdmin`` (403) otherwise."""
        claims = self.verified_claims(token)
        groups = claims.get("cognito:groups", [])
        if not isinstance(groups, list) or self._admin_group not in groups:
            raise NotAnAdmin("user is not in the admin group")
        account_id = claims.get(self._account_claim)
        if not isinstance(account_id, str) or not account_id.strip():
            raise NotAnAdmin(f"token has no {self._account_claim} claim to map to an account")
        username = claims.get("username") if self._token_use == "access" else claims.get("cognito:username")
        email = claims.get("email")
        return Identity(
            sub=claims["sub"],
            username=username if isinstance(username, str) else None,
            account_id=account_id,
            email=email if isinstance(email, str) else None,
            groups=tuple(g for g in groups if isinstance(g, str)),
        )

    def verify_operator(self, token: str | None) -> Identity:
        """The operator's identity: a valid token of a member of the operator group (else 401 / 403)."""
        claims = self.verified_claims(token)
        groups = claims.get("cognito:groups", [])
        if not isinstance(groups, list) or self._operator_group not in groups:
            raise NotAnAdmin("user is not in the operator group")
        username = claims.get("username") if self._token_use == "access" else claims.get("cognito:username")
        email = claims.get("email")
        return Identity(
            sub=claims["sub"],
            username=username if isinstance(username, str) else None,
            account_id=claims["sub"],
            email=email if isinstance(email, str) else None,
            groups=tuple(g for g in groups if isinstance(g, str)),
        )

    def verified_claims(self, token: str | None) -> dict[str, Any]:
        """The claims of a token that passes every check except the group check."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("missing or oversized token")
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError:
            raise InvalidToken("malformed token") from None
        # Checked before any key is looked up: "none" and HS256-with-the-public-key never get further.
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token has no key id")
        key = self._jwks.key_for(kid)
        if key is None:
            raise InvalidToken("unknown key id")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._client_id if self._token_use == "id" else None,
                # Times are checked below against the injected clock (PyJWT would read the system clock).
                options={
                    "require": ["exp", "iat", "iss", "sub", "token_use"],
                    "verify_aud": self._token_use == "id",
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except InvalidTokenError as error:
            raise InvalidToken(f"token rejected: {type(error).__name__}") from None
        self._check_times(claims)
        if claims.get("token_use") != self._token_use:
            raise InvalidToken("wrong token_use")
        if self._token_use == "access" and claims.get("client_id") != self._client_id:
            raise InvalidToken("token issued to another app client")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidToken("token has no subject")
        return claims

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
        for value in (exp, iat, nbf):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise InvalidToken("time claim is not a number")
        if exp is None or iat is None:
            raise InvalidToken("token has no exp or iat claim")
        if exp <= now - self._leeway:
            raise InvalidToken("token expired")
        if nbf is not None and nbf > now + self._leeway:
            raise InvalidToken("token not yet valid")
        if iat > now + self._leeway:
            raise InvalidToken("token issued in the future")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
