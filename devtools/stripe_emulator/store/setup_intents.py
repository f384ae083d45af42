"""SetupIntents and their attempts: saving a card or a SEPA debit mandate for later charges."""

from __future__ import annotations

import secrets
from typing import Any

from stripe_emulator import instruments
from stripe_emulator import objects as build
from stripe_emulator.errors import CardError, InvalidRequestError, ParameterError
from stripe_emulator.store.core import DECLINED, RequestContext, merge_metadata
from stripe_emulator.store.payment_methods import PaymentMethods


class SetupIntents(PaymentMethods):
    """``/v1/setup_intents`` and ``/v1/setup_attempts``; a confirmation attaches the payment method."""

    def create_setup_intent(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/setup_intents (optionally confirming at once)."""
        with self._lock:
            if params.get("customer"):
                self._get("customer", params["customer"], "customer")
            intent = build.build_setup_intent(self._now(), params)
            pm = self._intent_payment_method(params)
            if pm:
                intent["payment_method"] = pm["id"]
                intent["status"] = "requires_confirmation"
            self._add(intent)
            self._emit("setup_intent.created", intent, ctx)
            if params.get("confirm"):
                return self._confirm(intent, {"mandate_data": params.get("mandate_data")}, ctx)
            return intent

    def _intent_payment_method(self, params: dict[str, Any]) -> dict[str, Any] | None:
        if params.get("payment_method"):
            return self._resolve_payment_method(params["payment_method"], "payment_method")
        if params.get("payment_method_data"):
            return self._new_payment_method(params["payment_method_data"])
        return None

    def retrieve_setup_intent(self, intent_id: str, client_secret: str | None = None) -> dict[str, Any]:
        """GET /v1/setup_intents/{id}; with a publishable key the client secret must match."""
        with self._lock:
            intent = self._get("setup_intent", intent_id)
            if client_secret is not None:
                _check_client_secret(intent, client_secret)
            return intent

    def update_setup_intent(self, intent_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/setup_intents/{id}."""
        with self._lock:
            intent = self._get("setup_intent", intent_id)
            if intent["status"] in ("succeeded", "canceled", "processing"):
                raise InvalidRequestError(
                    f"You cannot update this SetupIntent because it has a status of {intent['status']}.",
                    code="setup_intent_unexpected_state",
                )
            for field in ("description", "payment_method_options"):
                if field in params:
                    intent[field] = params[field]
            if "allowed_payment_method_types" in params:
                allowed = list(params["allowed_payment_method_types"] or [])
                intent["allowed_payment_method_types"] = allowed or None
                intent["payment_method_types"] = allowed or ["card", "sepa_debit"]
            if params.get("customer"):
                intent["customer"] = self._get("customer", params["customer"], "customer")["id"]
            if "metadata" in params:
                intent["metadata"] = merge_metadata(intent["metadata"], params["metadata"])
            if params.get("payment_method"):
                method = self._resolve_payment_method(params["payment_method"], "payment_method")
                intent["payment_method"] = method["id"]
                intent["status"] = "requires_confirmation"
            return intent  # Stripe has no setup_intent.updated event

    def confirm_setup_intent(
        self, intent_id: str, params: dict[str, Any], ctx: RequestContext, client_secret_required: bool = False
    ) -> dict[str, Any]:
        """POST /v1/setup_intents/{id}/confirm (server side, or Stripe.js style with the client secret)."""
        with self._lock:
            intent = self._get("setup_intent", intent_id)
            if client_secret_required or params.get("client_secret") is not None:
                _check_client_secret(intent, params.get("client_secret") or "")
            return self._confirm(intent, params, ctx)

    def _confirm(self, intent: dict[str, Any], params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        if intent["status"] == "succeeded":
            raise InvalidRequestError(
                "You cannot confirm this SetupIntent because it has already succeeded after being previously "
                "confirmed.",
                code="setup_intent_unexpected_state",
                setup_intent=self._render_plain(intent),
            )
        if intent["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
            raise InvalidRequestError(
                f"You cannot confirm this SetupIntent because it has a status of {intent['status']}.",
                code="setup_intent_unexpected_state",
                setup_intent=self._render_plain(intent),
            )
        pm = self._intent_payment_method(params)
        if pm is None and intent["payment_method"]:
            pm = self._get("payment_method", intent["payment_method"], "payment_method")
        if pm is None:
            raise ParameterError(
                "You cannot confirm this SetupIntent because it's missing a payment method. Update the "
                "SetupIntent with a payment method and then confirm it again.",
                code="setup_intent_unexpected_state",
                param="payment_method",
            )
        if pm["type"] not in intent["payment_method_types"]:
            raise InvalidRequestError(
                f"The PaymentMethod provided ({pm['type']}) is not allowed for this SetupIntent. Allowed "
                f"types: {', '.join(intent['payment_method_types'])}.",
                param="payment_method",
            )
        behaviour = instruments.behaviour_of(pm, self._instrument_secrets.get(pm["id"], ""))
        now = self._now()
        if behaviour.setup == "declines":
            error = {
                "code": "card_declined",
                "decline_code": behaviour.decline_code,
                "message": DECLINED,
                "payment_method": self._render_plain(pm),
                "type": "card_error",
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            }
            attempt = self._add(build.build_setup_attempt(intent, pm, now, error))
            intent.update(
                status="requires_payment_method",
                payment_method=None,
                last_setup_error=error,
                latest_attempt=attempt["id"],
            )
            self._emit("setup_intent.setup_failed", intent, ctx)
            raise CardError(
                DECLINED,
                code="card_declined",
                decline_code=behaviour.decline_code,
                setup_intent=self._render_plain(intent),
            )
        if intent["customer"]:
            self._attach(pm, self._get("customer", intent["customer"], "customer"), ctx)
        if pm["type"] == "sepa_debit":
            acceptance = (params.get("mandate_data") or {}).get("customer_acceptance")
            intent["mandate"] = self._add(build.build_mandate(pm, acceptance, now))["id"]
        attempt = self._add(build.build_setup_attempt(intent, pm, now, None))
        intent.update(
            status="succeeded",
            payment_method=pm["id"],
            last_setup_error=None,
            next_action=None,
            latest_attempt=attempt["id"],
        )
        self._emit("setup_intent.succeeded", intent, ctx)
        return intent

    def cancel_setup_intent(self, intent_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """POST /v1/setup_intents/{id}/cancel."""
        with self._lock:
            intent = self._get("setup_intent", intent_id)
            if intent["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
                raise InvalidRequestError(
                    f"You cannot cancel this SetupIntent because it has a status of {intent['status']}. Only a "
                    "SetupIntent with one of the following statuses may be canceled: requires_payment_method, "
                    "requires_confirmation, requires_action.",
                    code="setup_intent_unexpected_state",
                )
            intent.update(status="canceled", cancellation_reason=params.get("cancellation_reason"))
            self._emit("setup_intent.canceled", intent, ctx)
            return intent

    def list_setup_intents(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/setup_intents."""
        with self._lock:
            items = [
                i
                for i in self._objects["setup_intent"].values()
                if (not params.get("customer") or i["customer"] == params["customer"])
                and (not params.get("payment_method") or i["payment_method"] == params["payment_method"])
            ]
            return self._page(items, params, "/v1/setup_intents")

    def list_setup_attempts(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/setup_attempts?setup_intent=: the attempts to confirm one SetupIntent."""
        with self._lock:
            self._get("setup_intent", params["setup_intent"], "setup_intent")
            items = [a for a in self._objects["setup_attempt"].values() if a["setup_intent"] == params["setup_intent"]]
            return self._page(items, params, "/v1/setup_attempts")


def _check_client_secret(intent: dict[str, Any], client_secret: str) -> None:
    if not secrets.compare_digest(intent["client_secret"], client_secret):
        raise InvalidRequestError(
            "The client_secret provided does not match the client_secret associated with the SetupIntent.",
            code="setup_intent_invalid_parameter",
            param="client_secret",
        )
