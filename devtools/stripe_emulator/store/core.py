"""The state every resource shares, and what each needs of it: ids, lookup, events, rendering, paging.

One re-entrant lock guards all state, so every API call is atomic with respect to the others and to
the background tasks (automatic charges, SEPA settlement, webhook bookkeeping). The resource modules
next to this one add Stripe's operations to ``StoreCore``; ``Store`` composes them.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stripe_emulator import contract
from stripe_emulator import objects as build
from stripe_emulator.config import EmulatorConfig
from stripe_emulator.errors import ContractViolation, ParameterError, ResourceMissingError
from stripe_emulator.webhooks import Endpoint, TaskScheduler, event_matches

TYPES = (
    "customer",
    "payment_method",
    "setup_intent",
    "setup_attempt",
    "mandate",
    "invoice",
    "invoiceitem",
    "tax_rate",
    "event",
    "webhook_endpoint",
    "credit_note",
    "customer_balance_transaction",
    "refund",
    "tax_id",
)
# Fields each object type can expand, as dotted paths.
EXPANDABLE = {
    "customer": {"invoice_settings.default_payment_method", "default_source", "test_clock"},
    "payment_method": {"customer"},
    "setup_intent": {
        "customer",
        "payment_method",
        "latest_attempt",
        "mandate",
        "single_use_mandate",
        "application",
        "on_behalf_of",
    },
    "setup_attempt": {"customer", "payment_method", "setup_intent", "application", "on_behalf_of"},
    "invoice": {
        "customer",
        "default_payment_method",
        "default_source",
        "latest_revision",
        "application",
        "on_behalf_of",
        "subscription",
        "test_clock",
        "from_invoice.invoice",
    },
    "invoiceitem": {"customer", "invoice", "test_clock"},
    "line_item": {"invoice", "subscription"},
    "mandate": {"payment_method"},
    "credit_note": {"customer", "invoice", "customer_balance_transaction", "refunds.refund"},
    "customer_balance_transaction": {"customer", "invoice", "credit_note"},
    "refund": {"charge", "payment_intent", "balance_transaction"},
    "tax_id": {"customer"},
}
MAX_INLINE_LINES = 10
DECLINED = "Your card was declined."


@dataclass(frozen=True)
class RequestContext:
    """What an event records about the API request that caused it."""

    request_id: str | None = None
    idempotency_key: str | None = None
    base_url: str = ""


BACKGROUND = RequestContext()


class StoreCore:
    """The objects of one emulator and the lock that guards them; no Stripe operation of its own."""

    def __init__(
        self,
        config: EmulatorConfig,
        scheduler: TaskScheduler,
        publish: Callable[[dict[str, Any], list[Endpoint]], None],
    ):
        self._config = config
        self._scheduler = scheduler
        self._publish = publish
        self._lock = threading.RLock()
        self._generation = 0
        self._init_state()

    def _init_state(self) -> None:
        self._objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
        self._order: dict[str, int] = {}
        self._seq = itertools.count()
        self._deleted: dict[str, dict[str, Any]] = {}
        self._instrument_secrets: dict[str, str] = {}  # payment method id -> full number / IBAN
        self._endpoint_secrets: dict[str, str] = {}
        self._processing: set[str] = set()  # invoices with a SEPA debit in flight
        self._charge_tokens: dict[str, int] = {}  # latest scheduled automatic charge per invoice

    # --- control ----------------------------------------------------------------------------------

    def atomic(self) -> threading.RLock:
        """The store's lock, for a caller that must see one consistent state across several calls."""
        return self._lock

    def reset(self) -> None:
        """Forget every object and event; scheduled charges and settlements are dropped."""
        with self._lock:
            self._generation += 1
            self._init_state()

    def counts(self) -> dict[str, int]:
        """Live objects per type."""
        with self._lock:
            return {t: len(items) for t, items in self._objects.items()}

    # --- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _now() -> int:
        return int(time.time())

    def _add(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._objects[obj["object"]][obj["id"]] = obj
        self._order[obj["id"]] = next(self._seq)
        return obj

    def _get(self, kind: str, object_id: str | None, param: str | None = "id") -> dict[str, Any]:
        obj = self._objects[kind].get(object_id or "")
        if obj is None:
            raise ResourceMissingError(KIND_NAMES[kind], object_id or "", param)
        return obj

    def _emit(
        self, event_type: str, obj: dict[str, Any], ctx: RequestContext, previous: dict[str, Any] | None = None
    ) -> None:
        endpoints = [
            Endpoint(we["id"], we["url"], self._endpoint_secrets[we["id"]])
            for we in self._objects["webhook_endpoint"].values()
            if we["status"] == "enabled" and event_matches(we["enabled_events"], event_type)
        ]
        if event_type not in contract.event_types():
            raise ContractViolation("event", [f"{event_type}: Stripe has no such event type"])
        request = {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key}
        event = build.build_event(event_type, self._render_plain(obj), self._now(), request, previous, len(endpoints))
        if self._config.check_contract:
            problems = contract.object_violations(event)
            if problems:
                raise ContractViolation(f"{event_type} event", problems)
        self._add(event)
        if endpoints:
            self._publish(copy.deepcopy(event), endpoints)

    def _emit_changes(self, event_type: str, obj: dict[str, Any], before: dict[str, Any], ctx: RequestContext) -> None:
        """``event_type`` with what changed since ``before``; no event when nothing did."""
        previous = build.previous_attributes(before, obj)
        if previous:
            self._emit(event_type, obj, ctx, previous)

    def _render_plain(self, obj: dict[str, Any]) -> dict[str, Any]:
        rendered = copy.deepcopy(obj)
        if rendered.get("object") in ("invoice", "credit_note") and "lines" in rendered:
            lines = rendered["lines"]
            lines["has_more"] = len(lines["data"]) > MAX_INLINE_LINES
            lines["data"] = lines["data"][:MAX_INLINE_LINES]
        if rendered.get("object") == "credit_note":
            for line in rendered["lines"]["data"]:
                line["tax_rates"] = [copy.deepcopy(self._objects["tax_rate"][r]) for r in line["tax_rates"]]
        # Tax rates embedded in invoices and invoice items show as they are now (metadata, active ...).
        for field in ("default_tax_rates", "tax_rates"):
            if isinstance(rendered.get(field), list) and rendered.get("object") in ("invoice", "invoiceitem"):
                rendered[field] = [
                    copy.deepcopy(self._objects["tax_rate"].get(rate["id"], rate)) for rate in rendered[field]
                ]
        return rendered

    def _customer_changed(self, customer: dict[str, Any], ctx: RequestContext) -> None:
        """A customer's details changed; drafts that follow them (``Invoices``) catch up."""

    def render(self, obj: dict[str, Any], expand: list[str] | None = None) -> dict[str, Any]:
        """A copy of an object (or list envelope) for the API, with the requested fields expanded."""
        with self._lock:
            if obj.get("object") == "list":
                rendered = dict(obj, data=[self._render_plain(item) for item in obj["data"]])
            else:
                rendered = self._render_plain(obj)
            for i, path in enumerate(expand or []):
                self._expand(rendered, path.split("."), path, f"expand[{i}]")
            return rendered

    def _expand(self, obj: dict[str, Any], parts: list[str], path: str, param: str) -> None:
        if obj.get("object") == "list" and parts[0] == "data":
            for item in obj["data"]:
                self._expand(item, parts[1:], path, param)
            return
        allowed = EXPANDABLE.get(obj.get("object", ""), set())
        for cut in range(len(parts), 0, -1):
            if ".".join(parts[:cut]) in allowed:
                break
        else:
            raise ParameterError(f"This property cannot be expanded ({path}).", param=param)
        container: Any = obj
        for segment in parts[: cut - 1]:
            container = container.get(segment) if isinstance(container, dict) else None
        if not isinstance(container, dict):
            return
        value = container.get(parts[cut - 1])
        if isinstance(value, str):
            value = self._render_plain(self._lookup(value))
            container[parts[cut - 1]] = value
        if isinstance(value, dict) and cut < len(parts):
            self._expand(value, parts[cut:], path, param)

    def _lookup(self, object_id: str) -> dict[str, Any]:
        if object_id in self._deleted:
            return self._deleted[object_id]
        kind = build.type_of_id(object_id)
        if kind is None or kind not in self._objects:
            raise ResourceMissingError("object", object_id)
        return self._get(kind, object_id)

    def _page(self, items: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
        """Stripe list paging: newest first, ``limit``, ``starting_after`` / ``ending_before``, ``created``."""
        limit = list_limit(params)
        created = params.get("created")
        if isinstance(created, int):  # ``created=<timestamp>``: exactly then
            created = {"eq": created}
        if created:
            items = [o for o in items if in_range(_created(o), created)]
        key = self._sort_key
        items = sorted(items, key=key, reverse=True)
        if params.get("starting_after"):
            cursor = key(self._cursor(params["starting_after"], "starting_after"))
            rest = [o for o in items if key(o) < cursor]
            return build.list_object(url, rest[:limit], len(rest) > limit)
        if params.get("ending_before"):
            cursor = key(self._cursor(params["ending_before"], "ending_before"))
            before = [o for o in items if key(o) > cursor]
            return build.list_object(url, before[-limit:], len(before) > limit)
        return build.list_object(url, items[:limit], len(items) > limit)

    def _sort_key(self, obj: dict[str, Any]) -> tuple[int, int]:
        return _created(obj), self._order.get(obj["id"], 0)

    def _cursor(self, object_id: str, param: str) -> dict[str, Any]:
        try:
            return self._lookup(object_id)
        except ResourceMissingError:
            raise ResourceMissingError("object", object_id, param) from None

    def retrieve(self, kind: str, object_id: str) -> dict[str, Any]:
        """Any stored object by type and id."""
        with self._lock:
            return self._get(kind, object_id)

    def list_objects(self, kind: str, params: dict[str, Any], url: str) -> dict[str, Any]:
        """An unfiltered Stripe list of one object type."""
        with self._lock:
            return self._page(list(self._objects[kind].values()), params, url)


KIND_NAMES = {
    "customer": "customer",
    "payment_method": "PaymentMethod",
    "setup_intent": "setupintent",
    "setup_attempt": "setupattempt",
    "mandate": "mandate",
    "invoice": "invoice",
    "invoiceitem": "invoiceitem",
    "event": "event",
    "webhook_endpoint": "webhook endpoint",
    "tax_rate": "tax rate",
    "credit_note": "credit note",
    "customer_balance_transaction": "customer balance transaction",
    "refund": "refund",
    "tax_id": "tax ID",
}


def list_limit(params: dict[str, Any]) -> int:
    """The ``limit`` of a list request, within Stripe's range (10 when not given)."""
    limit = params.get("limit", 10)
    low, high = contract.LIST_LIMIT_RANGE
    if not low <= limit <= high:
        raise ParameterError(
            f"Invalid limit: must be between {low} and {high}", code="parameter_invalid_integer", param="limit"
        )
    return int(limit)


def _created(obj: dict[str, Any]) -> int:
    return int(obj["created"] if "created" in obj else obj["date"])  # invoice items carry "date"


def merge_metadata(current: dict[str, str], changes: dict[str, str] | None) -> dict[str, str]:
    """Stripe's metadata update: keys merge, an empty value deletes a key, an empty metadata clears all."""
    if changes is None:
        return {}
    merged = dict(current)
    for key, value in changes.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def in_range(value: int, bounds: dict[str, int]) -> bool:
    """Whether a timestamp meets a range filter such as ``created[gte]`` / ``created[lt]``."""
    checks = {"eq": value.__eq__, "gt": value.__gt__, "gte": value.__ge__, "lt": value.__lt__, "lte": value.__le__}
    return all(checks[op](bound) for op, bound in bounds.items())
