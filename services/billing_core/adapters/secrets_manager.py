"""Stripe secrets from AWS Secrets Manager, cached and refreshed so a rotation needs no restart.

The secret's value is JSON: ``{"secret_key": "sk_...", "publishable_key": "pk_...",
"webhook_secrets": ["whsec_current", "whsec_previous"]}``. Listing the previous webhook secret
lets signatures made just before a rotation still verify. No value ever reaches a log, an error
message or a ``repr``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_core.errors import SecretsUnavailable
from billing_core.ports import SecretsProvider, StripeSecrets

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_secretsmanager import SecretsManagerClient
else:
    SecretsManagerClient = Any

log = logging.getLogger(__name__)

# However often callers ask for a re-read (a flood of forged webhook signatures, a revoked key failing
# every Stripe call), Secrets Manager is read at most once per this many seconds per process.
MIN_READ_INTERVAL_SECONDS = 10.0
# While Secrets Manager cannot be read, the last good secrets are served this long past their refresh;
# after that every use fails (503s, retried): a webhook secret removed during an outage stops then.
MAX_STALE_SECONDS = 300.0

__all__ = ["SecretsManagerSecretsProvider", "StripeSecrets", "parse_stripe_secrets"]


def parse_stripe_secrets(secret_string: str, secret_id: str = "the secret") -> StripeSecrets:
    """Validate and parse the secret's JSON; errors name fields, never values."""
    try:
        data = json.loads(secret_string)
    except (TypeError, ValueError):
        raise SecretsUnavailable(f"{secret_id} is not JSON") from None
    if not isinstance(data, dict):
        raise SecretsUnavailable(f"{secret_id} is not a JSON object")
    for required in ("secret_key", "publishable_key"):
        if not isinstance(data.get(required), str) or not data[required]:
            raise SecretsUnavailable(f"{secret_id} has no {required}")
    webhook = data.get("webhook_secrets", data.get("webhook_secret", []))
    if isinstance(webhook, str):
        webhook = [webhook]
    if not isinstance(webhook, list) or not all(isinstance(s, str) for s in webhook):
        raise SecretsUnavailable(f"{secret_id} webhook_secrets must be a list of strings")
    return StripeSecrets(
        secret_key=data["secret_key"],
        publishable_key=data["publishable_key"],
        webhook_secrets=tuple(s for s in webhook if s),
    )


class SecretsManagerSecretsProvider(SecretsProvider):
    """Reads the Stripe secret from Secrets Manager at most once per ``refresh_seconds``.

    ``refresh()`` re-reads before that, but never sooner than ``MIN_READ_INTERVAL_SECONDS`` (or
    ``refresh_seconds`` if shorter) after the last read: the read rate has a ceiling whoever asks,
    also while reads fail. If a re-read fails, the last good value keeps being served (a Secrets
    Manager blip must not take billing down), but only for ``max_stale_seconds`` past its refresh:
    a secret removed during an outage cannot stay valid for good. Then ``SecretsUnavailable``.
    """

    def __init__(
        self,
        client: SecretsManagerClient,
        secret_id: str,
        *,
        refresh_seconds: float = 300,
        retry_seconds: float = 30,
        max_stale_seconds: float = MAX_STALE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._secret_id = secret_id
        self._refresh_seconds = refresh_seconds
        self._min_read_interval = min(MIN_READ_INTERVAL_SECONDS, refresh_seconds)
        self._retry_seconds = max(self._min_read_interval, min(retry_seconds, refresh_seconds))
        self._max_stale_seconds = max_stale_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: StripeSecrets | None = None
        self._cached_at = float("-inf")
        self._next_read_at = float("-inf")
        self._last_read_at = float("-inf")
        self._last_failure: SecretsUnavailable | None = None
        self.reads = 0

    def __repr__(self) -> str:
        return f"SecretsManagerSecretsProvider(secret_id={self._secret_id!r}, <values hidden>)"

    def get(self) -> StripeSecrets:
        """The cached secrets, re-read when the cache is older than ``refresh_seconds``."""
        with self._lock:
            now = self._clock()
            if now < self._next_read_at or now - self._last_read_at < self._min_read_interval:
                return self._fallback(now)
            return self._read_locked(now)

    def refresh(self) -> StripeSecrets:
        """Re-read now, unless the last read is under the minimum interval old (then as ``get()`` would)."""
        with self._lock:
            now = self._clock()
            if now - self._last_read_at < self._min_read_interval:
                return self._fallback(now)
            return self._read_locked(now)

    def _read_locked(self, now: float) -> StripeSecrets:
        self._last_read_at = now
        try:
            self.reads += 1
            response = self._client.get_secret_value(SecretId=self._secret_id)
            secrets = parse_stripe_secrets(response.get("SecretString"), self._secret_id)
        except (ClientError, BotoCoreError, SecretsUnavailable) as error:
            self._last_failure = (
                error
                if isinstance(error, SecretsUnavailable)
                else SecretsUnavailable(f"cannot read {self._secret_id}: {_error_code(error)}")
            )
            self._next_read_at = now + self._retry_seconds
            return self._fallback(now)
        if self._cached is not None and secrets.secret_key != self._cached.secret_key:
            log.info("Stripe secret key rotated", extra={"secretId": self._secret_id})
        self._cached, self._cached_at, self._last_failure = secrets, now, None
        self._next_read_at = now + self._refresh_seconds
        return secrets

    def _fallback(self, now: float) -> StripeSecrets:
        """The cache while it is fresh, or stale within the bound after a failed read; else the failure."""
        if self._cached is not None:
            if self._last_failure is None:
                return self._cached
            if now - self._cached_at <= self._refresh_seconds + self._max_stale_seconds:
                log.warning("serving cached Stripe secrets; re-read failed", extra={"reason": str(self._last_failure)})
                return self._cached
        # A new exception each time: re-raising one instance would grow its traceback with every use.
        raise SecretsUnavailable(str(self._last_failure or f"{self._secret_id} has not been read yet"))


def _error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        code: str = error.response.get("Error", {}).get("Code", "ClientError")
        return code
    return type(error).__name__
