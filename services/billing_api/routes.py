"""The billing endpoints: each reads the caller's identity, calls one use case and renders JSON."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from billing_api import representation
from billing_api.auth import TokenVerifier, bearer_token
from billing_api.openapi import openapi_document
from billing_api.web import InvalidParameter, error_response, identity, public, request_id, writes_to_stripe
from billing_core.bootstrap import ApiUseCases
from billing_core.domain.costs import Period
from billing_core.domain.errors import BillingDomainError
from billing_core.domain.records import Invoice
from billing_core.errors import BillingError, InvalidStoredRecord
from billing_core.use_cases.billing_overview import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CreditNoteNotFound,
    CustomerBilling,
    InvoiceNotFound,
    InvoiceNotPayable,
    InvoicePaid,
)
from billing_core.use_cases.cost_preview import CostPreviewService, CostPreviewUnavailable
from billing_core.use_cases.einvoices import FORMATS, EInvoiceFile

log = logging.getLogger(__name__)

# Invoice ids are ``inv_<YYYY-MM>_<userId>``; anything else cannot exist, and an overlong key would
# be a DynamoDB validation error rather than "not found".
_INVOICE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
_CREDIT_NOTE_ID = _INVOICE_ID  # ``cn_<YYYY-MM>_<userId>_<n>``: the same characters
_LIMIT = re.compile(r"^[0-9]{1,3}$")

api = Blueprint("api", __name__)

# Query parameters each endpoint understands; any other is a 400, so a typo (``limt=5``) is
# reported instead of silently ignored. Public endpoints are left lenient (probes add their own).
QUERY_PARAMETERS = {
    "api.billing": frozenset({"limit", "cursor"}),
    "api.invoice": frozenset(),
    "api.setup_intent": frozenset(),
    "api.pay_invoice": frozenset(),
    "api.invoice_einvoice": frozenset({"format"}),
    "api.credit_note_einvoice": frozenset({"format"}),
}


@dataclass
class ApiComponents:
    """What the views need, built once by the app factory."""

    use_cases: ApiUseCases
    verifier: TokenVerifier
    cost_preview: CostPreviewService | None  # None: the billing policy cannot price costs (no FX rate)


def components() -> ApiComponents:
    """The current app's components."""
    parts: ApiComponents = current_app.extensions["billing_api"]
    return parts


def _billing() -> CustomerBilling:
    return components().use_cases.customer_billing


@api.before_request
def _known_query_parameters_only() -> None:
    allowed = QUERY_PARAMETERS.get(request.endpoint or "")
    if allowed is not None and not set(request.args) <= allowed:
        raise InvalidParameter("unknown query parameter")


@api.get("/healthz")
@public
def healthz() -> Response:
    """Liveness for the load balancer and the local stack: the process serves requests."""
    return jsonify(status="ok")


@api.get("/openapi.json")
@public
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(openapi_document())


@api.get("/billing")
def billing() -> Response:
    """The caller's invoices (newest first, paged), payment method status and current costs."""
    limit = _limit(request.args.getlist("limit"))
    cursors = request.args.getlist("cursor")
    if len(cursors) > 1:
        raise InvalidParameter("cursor given more than once")
    parts = components()
    account_id = identity().account_id
    billing = parts.use_cases.customer_billing
    page = billing.invoices(account_id, limit=limit, cursor=cursors[0] if cursors else None)
    method = billing.payment_method(account_id)
    return jsonify(
        accountId=account_id,
        invoices=[_with_credit_notes(item) for item in page.items],
        nextCursor=page.next_cursor,
        paymentMethod=representation.payment_method(method),
        **representation.invoice_recipients(billing.account(account_id)),
        currentCosts=_current_costs(parts, account_id),
        previousMonth=_previous_month(parts),
    )


def _previous_month(parts: ApiComponents) -> dict[str, Any] | None:
    """Last month and whether its invoice waits for AWS's final costs (``None``: run state unknown)."""
    month = Period.previous(datetime.now(UTC))
    try:
        waiting = parts.use_cases.customer_billing.waiting_for_final_costs(month)
    except BillingError:
        return None  # the page still shows everything else
    if waiting is None:
        return None
    return {"period": month.label, "waitingForFinalCosts": waiting}


@api.get("/billing/invoices/<invoice_id>")
def invoice(invoice_id: str) -> Response:
    """One of the caller's invoices with its breakdown and Stripe links."""
    if not _INVOICE_ID.match(invoice_id):
        raise InvoiceNotFound("not an invoice id")
    return jsonify(_with_credit_notes(_billing().invoice(identity().account_id, invoice_id)))


def _with_credit_notes(record: Invoice) -> dict[str, Any]:
    """The invoice as the customer sees it, with the credit notes issued on it."""
    notes = _billing().credit_notes(record)
    return {**representation.invoice(record), "creditNotes": [representation.credit_note(note) for note in notes]}


@api.get("/billing/invoices/<invoice_id>/einvoice")
def invoice_einvoice(invoice_id: str) -> Response:
    """The e-invoice of one of the caller's invoices: ``format=xrechnung`` (XML) or ``zugferd`` (PDF)."""
    if not _INVOICE_ID.match(invoice_id):
        raise InvoiceNotFound("not an invoice id")
    return einvoice_response(_billing().invoice(identity().account_id, invoice_id))


@api.get("/billing/invoices/<invoice_id>/credit-notes/<credit_note_id>/einvoice")
def credit_note_einvoice(invoice_id: str, credit_note_id: str) -> Response:
    """The e-invoice of a credit note of one of the caller's invoices (another account's is a 404)."""
    if not _INVOICE_ID.match(invoice_id):
        raise InvoiceNotFound("not an invoice id")
    if not _CREDIT_NOTE_ID.match(credit_note_id):
        raise CreditNoteNotFound("not a credit note id")
    format_name = requested_format()
    note = _billing().credit_note(identity().account_id, invoice_id, credit_note_id)
    stored = components().use_cases.credit_note_file(note, format_name)
    if stored is None:
        return error_response(404, "not_found", "This credit note has no e-invoice yet.")
    return file_response(stored)


def einvoice_response(found: Invoice) -> Response:
    """The stored e-invoice file of ``found`` in the requested ``format`` (default xrechnung), or a 404."""
    stored = components().use_cases.einvoice_file(found, requested_format())
    if stored is None:
        return error_response(404, "not_found", "This invoice has no e-invoice yet.")
    return file_response(stored)


def requested_format() -> str:
    """The ``format`` query parameter of an e-invoice download: xrechnung (the default) or zugferd."""
    format_name = request.args.get("format", "xrechnung")
    if format_name not in FORMATS:
        raise InvalidParameter("format must be xrechnung or zugferd")
    return format_name


def file_response(stored: EInvoiceFile) -> Response:
    """A stored e-invoice file as a download, never cached on the way."""
    response = Response(stored.body, mimetype=stored.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{stored.file_name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@api.post("/billing/invoices/<invoice_id>/pay")
@writes_to_stripe("pay")
def pay_invoice(invoice_id: str) -> Response:
    """Pay one of the caller's failed or open invoices now with the default payment method.

    409 if it is paid (a racing payment may have paid it a moment ago: it was charged once) or cannot be
    paid; without a saved payment method the answer is ``declined: "no_payment_method"`` (save one first).
    """
    if not _INVOICE_ID.match(invoice_id):
        raise InvoiceNotFound("not an invoice id")
    try:
        attempt = _billing().pay_now(identity().account_id, invoice_id)
    except InvoicePaid:
        return error_response(409, "conflict", "This invoice is already paid.")
    except InvoiceNotPayable:
        return error_response(409, "conflict", "This invoice cannot be paid now.")
    return jsonify(
        invoiceId=invoice_id,
        paid=attempt.paid,
        stripeStatus=attempt.stripe_status,
        declined=attempt.declined,
        actionUrl=attempt.action_url,
    )


@api.post("/billing/setup-intent")
@writes_to_stripe("setup-intent")
def setup_intent() -> Response:
    """A SetupIntent for saving a card or SEPA debit mandate on the caller's one Stripe customer."""
    caller = identity()
    setup = _billing().start_payment_setup(
        caller.account_id,
        request_key=request_id(),
        email=caller.email,
        access_token=bearer_token(request.headers.get("Authorization")) or "",
    )
    log.info("setup intent created", extra={"userId": caller.account_id, "setupIntentId": setup.setup_intent_id})
    return jsonify(representation.setup_intent(setup))


def _limit(values: list[str]) -> int:
    if not values:
        return DEFAULT_PAGE_SIZE
    if len(values) > 1 or not _LIMIT.match(values[0]) or not 1 <= int(values[0]) <= MAX_PAGE_SIZE:
        raise InvalidParameter(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(values[0])


def _current_costs(parts: ApiComponents, account_id: str) -> dict[str, Any] | None:
    # The page is still useful without the preview, so its failure is logged, not raised.
    if parts.cost_preview is None:
        return None
    try:
        # An account without a record yet (no card saved) is previewed like a new one: whole payer, base fee.
        account = parts.use_cases.customer_billing.account(account_id)
        return representation.current_costs(parts.cost_preview.preview(account))
    except (CostPreviewUnavailable, BillingDomainError, InvalidStoredRecord) as error:
        log.warning("cost preview unavailable", extra={"userId": account_id, "reason": str(error)})
        return None
