"""Stripe-shaped API errors: each type knows its HTTP status and renders Stripe's error body."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error answered with Stripe's body ``{"error": {"type", "code", "message", "param"}}``."""

    status = 400
    error_type = "invalid_request_error"
    # Whether an idempotent request that ended in this error replays it (Stripe saves results of
    # requests that started executing, not of those rejected before, e.g. by validation).
    replayable = True

    def __init__(self, message: str, code: str | None = None, param: str | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """Stripe's JSON error body: only the fields that apply (Stripe sends no null ``code``/``param``)."""
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        error.update({k: v for k, v in self.extra.items() if v is not None})
        return {"error": error}

    def headers(self) -> dict[str, str]:
        """Response headers that go with this error."""
        return {}


class InvalidRequestError(StripeError):
    """A request that is well-formed but not allowed in the current state (400)."""


class ParameterError(InvalidRequestError):
    """Unknown, missing or malformed parameters, rejected before anything executed (400)."""

    replayable = False


class ResourceMissingError(InvalidRequestError):
    """The object named in the path or a parameter does not exist (404, or ``status`` where Stripe says 400)."""

    status = 404

    def __init__(self, kind: str, object_id: str, param: str | None = "id", status: int | None = None):
        super().__init__(f"No such {kind}: '{object_id}'", code="resource_missing", param=param)
        if status is not None:
            self.status = status


class CardError(StripeError):
    """A payment method was declined or needs the customer (402)."""

    status = 402
    error_type = "card_error"


class AuthenticationError(StripeError):
    """Missing or invalid API key (401)."""

    status = 401
    replayable = False


class IdempotencyError(StripeError):
    """An Idempotency-Key reused with other parameters (400)."""

    error_type = "idempotency_error"
    replayable = False


class RateLimitError(StripeError):
    """Too many requests in the last second (429), naming the limiter in ``Stripe-Rate-Limited-Reason``."""

    status = 429
    replayable = False

    def __init__(self, reason: str = "global-rate") -> None:
        super().__init__(
            "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
            code="rate_limit",
        )
        self.reason = reason

    def headers(self) -> dict[str, str]:
        """The limiter that refused the request."""
        return {"Stripe-Rate-Limited-Reason": self.reason}


class ApiError(StripeError):
    """An (injected) internal error (500)."""

    status = 500
    error_type = "api_error"
    replayable = False

    def __init__(self, message: str = "An unknown error occurred (injected fault).") -> None:
        super().__init__(message)


class ContractViolation(ApiError):
    """The emulator was about to answer with something the pinned SDK does not declare (a bug here)."""

    def __init__(self, where: str, problems: list[str]) -> None:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        super().__init__(f"Emulator contract violation in {where}: {shown}")
        self.problems = problems
