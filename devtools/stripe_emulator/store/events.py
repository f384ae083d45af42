"""Events as the list API shows them, and the webhook endpoints they are delivered to."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from stripe_emulator import contract
from stripe_emulator import objects as build
from stripe_emulator.errors import ParameterError
from stripe_emulator.params import require
from stripe_emulator.store.core import StoreCore, merge_metadata


class Events(StoreCore):
    """``/v1/events`` and ``/v1/webhook_endpoints``, and the count of webhooks still pending per event."""

    def webhook_settled(self, event_id: str) -> None:
        """One endpoint got (or finally failed to get) the event: one fewer pending webhook."""
        with self._lock:
            event = self._objects["event"].get(event_id)
            if event and event["pending_webhooks"] > 0:
                event["pending_webhooks"] -= 1

    def list_events(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/events, filtered by ``type`` (``*`` wildcards), ``types[]`` and ``created``."""
        with self._lock:
            if len(params.get("types") or []) > contract.MAX_EVENT_TYPES_FILTER:
                raise ParameterError(
                    f"Invalid types: at most {contract.MAX_EVENT_TYPES_FILTER} event types can be given.", param="types"
                )
            types = params.get("types") or ([params["type"]] if params.get("type") else None)
            if params.get("type") and params.get("types"):
                raise ParameterError("You may only specify one of these parameters: type, types.", param="types")
            delivered = params.get("delivery_success")
            items = [
                e
                for e in self._objects["event"].values()
                if (types is None or any(_type_matches(t, e["type"]) for t in types))
                and (delivered is None or (e["pending_webhooks"] == 0) == delivered)
            ]
            return self._page(items, params, "/v1/events")

    def create_webhook_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/webhook_endpoints; the answer (only this one) carries the ``whsec_`` secret."""
        require(params, "url", "enabled_events")
        with self._lock:
            endpoint = self._add(build.build_webhook_endpoint(self._now(), params))
            secret = "whsec_" + secrets.token_hex(24)
            self._endpoint_secrets[endpoint["id"]] = secret
            return dict(copy.deepcopy(endpoint), secret=secret)

    def update_webhook_endpoint(self, endpoint_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/webhook_endpoints/{id}."""
        with self._lock:
            endpoint = self._get("webhook_endpoint", endpoint_id)
            if params.get("enabled_events"):
                endpoint["enabled_events"] = list(params["enabled_events"])
            for field in ("url", "description"):
                if field in params:
                    endpoint[field] = params[field]
            if "disabled" in params:
                endpoint["status"] = "disabled" if params["disabled"] else "enabled"
            if "metadata" in params:
                endpoint["metadata"] = merge_metadata(endpoint["metadata"], params["metadata"])
            return endpoint

    def delete_webhook_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """DELETE /v1/webhook_endpoints/{id}."""
        with self._lock:
            self._get("webhook_endpoint", endpoint_id)
            del self._objects["webhook_endpoint"][endpoint_id]
            self._endpoint_secrets.pop(endpoint_id, None)
            return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def _type_matches(pattern: str, event_type: str) -> bool:
    if "*" not in pattern:
        return pattern == event_type
    prefix = pattern.split("*", 1)[0]
    return event_type.startswith(prefix)
