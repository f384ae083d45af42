"""Run-time knobs of the emulator: keys, payment timing, webhook delivery, rate limit and faults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from stripe_emulator.errors import InvalidRequestError

AUTOMATIC_TAX_ROUNDINGS = ("invoice", "line")


@dataclass
class EmulatorConfig:
    """Every setting of the emulator; all of them can be changed at run time via the control API."""

    secret_key: str = "sk_test_emulator"
    publishable_key: str = "pk_test_emulator"
    account_country: str = "DE"
    account_name: str = "Emulated Billing GmbH"
    default_currency: str = "eur"
    # Base of the hosted invoice / PDF URLs; None means "the URL the request came in on".
    public_url: str | None = None

    # Compressed version of Stripe's retry schedule (Stripe retries for up to three days).
    webhook_retry_schedule: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
    webhook_max_attempts: int = 8
    webhook_timeout: float = 2.0
    webhook_workers: int = 4

    # Stripe collects an auto-advancing invoice asynchronously after finalization, never in the answer
    # to the finalize request; a client must wait for invoice.paid.
    auto_charge_delay: float = 2.0
    sepa_settle_delay: float = 0.5
    # Seconds between automatic payment retries of a failed invoice (Stripe: days).
    payment_retry_interval: float = 3 * 24 * 3600.0
    payment_max_attempts: int = 4

    duplicate_deliveries: int = 0
    duplicate_probability: float = 0.0
    reorder_window: float = 0.0
    delivery_delay: float = 0.0

    rate_limit: float = 0.0  # API requests per second over a sliding 1 s window; 0 = unlimited
    fault_next_n: int = 0  # the next N API requests answer 500
    fault_rate: float = 0.0  # fraction of API requests that answer 500
    # The next N API requests execute, then answer 500 with Stripe-Should-Retry: false (saved under
    # their idempotency key, as Stripe saves a 500 that happened after execution began).
    fault_after_execution_next_n: int = 0
    # The next N finalizations fail (invoice.finalization_failed; the invoice stays a draft).
    finalization_failures_next_n: int = 0
    # How the Stripe Tax model rounds: "invoice" (Stripe: each rate's taxes summed over the invoice, then
    # rounded once) or "line" (each line rounded). Tax Rates are always rounded per line.
    automatic_tax_rounding: str = "invoice"
    # Check every answer and event against the pinned SDK's declarations (500 on a violation).
    check_contract: bool = True
    seed: int = 0
    idempotency_ttl: float = 24 * 3600.0
    log_requests: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-friendly values, without the secret key itself."""
        values = dataclasses.asdict(self)
        values["webhook_retry_schedule"] = list(self.webhook_retry_schedule)
        values["secret_key"] = _mask(self.secret_key)
        return values

    def update(self, changes: dict[str, Any]) -> None:
        """Apply changes given as JSON values; unknown names or bad types are rejected."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        coerced = {}
        for name, value in changes.items():
            if name not in fields:
                raise InvalidRequestError(f"Unknown setting: {name}", param=name)
            coerced[name] = _coerce(name, fields[name].type, value)
        rounding = coerced.get("automatic_tax_rounding")
        if rounding is not None and rounding not in AUTOMATIC_TAX_ROUNDINGS:
            raise InvalidRequestError(
                f"Invalid value for setting automatic_tax_rounding: {rounding!r} (one of "
                f"{', '.join(AUTOMATIC_TAX_ROUNDINGS)})",
                param="automatic_tax_rounding",
            )
        for name, value in coerced.items():
            setattr(self, name, value)


def _mask(key: str) -> str:
    return key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "*" * len(key)


def _coerce(name: str, type_name: Any, value: Any) -> Any:
    type_name = str(type_name)
    try:
        if type_name.startswith("tuple"):
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            schedule = tuple(float(v) for v in value)
            if not schedule or any(v < 0 for v in schedule):
                raise ValueError
            return schedule
        if type_name == "bool":
            if isinstance(value, str):
                return value.lower() in ("1", "true", "yes", "on")
            return bool(value)
        if type_name == "int":
            if isinstance(value, bool):
                raise ValueError
            number = int(value)
            if number < 0 and name != "seed":
                raise ValueError
            return number
        if type_name == "float":
            fraction = float(value)
            if fraction < 0:
                raise ValueError
            return fraction
        if "None" in type_name and value is None:
            return None
        return str(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"Invalid value for setting {name}: {value!r}", param=name) from None
