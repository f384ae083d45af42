"""Helpers for the billing-api tests: RSA keys, a JWKS, and Cognito-shaped tokens made to order.

``TokenFactory`` signs tokens the way Cognito does (RS256, ``kid`` header, Cognito's claims);
every claim and header can be overridden or removed to build the attack matrix.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

REGION = "eu-central-1"
POOL_ID = f"{REGION}_TestPool1"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}"
CLIENT_ID = "test-client-id"
ADMIN_GROUP = "admin"
REMOVE = object()  # pass as a claim value to leave the claim out

if TYPE_CHECKING:
    from billing_core.domain.records import Invoice


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key (what Cognito signs with)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The public half of ``key`` as a JWKS entry, as Cognito publishes it."""
    entry = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**entry, "kid": kid, "alg": "RS256", "use": "sig"}


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The public key as PEM bytes (what an HS256-confusion attacker signs with)."""
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def unsigned_token(claims: Mapping[str, Any], header: Mapping[str, Any] | None = None) -> str:
    """A token with ``alg: none`` and an empty signature."""

    def part(value: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part(header or {'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def hmac_token(claims: Mapping[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 token keyed with ``secret`` (PyJWT refuses to make one with a public key; attackers do not)."""

    def part(value: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{part(claims)}"
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


@dataclass
class TokenFactory:
    """Signs Cognito-shaped tokens with ``key`` under ``kid``; ``now`` is the clock the claims use."""

    key: rsa.RSAPrivateKey
    kid: str = "test-key-1"
    issuer: str = ISSUER
    client_id: str = CLIENT_ID
    now: float = field(default_factory=time.time)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document that verifies this factory's tokens."""
        return {"keys": [public_jwk(self.key, self.kid)]}

    def claims(self, token_use: str = "access", *, sub: str | None = None, groups=(ADMIN_GROUP,), **overrides) -> dict:
        """Cognito's claims for an access or ID token; ``REMOVE`` as a value drops that claim."""
        now = int(self.now)
        claims: dict[str, Any] = {
            "sub": sub or str(uuid.uuid4()),
            "iss": self.issuer,
            "token_use": token_use,
            "auth_time": now,
            "iat": now,
            "exp": now + 3600,
            "jti": str(uuid.uuid4()),
        }
        if token_use == "access":
            claims.update(client_id=self.client_id, username="admin", scope="aws.cognito.signin.user.admin")
        else:
            claims.update(aud=self.client_id, **{"cognito:username": "admin"}, email="admin@example.com")
        if groups is not None:
            claims["cognito:groups"] = list(groups)
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not REMOVE}

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        key: Any = None,
        kid: str | None = None,
        algorithm: str = "RS256",
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign ``claims`` (by default with this factory's key and kid)."""
        return jwt.encode(
            dict(claims),
            key if key is not None else self.key,
            algorithm=algorithm,
            headers={"kid": kid or self.kid, **(headers or {})},
        )

    def token(self, token_use: str = "access", **claim_overrides) -> str:
        """A valid token of an admin unless the overrides say otherwise."""
        return self.sign(self.claims(token_use, **claim_overrides))


# --- the local stack's Cognito (moto) ---------------------------------------------------------------


def sign_in(stack: Any, username: str, password: str, *, client_id: str | None = None) -> dict[str, str]:
    """Cognito's ``AuthenticationResult`` (AccessToken, IdToken, ...) for a user of the stack's pool."""
    cognito = stack.aws_client("cognito-idp")
    result = cognito.initiate_auth(
        ClientId=client_id or stack.info["cognito"]["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    return result["AuthenticationResult"]


def moto_signing_key() -> Any:
    """The private key moto signs every pool's tokens with (shipped inside moto; real Cognito's is secret).

    With it a test can make tokens that carry a valid signature but wrong claims (expired, another
    client, not yet valid), which only the claim checks can reject.
    """
    import gzip
    from importlib import resources

    raw = resources.files("moto.cognitoidp").joinpath("resources/jwks-private.json.gz").read_bytes()
    return RSAAlgorithm.from_jwk(json.loads(gzip.decompress(raw)))


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def invoice_item(account_id: str, period: str, **fields: Any) -> Invoice:
    """A paid invoice as the billing run stores it (the seed's 37.74 EUR example unless overridden)."""
    from billing_core.domain.costs import Period
    from billing_core.domain.lifecycle import InvoiceStatus
    from tests.support.records import an_invoice

    return an_invoice(
        account_id=account_id,
        period=Period.parse(period),
        stripe_invoice_id=f"in_{period}_{account_id}",
        status=InvoiceStatus.PAID,
        created_at=1_730_419_200_000,
        paid_at=1_730_422_800_000,
        number=f"INV-{period}",
        hosted_invoice_url=f"https://invoice.stripe.test/{period}",
        invoice_pdf=f"https://invoice.stripe.test/{period}/pdf",
        **fields,
    )


def periods(count: int, last: str = "2026-04") -> list[str]:
    """``count`` consecutive periods ending with ``last`` (oldest first)."""
    from billing_core.domain.costs import Period

    end = Period.parse(last)
    return [end.shifted(-offset).label for offset in reversed(range(count))]
