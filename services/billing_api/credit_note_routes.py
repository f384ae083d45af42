"""The operator's credit notes (``/operator/invoices/{id}/credit-notes``, ``/operator/credit-notes/{id}``).

A credit note is proposed first (``.../credit-notes/preview``: what Stripe would credit, net, VAT and
gross), then issued with the same body; both refuse with 409 and the reason when the invoice cannot
be credited so. Amounts in and out are strings with two decimals, as everywhere in this API.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Response, jsonify, request

from billing_api.operator_routes import _actor, _body, operator_api
from billing_api.representation import currency, money
from billing_api.routes import components, file_response, requested_format
from billing_api.web import InvalidParameter, error_response, writes_to_stripe
from billing_core.domain.credit_notes import CreditLine, CreditNote, CreditRefused, CreditRequest, Settlement
from billing_core.use_cases.credit_notes import CreditNotes

_REQUEST_FIELDS = {"reason", "full", "lines", "settlement"}


def _credit_notes() -> CreditNotes:
    return components().use_cases.credit_notes


@operator_api.errorhandler(CreditRefused)
def _refused(error: CreditRefused) -> Response:
    return error_response(409, "conflict", str(error))


def credit_request(body: dict[str, Any]) -> CreditRequest:
    """The credit request of a JSON body: ``reason``, ``full`` or ``lines`` ({kind: "10.00"}), ``settlement``."""
    unknown = set(body) - _REQUEST_FIELDS
    if unknown:
        raise InvalidParameter(f"{sorted(unknown)[0]} is not a field of a credit note request")
    reason, full, lines, settlement = (
        body.get("reason"),
        body.get("full", False),
        body.get("lines", {}),
        body.get("settlement"),
    )
    if not isinstance(reason, str):
        raise InvalidParameter("reason must be a string")
    if not isinstance(full, bool):
        raise InvalidParameter("full must be true or false")
    if not isinstance(lines, dict) or not all(isinstance(v, str) for v in lines.values()):
        raise InvalidParameter('lines must map invoice lines to net amounts as strings ({"base-fee": "10.00"})')
    amounts = {}
    for kind, text in lines.items():
        try:
            amounts[str(kind)] = Decimal(text)
        except InvalidOperation:
            raise InvalidParameter(f"lines.{kind} is not an amount") from None
    if settlement is not None and settlement not in {s.value for s in Settlement}:
        raise InvalidParameter("settlement must be pre_payment, refund, balance or out_of_band")
    return CreditRequest(
        reason=reason, lines=amounts, full=full, settlement=Settlement(settlement) if settlement else None
    )


def _line(line: CreditLine) -> dict[str, Any]:
    return {
        "line": line.kind,
        "description": line.description,
        "period": line.period.label,
        "net": money(line.net),
        "tax": money(line.tax),
    }


def credit_note_json(note: CreditNote) -> dict[str, Any]:
    """One credit note as the operator API shows it."""
    return {
        "creditNoteId": note.credit_note_id,
        "invoiceId": note.invoice_id,
        "accountId": note.account_id,
        "number": note.number,
        "state": note.state.value,
        "full": note.full,
        "currency": currency(note.currency),
        "net": money(note.net),
        "tax": money(note.tax),
        "gross": money(note.gross),
        "settlement": note.settlement.value,
        "reason": note.reason,
        "lines": [_line(line) for line in note.lines],
        "createdAt": note.created_at,
        "issuedAt": note.issued_at,
        "einvoice": {"xrechnung": note.einvoice_xml is not None, "zugferd": note.einvoice_pdf is not None},
    }


@operator_api.get("/invoices/<invoice_id>/credit-notes")
def list_credit_notes(invoice_id: str) -> Response:
    """The invoice's credit notes, first to last."""
    invoice = components().use_cases.operator_invoices.get(invoice_id)
    notes = _credit_notes().notes_of(invoice.invoice_id)
    return jsonify(invoiceId=invoice.invoice_id, creditNotes=[credit_note_json(note) for note in notes])


@operator_api.post("/invoices/<invoice_id>/credit-notes/preview")
@writes_to_stripe("credit-note-preview", operator=True)
def preview_credit_note(invoice_id: str) -> Response:
    """What the credit note would take back, as Stripe previews it (nothing is issued)."""
    proposal = _credit_notes().propose(invoice_id, credit_request(_body()))
    plan = proposal.plan
    return jsonify(
        invoiceId=invoice_id,
        number=proposal.invoice.stripe.number,
        full=plan.full,
        currency=currency(proposal.invoice.currency),
        net=money(plan.net),
        tax=money(plan.tax),
        gross=money(plan.gross),
        settlement=plan.settlement.value,
        lines=[_line(line) for line in plan.lines],
    )


@operator_api.post("/invoices/<invoice_id>/credit-notes")
@writes_to_stripe("credit-note", operator=True)
def issue_credit_note(invoice_id: str) -> tuple[Response, int]:
    """Issue the credit note (the same body as the preview); 201 with it."""
    note = _credit_notes().credit(invoice_id, credit_request(_body()), actor=_actor())
    return jsonify(credit_note_json(note)), 201


@operator_api.get("/credit-notes/<credit_note_id>/einvoice")
def credit_note_einvoice(credit_note_id: str) -> Response:
    """A credit note's e-invoice file: ``format=xrechnung`` (XML) or ``zugferd`` (PDF)."""
    if set(request.args) - {"format"}:
        raise InvalidParameter("unknown query parameter")
    format_name = requested_format()
    note = _credit_notes().get(credit_note_id)
    stored = components().use_cases.credit_note_file(note, format_name) if note else None
    if stored is None:
        return error_response(404, "not_found", "No such credit note, or no e-invoice for it yet.")
    return file_response(stored)
