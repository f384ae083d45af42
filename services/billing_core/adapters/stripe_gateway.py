"""Stripe adapter: the ``PaymentGateway`` over the official SDK's typed ``StripeClient``.

Every request is built as the SDK's generated params ``TypedDict`` for the pinned API version, so
mypy (strict for this module) refuses a parameter that version does not have.

The API key comes from the ``SecretsProvider`` on every call; when it changes (rotation) a new
client is built. A rejected key triggers one forced re-read of the secret and one retry, which is
safe because every write carries its idempotency key. Stripe errors leave this module only as
``billing_core.errors`` types, and objects leave it as the port's typed objects (``stripe_objects``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import stripe
from stripe.params import (
    CreditNoteCreateParams,
    CreditNoteCreateParamsLine,
    CreditNoteListParams,
    CreditNotePreviewParams,
    CustomerCreateParams,
    CustomerUpdateParams,
    CustomerUpdateParamsAddress,
    EventListParams,
    InvoiceAddLinesParams,
    InvoiceAddLinesParamsLine,
    InvoiceCreateParams,
    InvoiceFinalizeInvoiceParams,
    InvoiceLineItemListParams,
    InvoiceListParams,
    InvoicePayParams,
    InvoiceRetrieveParams,
    SetupIntentCreateParams,
    TaxRateCreateParams,
)

from billing_core.domain.credit_notes import Settlement
from billing_core.errors import (
    IdempotencyKeyReused,
    InvoiceAlreadyPaid,
    PaymentActionRequired,
    PaymentDeclined,
    PaymentGatewayError,
    PaymentMethodMissing,
    StripeAuthenticationFailed,
    StripeFailedAfterExecution,
    StripeObjectNotFound,
    StripeRateLimited,
    StripeRequestRejected,
    StripeUnavailable,
)
from billing_core.ports import (
    CreditNoteRequest,
    InvoiceLine,
    PaymentGateway,
    SecretsProvider,
    StripeCreditNote,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripeInvoiceLine,
    StripePaymentMethod,
    StripeSetupIntent,
)
from billing_core.ports.stripe import CustomerDetails, TaxRateSpec

# The metadata key a Tax Rate the system created carries, so it is found again instead of duplicated.
TAX_RATE_METADATA = "billingTaxRate"

log = logging.getLogger(__name__)

T = TypeVar("T")
ClientFactory = Callable[..., stripe.StripeClient]

_LIST_PAGE_SIZE = 100
# Stripe's codes for "the customer must authenticate": a card error while charging off-session, and
# the invoice error when paying an invoice needs 3-D Secure.
_ACTION_REQUIRED_CODES = frozenset({"authentication_required", "invoice_payment_intent_requires_action"})
# Stripe refuses to pay an invoice that is already paid, or whose customer has nothing to pay with, with
# ``400 invalid_request_error`` and no error code (the pinned SDK's error codes have none for either):
# "Invoice is already paid" and "This customer has no attached payment source or default payment
# method. Please consider adding a default payment method. ...". The message tells them apart.
_ALREADY_PAID = re.compile(r"\binvoice is already paid\b", re.IGNORECASE)
_NO_PAYMENT_METHOD = re.compile(r"\bno attached payment source or default payment method\b", re.IGNORECASE)


class _Dictable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class _PaymentState:
    """What Stripe has of an invoice's payment: its status and the payment method it would charge."""

    status: str | None
    method: str | None  # the invoice's default payment method, else its customer's
    customer_read: bool  # whether the customer was read (else no method means "not known")

    @property
    def without_payment_method(self) -> bool:
        """Open, and Stripe has no payment method to charge it to."""
        return self.status == "open" and self.customer_read and self.method is None


def translate_stripe_error(error: stripe.StripeError) -> PaymentGatewayError:
    """The project's error type for a Stripe SDK error."""
    message = error.user_message or type(error).__name__
    code = error.code or (getattr(error.error, "code", None) if error.error else None)
    request_id = error.request_id
    if code in _ACTION_REQUIRED_CODES:
        return PaymentActionRequired(message, code=code, request_id=request_id)
    if isinstance(error, stripe.CardError):
        decline_code = getattr(error.error, "decline_code", None) if error.error else None
        return PaymentDeclined(message, code=code, decline_code=decline_code, request_id=request_id)
    if isinstance(error, stripe.RateLimitError):
        return StripeRateLimited(message, code=code, request_id=request_id)
    if isinstance(error, stripe.IdempotencyError):
        return IdempotencyKeyReused(message, code=code, request_id=request_id)
    if isinstance(error, stripe.InvalidRequestError):
        if code == "resource_missing" or error.http_status == 404:
            return StripeObjectNotFound(message, code=code, request_id=request_id)
        return StripeRequestRejected(message, code=code, param=error.param, request_id=request_id)
    if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)):
        return StripeAuthenticationFailed(message, code=code, request_id=request_id)
    if isinstance(error, stripe.APIConnectionError):
        return StripeUnavailable(message, code=code, request_id=request_id)
    if isinstance(error, stripe.APIError) and (error.http_status is None or error.http_status >= 500):
        if _header(error, "stripe-should-retry") == "false":
            return StripeFailedAfterExecution(message, code=code, request_id=request_id)
        return StripeUnavailable(message, code=code, request_id=request_id)
    return PaymentGatewayError(message, code=code, request_id=request_id)


def _header(error: stripe.StripeError, name: str) -> str | None:
    headers = error.headers or {}
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


def _customer(obj: _Dictable) -> StripeCustomer:
    return StripeCustomer.from_json(obj.to_dict())


def _setup_intent(obj: _Dictable) -> StripeSetupIntent:
    return StripeSetupIntent.from_json(obj.to_dict())


def _payment_method(obj: _Dictable) -> StripePaymentMethod:
    return StripePaymentMethod.from_json(obj.to_dict())


def _invoice(obj: _Dictable) -> StripeInvoice:
    return StripeInvoice.from_json(obj.to_dict())


def _invoice_line(obj: _Dictable) -> StripeInvoiceLine:
    return StripeInvoiceLine.from_json(obj.to_dict())


def _credit_note(obj: _Dictable) -> StripeCreditNote:
    return StripeCreditNote.from_json(obj.to_dict())


def _event(obj: _Dictable) -> StripeEvent:
    return StripeEvent.from_json(obj.to_dict())


def _strings(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (metadata or {}).items()}


def _customer_details(details: CustomerDetails) -> CustomerUpdateParams:
    """The customer fields ``details`` sets (Stripe's names; the address with its country)."""
    params: CustomerUpdateParams = {}
    if details.name:
        params["name"] = details.name
    if details.email:
        params["email"] = details.email
    if details.address is not None:
        address: CustomerUpdateParamsAddress = {
            "line1": details.address.line1,
            "postal_code": details.address.postal_code,
            "city": details.address.city,
        }
        if details.country:
            address["country"] = details.country
        params["address"] = address
    if details.language:
        params["preferred_locales"] = [details.language]
    if details.tax_exempt:
        params["tax_exempt"] = details.tax_exempt
    return params


def _idempotent(key: str) -> stripe.RequestOptions:
    if not key:
        raise ValueError("every Stripe write needs an idempotency key")
    return {"idempotency_key": key}


def _line_params(line: InvoiceLine) -> InvoiceAddLinesParamsLine:
    params: InvoiceAddLinesParamsLine = {
        "amount": line.amount,
        "description": line.description,
        "metadata": _strings(line.metadata),
    }
    if line.period_start is not None and line.period_end is not None:
        params["period"] = {"start": line.period_start, "end": line.period_end}
    if line.tax_rate_ids:
        params["tax_rates"] = list(line.tax_rate_ids)
    if line.tax_amount is not None and line.tax_rate is not None:
        spec = line.tax_rate
        params["tax_amounts"] = [
            {
                "amount": line.tax_amount,
                "taxable_amount": line.amount,
                "taxability_reason": "standard_rated",
                "tax_rate_data": {
                    "display_name": spec.display_name,
                    "percentage": float(spec.percentage),
                    "inclusive": spec.inclusive,
                    "country": spec.country,
                    "jurisdiction": spec.jurisdiction,
                    "description": spec.description,
                    "tax_type": spec.tax_type,
                },
            }
        ]
    return params


def _credit_note_params(request: CreditNoteRequest) -> CreditNoteCreateParams:
    """The credit note's lines (by invoice line and amount), its settlement, memo, reason and metadata.

    Pre-payment sends no amount: Stripe takes the credit off the open invoice's ``amount_remaining``.
    After payment, the settlement parameter carries the whole post-payment amount, the gross of the
    lines (Stripe: refunds, balance and out-of-band credit "must equal the post_payment_amount").
    """
    lines: list[CreditNoteCreateParamsLine] = []
    for line in request.lines:
        params: CreditNoteCreateParamsLine = {
            "type": "invoice_line_item",
            "invoice_line_item": line.invoice_line_id,
            "amount": line.amount,
        }
        if line.tax_amount is not None and line.tax_rate_id is not None:
            params["tax_amounts"] = [
                {
                    "amount": line.tax_amount,
                    "tax_rate": line.tax_rate_id,
                    "taxable_amount": line.amount if line.taxable_amount is None else line.taxable_amount,
                }
            ]
        lines.append(params)
    note: CreditNoteCreateParams = {
        "invoice": request.invoice_id,
        "lines": lines,
        "metadata": _strings(request.metadata),
    }
    if request.memo:
        note["memo"] = request.memo
    if request.reason:
        note["reason"] = request.reason
    # The refund is a new one of the invoice's payment (``refund_amount``), not a link to existing
    # refunds (``refunds``): the system never refunds outside a credit note.
    if request.settlement == Settlement.REFUND:
        note["refund_amount"] = request.settled
    elif request.settlement == Settlement.BALANCE:
        note["credit_amount"] = request.settled
    elif request.settlement == Settlement.OUT_OF_BAND:
        note["out_of_band_amount"] = request.settled
    return note


class StripePaymentGateway(PaymentGateway):
    """``PaymentGateway`` over ``stripe.StripeClient`` (real Stripe, or the emulator at ``api_base``)."""

    def __init__(
        self,
        secrets: SecretsProvider,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        client_factory: ClientFactory = stripe.StripeClient,
        http_client: stripe.HTTPClient | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> None:
        """``timeout`` is (connect, read) seconds of the SDK's HTTP client (its default waits 80 s)."""
        if http_client is None and timeout is not None:
            http_client = stripe.RequestsClient(timeout=timeout)
        self._secrets = secrets
        self._api_base = api_base
        self._max_network_retries = max_network_retries
        self._client_factory = client_factory
        self._http_client = http_client
        self._lock = threading.Lock()
        self._client: stripe.StripeClient | None = None
        self._client_key: str | None = None

    def __repr__(self) -> str:
        return f"StripePaymentGateway(api_base={self._api_base!r})"

    # --- plumbing --------------------------------------------------------------------------------

    def _client_for(self, api_key: str) -> stripe.StripeClient:
        with self._lock:
            if self._client is None or self._client_key != api_key:
                kwargs: dict[str, Any] = {"max_network_retries": self._max_network_retries}
                if self._api_base:
                    kwargs["base_addresses"] = {"api": self._api_base}
                if self._http_client is not None:
                    kwargs["http_client"] = self._http_client
                self._client = self._client_factory(api_key, **kwargs)
                self._client_key = api_key
            return self._client

    def _call(self, operation: Callable[[stripe.StripeClient], T]) -> T:
        api_key = self._secrets.get().secret_key
        try:
            return operation(self._client_for(api_key))
        except stripe.AuthenticationError as error:
            # The key may have been rotated since it was cached: re-read once, retry once.
            fresh_key = self._secrets.refresh().secret_key
            if fresh_key == api_key:
                raise translate_stripe_error(error) from None
            log.info("Stripe key rejected; retrying with the rotated key")
            try:
                return operation(self._client_for(fresh_key))
            except stripe.StripeError as retry_error:
                raise translate_stripe_error(retry_error) from None
        except stripe.StripeError as error:
            raise translate_stripe_error(error) from None

    # --- customers and payment methods ------------------------------------------------------------

    def create_customer(
        self,
        *,
        account_id: str,
        idempotency_key: str,
        email: str | None = None,
        name: str | None = None,
        details: CustomerDetails | None = None,
    ) -> StripeCustomer:
        """``POST /v1/customers`` with ``metadata.userId``."""
        params: CustomerCreateParams = {"metadata": {"userId": account_id}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        if details is not None:
            params.update(_customer_details(details))  # type: ignore[typeddict-item]
            if details.vat_id:
                params["tax_id_data"] = [{"type": "eu_vat", "value": details.vat_id}]
        options = _idempotent(idempotency_key)
        return self._call(lambda c: _customer(c.v1.customers.create(params=params, options=options)))

    def update_customer(self, customer_id: str, *, details: CustomerDetails, idempotency_key: str) -> StripeCustomer:
        """``POST /v1/customers/{id}`` with the details given."""
        params: CustomerUpdateParams = _customer_details(details)
        options = _idempotent(idempotency_key)
        return self._call(lambda c: _customer(c.v1.customers.update(customer_id, params=params, options=options)))

    def create_setup_intent(
        self,
        *,
        customer_id: str,
        idempotency_key: str,
        payment_method_types: Sequence[str] = ("card", "sepa_debit"),
        metadata: Mapping[str, str] | None = None,
    ) -> StripeSetupIntent:
        """``POST /v1/setup_intents`` for off-session use, offering only ``payment_method_types``."""
        params: SetupIntentCreateParams = {
            "customer": customer_id,
            "allowed_payment_method_types": list(payment_method_types),
            "usage": "off_session",
        }
        if metadata:
            params["metadata"] = _strings(metadata)
        options = _idempotent(idempotency_key)
        return self._call(lambda c: _setup_intent(c.v1.setup_intents.create(params=params, options=options)))

    def set_default_payment_method(
        self, *, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> StripeCustomer:
        """``POST /v1/customers/{id}`` setting ``invoice_settings.default_payment_method``."""
        params: CustomerUpdateParams = {"invoice_settings": {"default_payment_method": payment_method_id}}
        options = _idempotent(idempotency_key)
        return self._call(lambda c: _customer(c.v1.customers.update(customer_id, params=params, options=options)))

    def retrieve_payment_method(self, payment_method_id: str) -> StripePaymentMethod:
        """``GET /v1/payment_methods/{id}``."""
        return self._call(lambda c: _payment_method(c.v1.payment_methods.retrieve(payment_method_id)))

    # --- invoices ---------------------------------------------------------------------------------

    def create_draft_invoice(
        self,
        *,
        customer_id: str,
        currency: str,
        idempotency_key: str,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        auto_advance: bool = False,
        custom_fields: Mapping[str, str] | None = None,
        footer: str | None = None,
        automatic_tax: bool = False,
    ) -> StripeInvoice:
        """``POST /v1/invoices``: a draft charged automatically to the default payment method."""
        params: InvoiceCreateParams = {
            "customer": customer_id,
            "currency": currency,
            "collection_method": "charge_automatically",
            "auto_advance": auto_advance,
            "metadata": _strings(metadata),
        }
        if description:
            params["description"] = description
        if custom_fields:
            params["custom_fields"] = [{"name": name, "value": value} for name, value in custom_fields.items()]
        if footer:
            params["footer"] = footer
        if automatic_tax:
            params["automatic_tax"] = {"enabled": True}
        options = _idempotent(idempotency_key)
        return self._call(lambda c: _invoice(c.v1.invoices.create(params=params, options=options)))

    def find_tax_rate(self, key: str) -> str | None:
        """``GET /v1/tax_rates?active=true``, paged, matched by ``metadata.billingTaxRate``."""

        def find(client: stripe.StripeClient) -> str | None:
            for rate in client.v1.tax_rates.list(params={"active": True, "limit": 100}).auto_paging_iter():
                if _strings(rate.to_dict().get("metadata")).get(TAX_RATE_METADATA) == key:
                    return str(rate.id)
            return None

        return self._call(find)

    def create_tax_rate(self, spec: TaxRateSpec, *, idempotency_key: str) -> str:
        """``POST /v1/tax_rates``: the exclusive German VAT rate, tagged to be found again."""
        params: TaxRateCreateParams = {
            # The SDK types a percentage as float; a rate of at most two decimals survives it exactly as text.
            "display_name": spec.display_name,
            "percentage": float(spec.percentage),
            "inclusive": spec.inclusive,
            "country": spec.country,
            "jurisdiction": spec.jurisdiction,
            "description": spec.description,
            "tax_type": spec.tax_type,
            "metadata": {TAX_RATE_METADATA: spec.key},
        }
        options = _idempotent(idempotency_key)
        return self._call(lambda c: str(c.v1.tax_rates.create(params=params, options=options).id))

    def add_invoice_lines(
        self, *, invoice_id: str, lines: Sequence[InvoiceLine], idempotency_key: str
    ) -> StripeInvoice:
        """``POST /v1/invoices/{id}/add_lines``: every line in one request; answers the invoice."""
        if not lines:
            raise ValueError("add_invoice_lines needs at least one line")
        params: InvoiceAddLinesParams = {"lines": [_line_params(line) for line in lines]}
        options = _idempotent(idempotency_key)
        return self._call(lambda c: _invoice(c.v1.invoices.add_lines(invoice_id, params=params, options=options)))

    def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str, auto_advance: bool | None = None
    ) -> StripeInvoice:
        """``POST /v1/invoices/{id}/finalize`` (with ``auto_advance`` when given)."""
        params: InvoiceFinalizeInvoiceParams = {} if auto_advance is None else {"auto_advance": auto_advance}
        options = _idempotent(idempotency_key)
        return self._call(
            lambda c: _invoice(c.v1.invoices.finalize_invoice(invoice_id, params=params, options=options))
        )

    def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        """``POST /v1/invoices/{id}/pay`` off-session.

        Stripe's refusal of an invoice it has already paid (a concurrent payment won) is
        ``InvoiceAlreadyPaid``; of a customer without a default payment method, ``PaymentMethodMissing``.
        Stripe answers a key again with the answer it saved for it, for 24 hours: a refusal for want of a
        payment method that Stripe's customer has by now is stale, and the invoice is paid under the key
        that names that payment method (one more key per payment method, never a second charge: Stripe
        pays an invoice once).
        """
        return self._pay(invoice_id, idempotency_key, again=False)

    def _pay(self, invoice_id: str, idempotency_key: str, *, again: bool) -> StripeInvoice:
        params: InvoicePayParams = {"off_session": True}
        options = _idempotent(idempotency_key)
        try:
            return self._call(lambda c: _invoice(c.v1.invoices.pay(invoice_id, params=params, options=options)))
        except (StripeRequestRejected, StripeObjectNotFound) as refused:
            if isinstance(refused, IdempotencyKeyReused):
                raise
            error, method = self._pay_refusal(invoice_id, refused)
            if method is not None and not again:
                return self._pay(invoice_id, f"{idempotency_key}:{method}", again=True)
            raise error from None

    def _pay_refusal(self, invoice_id: str, refused: PaymentGatewayError) -> tuple[PaymentGatewayError, str | None]:
        """What Stripe's refusal to pay ``invoice_id`` means (already paid, no payment method, or
        ``refused``), and the payment method to pay with under a new key if the refusal was stale."""
        message, code, request_id = str(refused), refused.code, refused.request_id
        if _ALREADY_PAID.search(message):
            return InvoiceAlreadyPaid(message, code=code, request_id=request_id), None
        named_no_method = _NO_PAYMENT_METHOD.search(message) is not None
        if not named_no_method and (code is not None or getattr(refused, "param", None) is not None):
            return refused, None
        # Worded otherwise, a refusal naming no code and no parameter is about the invoice's state; and a
        # refusal for want of a payment method may be the one Stripe saved under the key before there was
        # one. Stripe's invoice and customer tell.
        missing = PaymentMethodMissing(message, code=code, request_id=request_id)
        state = self._payment_state(invoice_id)
        if state is None:
            return (missing if named_no_method else refused), None
        if state.status == "paid":
            return InvoiceAlreadyPaid(message, code=code, request_id=request_id), None
        if named_no_method and state.status == "open" and state.method is not None:
            return missing, state.method
        if named_no_method or state.without_payment_method:
            return missing, None
        return refused, None

    def _payment_state(self, invoice_id: str) -> _PaymentState | None:
        """Stripe's status of the invoice and the payment method it would charge (the invoice's default,
        else its customer's); ``None`` if the invoice cannot be read."""
        params: InvoiceRetrieveParams = {"expand": ["customer"]}
        try:
            # As a plain dict: an answer without a field is read as the field's absence.
            invoice = self._call(lambda c: c.v1.invoices.retrieve(invoice_id, params=params).to_dict())
        except PaymentGatewayError:
            return None
        customer = invoice.get("customer")
        customer_read = isinstance(customer, dict)
        settings = (customer.get("invoice_settings") if isinstance(customer, dict) else None) or {}
        method = (
            invoice.get("default_payment_method")
            or invoice.get("default_source")
            or settings.get("default_payment_method")
            or (customer.get("default_source") if isinstance(customer, dict) else None)
        )
        if isinstance(method, dict):  # expanded
            method = method.get("id")
        return _PaymentState(
            invoice.get("status"), method if isinstance(method, str) and method else None, customer_read
        )

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> StripeInvoice:
        """``POST /v1/invoices/{id}/void``."""
        options = _idempotent(idempotency_key)
        return self._call(lambda c: _invoice(c.v1.invoices.void_invoice(invoice_id, options=options)))

    def retrieve_invoice(self, invoice_id: str) -> StripeInvoice:
        """``GET /v1/invoices/{id}``."""
        return self._call(lambda c: _invoice(c.v1.invoices.retrieve(invoice_id)))

    def list_invoices(self, customer_id: str, *, status: str | None = None) -> list[StripeInvoice]:
        """``GET /v1/invoices?customer=`` following every page."""
        params: InvoiceListParams = {"customer": customer_id, "limit": _LIST_PAGE_SIZE}
        if status:
            params["status"] = status
        return self._call(lambda c: [_invoice(i) for i in c.v1.invoices.list(params=params).auto_paging_iter()])

    def list_invoice_lines(self, invoice_id: str) -> list[StripeInvoiceLine]:
        """``GET /v1/invoices/{id}/lines`` following every page."""
        params: InvoiceLineItemListParams = {"limit": _LIST_PAGE_SIZE}
        return self._call(
            lambda c: [
                _invoice_line(line)
                for line in c.v1.invoices.line_items.list(invoice_id, params=params).auto_paging_iter()
            ]
        )

    # --- credit notes -----------------------------------------------------------------------------

    def preview_credit_note(self, request: CreditNoteRequest) -> StripeCreditNote:
        """``GET /v1/credit_notes/preview`` with the parameters ``create_credit_note`` sends."""
        params: CreditNotePreviewParams = _credit_note_params(request)
        return self._call(lambda c: _credit_note(c.v1.credit_notes.preview(params=params)))

    def create_credit_note(self, request: CreditNoteRequest, *, idempotency_key: str) -> StripeCreditNote:
        """``POST /v1/credit_notes``: the invoice's lines by amount, settled as ``request.settlement`` says."""
        params = _credit_note_params(request)
        options = _idempotent(idempotency_key)
        return self._call(lambda c: _credit_note(c.v1.credit_notes.create(params=params, options=options)))

    def list_credit_notes(self, invoice_id: str) -> list[StripeCreditNote]:
        """``GET /v1/credit_notes?invoice=`` following every page."""
        params: CreditNoteListParams = {"invoice": invoice_id, "limit": _LIST_PAGE_SIZE}
        return self._call(lambda c: [_credit_note(n) for n in c.v1.credit_notes.list(params=params).auto_paging_iter()])

    # --- events -----------------------------------------------------------------------------------

    def retrieve_event(self, event_id: str) -> StripeEvent:
        """``GET /v1/events/{id}``."""
        return self._call(lambda c: _event(c.v1.events.retrieve(event_id)))

    def list_events(self, *, created_after: int, types: Sequence[str] = ()) -> Iterator[StripeEvent]:
        """``GET /v1/events?created[gt]=`` following every page (read eagerly, errors translated)."""
        params: EventListParams = {"created": {"gt": int(created_after)}, "limit": _LIST_PAGE_SIZE}
        if types:
            params["types"] = list(types)
        events = self._call(lambda c: [_event(e) for e in c.v1.events.list(params=params).auto_paging_iter()])
        return iter(events)
