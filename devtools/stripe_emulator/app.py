"""The WSGI app: Stripe's ``/v1`` routes, auth, idempotency, rate limit and faults, plus control endpoints."""

from __future__ import annotations

import collections
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from stripe_emulator import contract, stripejs
from stripe_emulator.config import EmulatorConfig
from stripe_emulator.contract import API_VERSION
from stripe_emulator.errors import (
    ApiError,
    AuthenticationError,
    ContractViolation,
    IdempotencyError,
    InvalidRequestError,
    ParameterError,
    RateLimitError,
    StripeError,
)
from stripe_emulator.hosted_invoice import invoice_page, invoice_pdf
from stripe_emulator.idempotency import IdempotencyCache, SavedResponse
from stripe_emulator.params import decode_form
from stripe_emulator.routes import ROUTES, STRIPE_JS_PARAMS, Route
from stripe_emulator.store import RequestContext, Store
from stripe_emulator.webhooks import TaskScheduler, WebhookDispatcher

request_log = logging.getLogger("stripe_emulator.requests")


class EmulatorApp:
    """The emulator as a WSGI callable; owns the store, the webhook dispatcher and the background workers."""

    def __init__(self, config: EmulatorConfig | None = None):
        self.config = config or EmulatorConfig()
        self._rng = random.Random(self.config.seed)
        self._rng_lock = threading.Lock()
        self.scheduler = TaskScheduler(self.config.webhook_workers)
        self.dispatcher = WebhookDispatcher(
            self.config,
            self.scheduler,
            self._rng,
            self._rng_lock,
            on_settled=lambda event_id: self.store.webhook_settled(event_id),
        )
        self.store = Store(self.config, self.scheduler, self.dispatcher.publish)
        self.idempotency = IdempotencyCache()
        self._stats_lock = threading.Lock()
        self._window: collections.deque[float] = collections.deque()
        self._reset_counters()
        # Every route must be an operation the pinned SDK declares: a route Stripe does not have fails here.
        self._operations = {f"{r.method} {r.path}": r.operation for r in ROUTES}
        self._routes = {f"{r.method} {r.path}": r for r in ROUTES}
        self._map = Map([Rule(r.rule, methods=[r.method], endpoint=f"{r.method} {r.path}") for r in ROUTES])

    def close(self) -> None:
        """Stop the background workers (webhook delivery, automatic charges)."""
        self.scheduler.stop()

    def reset(self) -> None:
        """Forget all state, deliveries, counters and idempotency keys; keep the config."""
        self.scheduler.clear()
        self.dispatcher.reset()
        self.store.reset()
        self.idempotency.clear()
        with self._rng_lock:
            self._rng.seed(self.config.seed)
        with self._stats_lock:
            self._window.clear()
            self._reset_counters()

    def _reset_counters(self) -> None:
        self._requests: collections.Counter[str] = collections.Counter()
        self._replays: collections.Counter[str] = collections.Counter()
        self._rejected: collections.Counter[str] = collections.Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        started = time.perf_counter()
        request_id = "req_" + secrets.token_hex(7)
        response, route_label, replayed = self._dispatch(request, request_id)
        response.headers["Request-Id"] = request_id
        stripejs.allow_cross_origin(request, response)
        if self.config.log_requests and request_log.isEnabledFor(logging.INFO):
            request_log.info(
                json.dumps(
                    {
                        "ts": round(time.time(), 3),
                        "request_id": request_id,
                        "method": request.method,
                        "path": request.path,
                        "route": route_label,
                        "status": response.status_code,
                        "idempotent_replayed": replayed,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                )
            )
        return response(environ, start_response)

    def _dispatch(self, request: Request, request_id: str) -> tuple[Response, str | None, bool]:
        path = request.path
        if path == "/healthz":
            return _json(200, {"status": "ok"}), None, False
        if path.startswith("/_emulator/"):
            return self._control(request), None, False
        if path.startswith("/invoice/"):
            return self._hosted_invoice(request), None, False
        if stripejs.is_stripe_js_path(path):
            return stripejs.stripe_js_response(self.config.public_url or request.host_url), None, False
        try:
            adapter = self._map.bind_to_environ(request.environ)
            endpoint, args = adapter.match()
        except (NotFound, MethodNotAllowed):
            error = InvalidRequestError(
                f"Unrecognized request URL ({request.method}: {path}). Please see https://stripe.com/docs or "
                "we can help at https://support.stripe.com/."
            )
            error.status = 404
            return _json(404, error.body()), None, False
        route = self._routes[endpoint]
        path_args = {name: str(value) for name, value in args.items()}
        if len(path_args) == 1:
            path_args["id"] = next(iter(path_args.values()))
        try:
            return self._api_call(request, request_id, route, path_args)
        except StripeError as exc:
            return _error_response(exc), route.label, False
        except Exception:  # a bug in the emulator still answers the way Stripe answers a 500
            request_log.exception("unhandled error in %s", route.label)
            return _error_response(ApiError("An unexpected error occurred in the emulator.")), route.label, False

    def _api_call(
        self, request: Request, request_id: str, route: Route, args: dict[str, str]
    ) -> tuple[Response, str, bool]:
        with self._stats_lock:
            self._requests[route.label] += 1
            self._admit()
        params = self._params(request)
        api_key = self._authenticate(request, params, route, args)
        key = request.headers.get("Idempotency-Key")
        if key is not None and len(key) > contract.MAX_IDEMPOTENCY_KEY_LENGTH:
            raise ParameterError(
                f"Idempotency-Key must be at most {contract.MAX_IDEMPOTENCY_KEY_LENGTH} characters long.",
                param="Idempotency-Key",
            )
        operation = self._operations[f"{route.method} {route.path}"]
        validated = contract.check_params(
            params, operation.params, extra=STRIPE_JS_PARAMS if args.get("_publishable") == "1" else None
        )
        expand = validated.get("expand")
        ctx = RequestContext(request_id, key, self.config.public_url or request.host_url)

        def execute() -> tuple[int, bytes, dict[str, str]]:
            try:
                with self.store.atomic():  # a background charge must not slip between the change and its answer
                    result = route.handler(self.store, validated, ctx, args)
                    rendered = self.store.render(result, expand)
            except StripeError as exc:
                if not exc.replayable:
                    raise
                return exc.status, _dump(self._checked_error(exc.body())), {}
            if self.config.check_contract:
                self._require_declared_shape(rendered, operation, route)
            if self._fault_after_execution():
                # Stripe saves a 500 that happened after execution began under the key and tells the
                # client not to retry it: the request may have taken effect.
                body = ApiError("An error occurred while processing your request (injected after execution).")
                return 500, _dump(body.body()), {"Stripe-Should-Retry": "false"}
            return 200, _dump(rendered), {}

        if route.method != "POST" or not key:
            status, body, headers = execute()
            return _raw(status, body, headers), route.label, False
        scope = (api_key, key)
        fingerprint = json.dumps([route.method, request.path, params], sort_keys=True)
        with self.idempotency.key_lock(scope):
            saved = self.idempotency.get(scope, self.config.idempotency_ttl)
            if saved is not None:
                if saved.fingerprint != fingerprint:
                    raise IdempotencyError(
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different "
                        "request.",
                        code="idempotency_key_in_use",
                    )
                with self._stats_lock:
                    self._replays[route.label] += 1
                response = _raw(saved.status, saved.body, saved.headers)
                response.headers["Idempotent-Replayed"] = "true"
                response.headers["Original-Request"] = saved.request_id
                response.headers["Idempotency-Key"] = key
                return response, route.label, True
            status, body, headers = execute()
            self.idempotency.put(scope, SavedResponse(fingerprint, status, body, request_id, time.time(), headers))
        response = _raw(status, body, headers)
        response.headers["Idempotency-Key"] = key
        response.headers["Original-Request"] = request_id
        return response, route.label, False

    def _require_declared_shape(self, rendered: dict[str, Any], operation: contract.Operation, route: Route) -> None:
        if rendered.get("deleted") is True:  # Stripe answers a DELETE with a stub
            problems = [] if set(rendered) == {"id", "object", "deleted"} else [f"deleted stub: {sorted(rendered)}"]
        elif operation.returns is not None:
            problems = contract.shape_violations(rendered, operation.returns, rendered.get("object", "object"))
        else:
            problems = contract.object_violations(rendered)
        if problems:
            request_log.error("emulated answer departs from the SDK", extra={"route": route.label})
            raise ContractViolation(route.label, problems)

    def _checked_error(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.config.check_contract:
            problems = contract.error_violations(body)
            if problems:
                raise ContractViolation("error body", problems)
        return body

    def _fault_after_execution(self) -> bool:
        with self._stats_lock:
            if self.config.fault_after_execution_next_n > 0:
                self.config.fault_after_execution_next_n -= 1
                self._rejected["faults_after_execution"] += 1
                return True
        return False

    def _admit(self) -> None:
        """Rate limit (sliding one-second window) and injected faults; call with the stats lock held."""
        now = time.monotonic()
        limit = self.config.rate_limit
        if limit:
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) >= limit:
                self._rejected["rate_limited"] += 1
                raise RateLimitError("global-rate")
            self._window.append(now)
        fault = False
        if self.config.fault_next_n > 0:
            self.config.fault_next_n -= 1
            fault = True
        elif self.config.fault_rate:
            with self._rng_lock:
                fault = self._rng.random() < self.config.fault_rate
        if fault:
            self._rejected["faults"] += 1
            raise ApiError()

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        pairs = parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
        if request.method == "POST":
            content_type = request.mimetype
            if content_type not in ("", "application/x-www-form-urlencoded"):
                raise InvalidRequestError(
                    f"Invalid request: unsupported Content-Type {content_type}. If error persists and you need "
                    "assistance, please contact support@stripe.com."
                )
            pairs += parse_qsl(request.get_data(as_text=True), keep_blank_values=True)
        return decode_form(pairs)

    def _authenticate(self, request: Request, params: dict[str, Any], route: Route, args: dict[str, str]) -> str:
        key = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            key = header[len("Bearer ") :].strip()
        elif request.authorization and request.authorization.type == "basic":
            key = request.authorization.username
        body_key = params.pop("key", None)  # Stripe.js sends the publishable key as a parameter
        key = key or body_key
        if not key:
            raise AuthenticationError(
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api"
                "#authentication for details, or we can help at https://support.stripe.com/."
            )
        if secrets.compare_digest(key, self.config.secret_key):
            return key
        if secrets.compare_digest(key, self.config.publishable_key):
            if route.publishable:
                args["_publishable"] = "1"
                return key
            raise AuthenticationError(
                "This API call cannot be made with a publishable API key. Please use a secret API key. You can "
                "find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
            )
        masked = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "****"
        raise AuthenticationError(f"Invalid API Key provided: {masked}")

    # --- control endpoints (no Stripe auth; local use only) ---------------------------------------

    def _control(self, request: Request) -> Response:
        name = request.path[len("/_emulator/") :].strip("/")
        method = request.method
        try:
            if name == "reset" and method == "POST":
                self.reset()
                return _json(200, {"reset": True})
            if name == "config" and method == "GET":
                return _json(200, self.config.to_dict())
            if name == "config" and method == "POST":
                changes = request.get_json(force=True, silent=True)
                if not isinstance(changes, dict):
                    raise InvalidRequestError("Send the settings to change as a JSON object.")
                self.config.update(changes)
                if "seed" in changes:
                    with self._rng_lock:
                        self._rng.seed(self.config.seed)
                return _json(200, self.config.to_dict())
            if name == "deliveries" and method == "GET":
                deliveries = self.dispatcher.attempts()
                for field in ("event_id", "event_type", "endpoint_id"):
                    if request.args.get(field):
                        deliveries = [d for d in deliveries if d[field] == request.args[field]]
                return _json(200, {"deliveries": deliveries})
            if name == "requests" and method == "GET":
                with self._stats_lock:
                    return _json(
                        200,
                        {
                            "requests": dict(self._requests),
                            "idempotent_replays": dict(self._replays),
                            "rejected": dict(self._rejected),
                            "total": sum(self._requests.values()),
                        },
                    )
            if name == "objects" and method == "GET":
                return _json(200, self.store.counts())
        except StripeError as exc:
            return _error_response(exc)
        return _json(
            404,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": None,
                    "param": None,
                    "message": f"Unknown control endpoint: {method} {request.path}",
                }
            },
        )

    def _hosted_invoice(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        invoice_id = parts[1] if len(parts) > 1 else ""
        try:
            invoice = self.store.render(self.store.retrieve("invoice", invoice_id))
        except StripeError as exc:
            return _error_response(exc)
        if invoice["status"] == "draft":
            return _json(
                404,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "resource_missing",
                        "param": None,
                        "message": "Draft invoices have no hosted page.",
                    }
                },
            )
        if len(parts) == 3 and parts[2] == "pdf":
            return Response(invoice_pdf(invoice), mimetype="application/pdf")
        if len(parts) != 2:
            return _json(
                404, {"error": {"type": "invalid_request_error", "code": None, "param": None, "message": "Not found."}}
            )
        rate_ids = [
            tax["tax_rate_details"]["tax_rate"] for tax in invoice["total_taxes"] or [] if tax["tax_rate_details"]
        ]
        rates = {rate_id: self.store.retrieve("tax_rate", rate_id) for rate_id in rate_ids}
        return Response(invoice_page(invoice, rates), mimetype="text/html")


def create_app(config: EmulatorConfig | None = None) -> EmulatorApp:
    """The emulator as a WSGI app (call ``close()`` to stop its background workers)."""
    return EmulatorApp(config)


def _dump(value: Any) -> bytes:
    return json.dumps(value, indent=2).encode()


def _raw(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=status, mimetype="application/json")
    response.headers["Stripe-Version"] = API_VERSION
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _json(status: int, value: Any) -> Response:
    return _raw(status, _dump(value))


def _error_response(error: StripeError) -> Response:
    return _raw(error.status, _dump(error.body()), error.headers())
