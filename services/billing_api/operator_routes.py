"""The operator's JSON endpoints (``/operator/...``), for members of the Cognito operator group only.

Accounts (list, create, show, change, disable, enable), invoices across accounts (list, retry, void),
a period's run and the audit log. Every change goes through the same use cases as the ``billing``
command and is audited with the operator's user name. Validation errors name the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from billing_api import representation
from billing_api.routes import components, einvoice_response
from billing_api.web import InvalidParameter, error_response, identity, writes_to_stripe
from billing_core.domain.account_profile import (
    InvalidAccountField,
    valid_email,
)
from billing_core.domain.costs import Period
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Account, Invoice
from billing_core.errors import InvalidStoredRecord
from billing_core.use_cases.operator_accounts import (
    AccountExists,
    AccountNotFound,
    AccountProfile,
    OperatorAccounts,
    valid_account_id,
)
from billing_core.use_cases.operator_invoices import InvoiceNotFound, InvoiceNotRetryable, OperatorInvoices

operator_api = Blueprint("operator", __name__, url_prefix="/operator")

_PROFILE_FIELDS = {
    "name",
    "email",
    "costScope",
    "baseFee",
    "language",
    "country",
    "address",
    "vatId",
    "buyerReference",
    "invoiceEmails",
}
_STATUSES = {status.value for status in InvoiceStatus}


def _accounts() -> OperatorAccounts:
    return components().use_cases.operator_accounts


def _invoices() -> OperatorInvoices:
    return components().use_cases.operator_invoices


def _actor() -> str:
    caller = identity()
    return f"operator:{caller.username or caller.sub}"


@operator_api.errorhandler(InvalidAccountField)
def _invalid_field(error: InvalidAccountField) -> Response:
    # The operator's own input, named back to them; nothing else is in the message.
    response = error_response(400, "invalid_field", str(error))
    return response


@operator_api.errorhandler(AccountNotFound)
@operator_api.errorhandler(InvoiceNotFound)
def _not_found(_error: Exception) -> Response:
    return error_response(404, "not_found", "Not found.")


@operator_api.errorhandler(AccountExists)
@operator_api.errorhandler(InvoiceNotRetryable)
def _conflict(error: Exception) -> Response:
    return error_response(409, "conflict", str(error))


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if request.content_length and body is None:
        raise InvalidParameter("the body is not JSON")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidParameter("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidAccountField(name, "must be a string")
    return value


def _profile(body: dict[str, Any]) -> tuple[AccountProfile, tuple[str, ...]]:
    """The profile a JSON body gives; ``null`` for costScope / baseFee clears them."""
    unknown = set(body) - _PROFILE_FIELDS - {"id", "reason"}
    if unknown:
        raise InvalidAccountField(sorted(unknown)[0], "is not a field of an account")
    clear = tuple(
        field
        for key, field in (("costScope", "cost_scope"), ("baseFee", "base_fee_override"))
        if key in body and body[key] is None
    )
    address = body.get("address")
    if address is not None and (not isinstance(address, dict) or set(address) != {"line1", "postalCode", "city"}):
        raise InvalidAccountField("address", "must be an object with line1, postalCode and city")
    name, email, language, country, vat_id = (
        _text(body, key) for key in ("name", "email", "language", "country", "vatId")
    )
    invoice_emails = body.get("invoiceEmails")
    if invoice_emails is not None and (
        not isinstance(invoice_emails, list) or not all(isinstance(address, str) for address in invoice_emails)
    ):
        raise InvalidAccountField("invoice e-mail", "must be a list of e-mail addresses")
    base_fee = body.get("baseFee")
    if base_fee is not None and not isinstance(base_fee, str):
        raise InvalidAccountField("base fee", 'must be a string such as "25.00"')
    profile = AccountProfile.from_text(
        name=name,
        email=email,
        cost_scope=_text(body, "costScope"),
        base_fee=base_fee,
        language=language,
        country=country,
        vat_id=vat_id,
        buyer_reference=_text(body, "buyerReference"),
        invoice_emails=invoice_emails,
        address=None if address is None else (str(address["line1"]), str(address["postalCode"]), str(address["city"])),
    )
    return profile, clear


def _account_id(value: str) -> str:
    try:
        return valid_account_id(value)
    except InvalidAccountField:
        raise AccountNotFound(value) from None


def account_json(account: Account, *, with_newest_invoice: bool = False) -> dict[str, Any]:
    """An account as the operator API shows it (with its newest invoice if asked)."""
    last: dict[str, Any] | None = None
    if with_newest_invoice:
        newest = _invoices().newest_for_account(account.account_id)
        if newest is not None:
            last = {
                "invoiceId": newest.invoice_id,
                "period": newest.period.label,
                "status": newest.status.value,
                "amount": representation.money(newest.amount),
                "currency": newest.currency,
            }
    method = account.payment_method
    return {
        "accountId": account.account_id,
        "name": account.name,
        "email": account.email,
        "costScope": account.cost_scope,
        "baseFee": representation.money(account.base_fee_override),
        "language": account.language,
        "country": account.country,
        "vatId": account.vat_id,
        "buyerReference": account.buyer_reference,
        "address": None
        if account.address is None
        else {"line1": account.address.line1, "postalCode": account.address.postal_code, "city": account.address.city},
        "stripeCustomerId": account.stripe_customer_id,
        "paymentMethod": {
            "status": "active" if method else "none",
            "type": method.type if method else None,
            "brand": method.brand if method else None,
            "last4": method.last4 if method else None,
        },
        "disabled": account.disabled,
        "disabledAt": account.disabled_at,
        "lastInvoice": last,
        **representation.invoice_recipients(account),
    }


@operator_api.get("/accounts")
def list_accounts() -> Response:
    """Every account, with its newest invoice; unreadable items are listed by key with their problem."""
    accounts, unreadable = [], []
    for entry in _accounts().all_accounts():
        if isinstance(entry, InvalidStoredRecord):
            unreadable.append({"key": str(entry.record_id), "problem": str(entry)})
        else:
            accounts.append(account_json(entry, with_newest_invoice=True))
    accounts.sort(key=lambda item: str(item["accountId"]))
    return jsonify(accounts=accounts, unreadable=unreadable)


@operator_api.post("/accounts")
@writes_to_stripe("create-account", operator=True)
def create_account() -> tuple[Response, int]:
    """A new account and its Stripe customer (the same body again returns the same account)."""
    body = _body()
    profile, _ = _profile(body)
    account_id = _text(body, "id")
    created = _accounts().create(
        profile,
        actor=_actor(),
        account_id=account_id,
        reason=_text(body, "reason"),
    )
    return jsonify(account_json(created)), 201


@operator_api.get("/accounts/<account_id>")
def show_account(account_id: str) -> Response:
    """One account."""
    return jsonify(account_json(_accounts().get(_account_id(account_id)), with_newest_invoice=True))


@operator_api.patch("/accounts/<account_id>")
@writes_to_stripe("update-account", operator=True)
def update_account(account_id: str) -> Response:
    """Change the fields given; ``null`` clears costScope or baseFee."""
    body = _body()
    profile, clear = _profile(body)
    updated = _accounts().update(
        _account_id(account_id), profile, actor=_actor(), reason=_text(body, "reason"), clear=clear
    )
    return jsonify(account_json(updated))


@operator_api.post("/accounts/<account_id>/disable")
def disable_account(account_id: str) -> Response:
    """Stop billing the account; ``reason`` is required."""
    reason = _text(_body(), "reason") or ""
    return jsonify(account_json(_accounts().disable(_account_id(account_id), actor=_actor(), reason=reason)))


@operator_api.post("/accounts/<account_id>/enable")
def enable_account(account_id: str) -> Response:
    """Bill the account again."""
    reason = _text(_body(), "reason")
    return jsonify(account_json(_accounts().enable(_account_id(account_id), actor=_actor(), reason=reason)))


@operator_api.post("/accounts/<account_id>/invite")
def invite_admin(account_id: str) -> Response:
    """Make ``email`` an admin of the account (Cognito mails the temporary password; locally it is answered)."""
    body = _body()
    email = _text(body, "email")
    if not email:
        raise InvalidAccountField("email", "say whom to invite")
    user = _accounts().invite(_account_id(account_id), email, actor=_actor(), reason=_text(body, "reason"))
    return jsonify(
        email=valid_email(email), sub=user.sub, created=user.created, temporaryPassword=user.temporary_password
    )


@operator_api.get("/invoices")
def list_invoices() -> Response:
    """Invoices of every account, newest period first; filters: period, status, account."""
    unknown = set(request.args) - {"period", "status", "account"}
    if unknown:
        raise InvalidParameter("unknown query parameter")
    period = request.args.get("period")
    if period is not None:
        try:
            period = Period.parse(period).label
        except ValueError:
            raise InvalidParameter("period must be YYYY-MM") from None
    status = request.args.get("status")
    if status is not None and status not in _STATUSES:
        raise InvalidParameter("unknown status")
    account = request.args.get("account")
    entries = _invoices().all_invoices(
        period_label=period, status=status, account_id=None if account is None else _account_id(account)
    )
    invoices = [operator_invoice_json(e) for e in entries if not isinstance(e, InvalidStoredRecord)]
    invoices.sort(key=lambda item: str(item["invoiceId"]), reverse=True)
    invoices.sort(key=lambda item: (item["period"] or {}).get("start") or "", reverse=True)
    return jsonify(invoices=invoices)


@operator_api.post("/invoices/<invoice_id>/retry")
@writes_to_stripe("retry", operator=True)
def retry_invoice(invoice_id: str) -> Response:
    """Pay again now; says whether Stripe reports it paid, declined, or needing the customer (SCA)."""
    outcome = _invoices().retry(invoice_id, actor=_actor(), reason=_text(_body(), "reason"))
    return jsonify(
        invoiceId=invoice_id,
        stripeStatus=outcome.stripe_status,
        paid=outcome.paid,
        declined=outcome.declined,
        actionUrl=outcome.action_url,
    )


@operator_api.get("/invoices/<invoice_id>/einvoice")
def invoice_einvoice(invoice_id: str) -> Response:
    """Any account's e-invoice file: ``format=xrechnung`` (XML) or ``zugferd`` (PDF)."""
    unknown = set(request.args) - {"format"}
    if unknown:
        raise InvalidParameter("unknown query parameter")
    return einvoice_response(_invoices().get(invoice_id))


@operator_api.post("/invoices/<invoice_id>/void")
@writes_to_stripe("void", operator=True)
def void_invoice(invoice_id: str) -> Response:
    """Void at Stripe and on the record; ``reason`` is required."""
    voided = _invoices().void(invoice_id, actor=_actor(), reason=_text(_body(), "reason") or "")
    return jsonify(operator_invoice_json(voided))


def operator_invoice_json(record: Invoice) -> dict[str, Any]:
    """An invoice as the operator sees it: the customer's view, its account, attempts and lines (to credit)."""
    return {
        **representation.invoice(record),
        "accountId": record.account_id,
        "attemptCount": record.payment.attempt_count,
        "lines": representation.invoice_lines(record),
    }


@operator_api.get("/runs/<period>")
def show_run(period: str) -> Response:
    """A period's run: state, counts, invoices per status, skipped accounts with why."""
    try:
        month = Period.parse(period)
    except ValueError:
        raise InvalidParameter("period must be YYYY-MM") from None
    overview = components().use_cases.run_overview(month)
    record, statuses = overview.record, overview.invoices_by_status
    run = (
        None
        if record is None
        else {
            "status": record.status.value,
            "costsEstimated": record.costs_estimated,
            "trigger": record.trigger,
            "accounts": record.accounts,
            "skipped": record.skipped,
            "enqueued": record.enqueued,
            "costRequests": record.cost_requests,
            "startedAt": record.started_at,
            "updatedAt": record.updated_at,
            "skippedAccounts": [{"accountId": k, "reason": v} for k, v in sorted(record.skipped_reasons.items())],
        }
    )
    return jsonify(period=month.label, run=run, invoicesByStatus=dict(sorted(statuses.items())))


@operator_api.get("/audit")
def audit_log() -> Response:
    """The newest operator actions (``account``, ``limit`` up to 500)."""
    unknown = set(request.args) - {"account", "limit"}
    if unknown:
        raise InvalidParameter("unknown query parameter")
    limit_text = request.args.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 500:
        raise InvalidParameter("limit must be 1..500")
    account = request.args.get("account")
    entries = _accounts().audit_entries(
        account_id=None if account is None else _account_id(account), limit=int(limit_text)
    )
    return jsonify(
        entries=[
            {
                "at": e.at,
                "atIso": datetime.fromtimestamp(e.at / 1000, UTC).isoformat(timespec="seconds"),
                "actor": e.actor,
                "action": e.action,
                "accountId": e.account_id,
                "before": dict(e.before),
                "after": dict(e.after),
                "reason": e.reason,
            }
            for e in entries
        ]
    )
