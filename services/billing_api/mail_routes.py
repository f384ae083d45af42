"""The e-mail of documents: the operator's view and resend, and the customer's invoice recipients.

GET  /operator/mail/undelivered              documents whose latest e-mail reached nobody, and why
GET  /operator/documents/{id}/mail           one document's latest sending, per recipient
POST /operator/documents/{id}/resend         send it again ({"to": [...], "reason": ...}), audited: 202
PUT  /billing/invoice-emails                 the signed-in admin's account: who gets the invoices
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from billing_api import representation
from billing_api.operator_routes import _actor, _body, operator_api
from billing_api.routes import QUERY_PARAMETERS, api, components
from billing_api.web import InvalidParameter, error_response, identity
from billing_core.domain.account_profile import InvalidAccountField
from billing_core.domain.deliveries import Delivery, DocumentMailStatus, UnknownDocument
from billing_core.errors import SettingsError
from billing_core.use_cases.document_mail import DocumentMailer, DocumentNotMailable
from billing_core.use_cases.operator_accounts import AccountNotFound, AccountProfile

QUERY_PARAMETERS["api.invoice_emails"] = frozenset()


def _mailer() -> DocumentMailer:
    mailer = components().use_cases.document_mailer
    if mailer is None:
        raise SettingsError("e-mail is not configured (events table, EINVOICE_BUCKET)")
    return mailer


@operator_api.errorhandler(DocumentNotMailable)
def _not_mailable(error: DocumentNotMailable) -> Response:
    return error_response(409, "conflict", str(error))


@operator_api.errorhandler(UnknownDocument)
def _unknown(_error: UnknownDocument) -> Response:
    return error_response(404, "not_found", "no such invoice or credit note")


def _delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "recipient": delivery.recipient,
        "state": delivery.state.value,
        "sentAt": delivery.sent_at,
        "messageId": delivery.message_id,
        "reason": delivery.reason,
        "possibleDuplicate": delivery.possible_duplicate,
    }


def mail_status_json(status: DocumentMailStatus) -> dict[str, Any]:
    """A document's e-mail as the API shows it."""
    return {
        "state": status.state.value,
        "text": status.text,
        "sending": status.round_number,
        "reason": status.reason,
        "deliveries": [_delivery_json(delivery) for delivery in status.deliveries],
    }


def _document_id(value: str) -> str:
    if len(value) > 200 or not value.startswith(("inv_", "cn_")):
        raise UnknownDocument(value)
    return value


@operator_api.get("/mail/undelivered")
def undelivered() -> Response:
    """Every document whose latest e-mail reached nobody."""
    found = _mailer().undelivered()
    return jsonify(
        documents=[
            {"documentId": mailing.document_id, "accountId": mailing.account_id, **mail_status_json(status)}
            for mailing, status in found
        ]
    )


@operator_api.get("/documents/<document_id>/mail")
def document_mail(document_id: str) -> Response:
    """One document's latest sending."""
    return jsonify(documentId=document_id, **mail_status_json(_mailer().status_of(_document_id(document_id))))


@operator_api.post("/documents/<document_id>/resend")
def resend(document_id: str) -> tuple[Response, int]:
    """Queue the document's e-mail again (to ``to``, else the account's recipients); the worker sends it."""
    body = _body()
    unknown = set(body) - {"to", "reason"}
    if unknown:
        raise InvalidParameter(f"{sorted(unknown)[0]} is not a field of a resend")
    to = body.get("to", [])
    if not isinstance(to, list) or not all(isinstance(address, str) for address in to):
        raise InvalidParameter("to must be a list of e-mail addresses")
    mailing = _mailer().resend(_document_id(document_id), to=tuple(to), actor=_actor())
    return jsonify(documentId=document_id, sending=mailing.round_number, recipients=list(mailing.recipients)), 202


@api.put("/billing/invoice-emails")
def invoice_emails() -> Response | tuple[Response, int]:
    """The signed-in admin sets who gets the account's invoices and credit notes (audited, 1 to 10)."""
    body = _body()
    addresses = body.get("invoiceEmails")
    if set(body) != {"invoiceEmails"} or not isinstance(addresses, list) or not addresses:
        raise InvalidParameter("give invoiceEmails: a list of one to ten e-mail addresses")
    if not all(isinstance(address, str) for address in addresses):
        raise InvalidParameter("invoiceEmails must be e-mail addresses")
    caller = identity()
    accounts = components().use_cases.operator_accounts
    try:
        account = accounts.update(
            caller.account_id,
            AccountProfile.from_text(invoice_emails=addresses),
            actor=f"admin:{caller.email or caller.sub}",
            reason="changed on the Billing tab",
        )
    except InvalidAccountField as invalid:
        return error_response(400, "invalid_parameter", str(invalid))
    except AccountNotFound:
        return error_response(409, "conflict", "save a payment method first: the account does not exist yet")
    return jsonify(representation.invoice_recipients(account))
