"""Builders for Stripe API objects in the current API shape (PaymentMethods: ``instruments.py``).

Every builder returns a dict with every key that Stripe's own example object of the same type
carries (held to it by the contract test); values are filled truthfully, null where they do not apply.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from stripe_emulator.contract import API_VERSION
from stripe_emulator.errors import ParameterError
from stripe_emulator.taxes import percentage_json

_ALPHABET = string.ascii_letters + string.digits

PREFIX_TYPES = {
    "cus": "customer",
    "pm": "payment_method",
    "seti": "setup_intent",
    "setatt": "setup_attempt",
    "in": "invoice",
    "ii": "invoiceitem",
    "il": "line_item",
    "evt": "event",
    "we": "webhook_endpoint",
    "mandate": "mandate",
    "txr": "tax_rate",
    "cn": "credit_note",
    "cnli": "credit_note_line_item",
    "cbtxn": "customer_balance_transaction",
    "re": "refund",
    "txi": "tax_id",
}


def new_id(prefix: str) -> str:
    """A fresh Stripe-style id such as ``cus_4QFJOjw2pOmAGJ``."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def type_of_id(object_id: str) -> str | None:
    """The object type an id's prefix names, or None."""
    return PREFIX_TYPES.get(object_id.split("_", 1)[0]) if "_" in object_id else None


def empty_address() -> dict[str, Any]:
    """An address with every field null."""
    return {k: None for k in ("city", "country", "line1", "line2", "postal_code", "state")}


def list_object(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """Stripe's list envelope."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def build_customer(customer_id: str, created: int, params: dict[str, Any]) -> dict[str, Any]:
    """A Customer with defaults for every field."""
    settings = params.get("invoice_settings") or {}
    return {
        "id": customer_id,
        "object": "customer",
        "address": {**empty_address(), **(params.get("address") or {})} if params.get("address") else None,
        "balance": 0,  # the ledger's transactions (``Balances``) change it
        "created": created,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": params.get("description"),
        "discount": None,
        "email": params.get("email"),
        "invoice_prefix": params.get("invoice_prefix") or secrets.token_hex(4).upper(),
        "invoice_settings": {
            "custom_fields": settings.get("custom_fields"),
            "default_payment_method": None,
            "footer": settings.get("footer"),
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "name": params.get("name"),
        "next_invoice_sequence": 1,
        "phone": params.get("phone"),
        "preferred_locales": list(params.get("preferred_locales") or []),
        "shipping": None,
        "tax_exempt": params.get("tax_exempt") or "none",
        "test_clock": None,
        # business_name and individual_name: only when set (PRESENT_ONLY_WHEN_SET)
        **{field: params[field] for field in ("business_name", "individual_name") if params.get(field)},
    }


def build_setup_intent(created: int, params: dict[str, Any]) -> dict[str, Any]:
    """A SetupIntent in ``requires_payment_method``.

    Without ``allowed_payment_method_types`` Stripe offers the account's enabled methods (here card
    and SEPA debit) through automatic payment methods.
    """
    seti_id = new_id("seti")
    allowed = params.get("allowed_payment_method_types")
    automatic = params.get("automatic_payment_methods")
    if allowed is None:
        automatic = {"allow_redirects": "always", "enabled": True, **(automatic or {})}
    excluded = params.get("excluded_payment_method_types") or []
    types = [t for t in (allowed or ["card", "sepa_debit"]) if t not in excluded]
    return {
        "id": seti_id,
        "object": "setup_intent",
        "allowed_payment_method_types": list(allowed) if allowed else None,
        "application": None,
        "automatic_payment_methods": automatic,
        "cancellation_reason": None,
        "client_secret": f"{seti_id}_secret_" + "".join(secrets.choice(_ALPHABET) for _ in range(32)),
        "created": created,
        "customer": params.get("customer"),
        "customer_account": None,
        "description": params.get("description"),
        "excluded_payment_method_types": params.get("excluded_payment_method_types"),
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "managed_payments": None,
        "mandate": None,
        "metadata": dict(params.get("metadata") or {}),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        }
        if "card" in types
        else {},
        "payment_method_types": types,
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": params.get("usage") or "off_session",
        **({"attach_to_self": params["attach_to_self"]} if params.get("attach_to_self") is not None else {}),
    }


def build_setup_attempt(
    setup_intent: dict[str, Any], payment_method: dict[str, Any], created: int, error: dict[str, Any] | None
) -> dict[str, Any]:
    """The SetupAttempt recording one confirmation of a SetupIntent."""
    details: dict[str, Any] = {"type": payment_method["type"]}
    if payment_method["type"] == "card":
        card = payment_method["card"]
        details["card"] = {
            "brand": card["brand"],
            "checks": card["checks"],
            "country": card["country"],
            "description": None,
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "fingerprint": card["fingerprint"],
            "funding": card["funding"],
            "iin": None,
            "issuer": None,
            "last4": card["last4"],
            "moto": None,
            "network": card["brand"],
            "three_d_secure": None,
            "wallet": None,
        }
    else:
        details["sepa_debit"] = {}
    return {
        "id": new_id("setatt"),
        "object": "setup_attempt",
        "application": None,
        "attach_to_self": None,
        "created": created,
        "customer": setup_intent["customer"],
        "customer_account": None,
        "flow_directions": None,
        "livemode": False,
        "on_behalf_of": None,
        "payment_method": payment_method["id"],
        "payment_method_details": details,
        "setup_error": error,
        "setup_intent": setup_intent["id"],
        "status": "failed" if error else "succeeded",
        "usage": setup_intent["usage"],
    }


def build_mandate(payment_method: dict[str, Any], acceptance: dict[str, Any] | None, created: int) -> dict[str, Any]:
    """A multi-use SEPA debit mandate."""
    acceptance = acceptance or {}
    online = acceptance.get("online") or {"ip_address": "127.0.0.1", "user_agent": "stripe-emulator"}
    return {
        "id": new_id("mandate"),
        "object": "mandate",
        "customer_acceptance": {
            "accepted_at": acceptance.get("accepted_at") or created,
            "online": online,
            "type": acceptance.get("type") or "online",
        },
        "livemode": False,
        "multi_use": {"amount": None, "currency": None},
        "on_behalf_of": None,
        "payment_method": payment_method["id"],
        "payment_method_details": {
            "sepa_debit": {"reference": secrets.token_hex(8).upper(), "url": ""},
            "type": "sepa_debit",
        },
        "status": "active",
        "type": "multi_use",
    }


def build_invoice(
    created: int, customer: dict[str, Any], params: dict[str, Any], account: dict[str, str], currency: str
) -> dict[str, Any]:
    """A draft one-off Invoice for a customer."""
    invoice_id = new_id("in")
    send_invoice = params.get("collection_method") == "send_invoice"
    due_date = params.get("due_date")
    if send_invoice and due_date is None:
        due_date = created + 86400 * (params.get("days_until_due") or 30)
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": account["country"],
        "account_name": account["name"],
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": bool(params.get("auto_advance", False)),
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": "manual",
        "collection_method": params.get("collection_method") or "charge_automatically",
        "created": created,
        "currency": currency,
        "custom_fields": invoice_custom_fields(params.get("custom_fields")),
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": customer["address"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": customer["shipping"],
        "customer_tax_exempt": customer["tax_exempt"],
        "customer_tax_ids": [],
        "default_payment_method": params.get("default_payment_method"),
        "default_source": None,
        "default_tax_rates": [],
        "description": params.get("description"),
        "discounts": [],
        "due_date": due_date,
        "effective_at": None,
        "ending_balance": None,
        "footer": params.get("footer"),
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": list_object(f"/v1/invoices/{invoice_id}/lines", [], False),
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": created,
        "period_start": created,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": {
            "amount_tax_display": None,
            "pdf": {"page_size": "auto"},
            "template": None,
            "template_version": None,
        },
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": params.get("statement_descriptor"),
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


# The pinned SDK's InvoiceCreateParams: "a list of up to 4 custom fields"; name up to 40 characters,
# value up to 140.
MAX_CUSTOM_FIELDS, MAX_CUSTOM_FIELD_NAME, MAX_CUSTOM_FIELD_VALUE = 4, 40, 140


def invoice_custom_fields(fields: Any) -> list[dict[str, str]] | None:
    """The invoice's custom fields as Stripe keeps them; ``ParameterError`` beyond Stripe's limits."""
    if not fields:
        return None
    if len(fields) > MAX_CUSTOM_FIELDS:
        raise ParameterError(f"custom_fields: at most {MAX_CUSTOM_FIELDS} custom fields", param="custom_fields")
    for index, field in enumerate(fields):
        if len(str(field.get("name", ""))) > MAX_CUSTOM_FIELD_NAME:
            raise ParameterError(
                f"custom_fields[{index}][name] may be up to {MAX_CUSTOM_FIELD_NAME} characters",
                param=f"custom_fields[{index}][name]",
            )
        if len(str(field.get("value", ""))) > MAX_CUSTOM_FIELD_VALUE:
            raise ParameterError(
                f"custom_fields[{index}][value] may be up to {MAX_CUSTOM_FIELD_VALUE} characters",
                param=f"custom_fields[{index}][value]",
            )
    return [{"name": str(field["name"]), "value": str(field["value"])} for field in fields]


def build_invoiceitem(created: int, customer_id: str, currency: str, params: dict[str, Any]) -> dict[str, Any]:
    """A one-off InvoiceItem (optionally on an invoice)."""
    quantity = params.get("quantity") or 1
    amount = params.get("amount")
    if amount is None and params.get("unit_amount_decimal") is not None:
        amount = int(round(float(params["unit_amount_decimal"]) * quantity))  # integer minor units
    period = params.get("period") or {"start": created, "end": created}
    return {
        "id": new_id("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "date": created,
        "description": params.get("description"),
        "discountable": params.get("discountable", True),
        "discounts": [],
        "invoice": params.get("invoice"),
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "net_amount": amount,
        "parent": None,
        "period": {"start": period.get("start", created), "end": period.get("end", created)},
        "pricing": None,
        "proration": False,
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": [],
        "test_clock": None,
    }


def build_line_item(item: dict[str, Any]) -> dict[str, Any]:
    """The invoice line that shows an invoice item on its invoice."""
    return {
        "id": new_id("il"),
        "object": "line_item",
        "amount": item["amount"],
        "currency": item["currency"],
        "description": item["description"],
        "discount_amounts": [],
        "discountable": item["discountable"],
        "discounts": [],
        "invoice": item["invoice"],
        "livemode": False,
        "metadata": dict(item["metadata"]),
        "parent": {
            "invoice_item_details": {
                "invoice_item": item["id"],
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        },
        "period": dict(item["period"]),
        "pretax_credit_amounts": [],
        "pricing": None,
        "quantity": item["quantity"],
        "quantity_decimal": item["quantity_decimal"],
        "subscription": None,
        "subtotal": item["amount"],
        "taxes": [],
    }


def build_tax_rate(
    created: int, params: dict[str, Any], *, active: bool = True, effective_percentage: int | float | None = None
) -> dict[str, Any]:
    """A TaxRate of ``rate_type`` percentage (``params`` as in TaxRateCreateParams or ``tax_rate_data``).

    ``effective_percentage`` is null for a rate defined by hand; Stripe Tax fills it in for its own.
    """
    return {
        "id": new_id("txr"),
        "object": "tax_rate",
        "active": active,
        "country": params.get("country"),
        "created": created,
        "description": params.get("description"),
        "display_name": params["display_name"],
        "effective_percentage": effective_percentage,
        "flat_amount": None,
        "inclusive": params["inclusive"],
        "jurisdiction": params.get("jurisdiction"),
        "jurisdiction_level": params.get("jurisdiction_level"),
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "percentage": percentage_json(params["percentage"]),
        "rate_type": "percentage",
        "state": params.get("state"),
        "tax_type": params.get("tax_type"),
    }


def build_webhook_endpoint(created: int, params: dict[str, Any]) -> dict[str, Any]:
    """A WebhookEndpoint (its ``secret`` is shown once, on create)."""
    return {
        "id": new_id("we"),
        "object": "webhook_endpoint",
        "api_version": params.get("api_version"),
        "application": None,
        "created": created,
        "description": params.get("description"),
        "enabled_events": list(params["enabled_events"]),
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "status": "enabled",
        "url": params["url"],
    }


def build_event(
    event_type: str,
    obj: dict[str, Any],
    created: int,
    request: dict[str, Any],
    previous: dict[str, Any] | None,
    pending_webhooks: int,
) -> dict[str, Any]:
    """An Event carrying a snapshot of the object (and what changed)."""
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": request,
        "type": event_type,
    }


def previous_attributes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Stripe's ``previous_attributes``: the old values of what changed, nested for sub-objects."""
    changed: dict[str, Any] = {}
    for key in set(old) | set(new):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict) and key not in ("metadata", "lines"):
            changed[key] = previous_attributes(before, after)
        else:
            changed[key] = before
    return changed


def build_balance_transaction(
    created: int,
    customer: dict[str, Any],
    amount: int,
    kind: str,
    currency: str,
    *,
    invoice: str | None,
    credit_note: str | None,
    description: str | None,
) -> dict[str, Any]:
    """A CustomerBalanceTransaction; ``customer["balance"]`` is already the balance after it."""
    return {
        "id": new_id("cbtxn"),
        "object": "customer_balance_transaction",
        "amount": amount,
        "checkout_session": None,
        "created": created,
        "credit_note": credit_note,
        "currency": currency,
        "customer": customer["id"],
        "customer_account": None,
        "description": description,
        "ending_balance": customer["balance"],
        "invoice": invoice,
        "livemode": False,
        "metadata": {},
        "type": kind,
    }


def build_credit_note_line(
    kind: str,
    amount: int,
    *,
    description: str | None,
    quantity: int | None,
    unit_amount: int | None,
    invoice_line_item: str | None,
    tax_rates: list[str],
    taxes: list[dict[str, Any]],
    metadata: dict[str, str] | None,
) -> dict[str, Any]:
    """A CreditNoteLineItem; ``tax_rates`` holds ids here and shows as TaxRate objects when rendered."""
    return {
        "id": new_id("cnli"),
        "object": "credit_note_line_item",
        "amount": amount,
        "description": description,
        "discount_amount": 0,
        "discount_amounts": [],
        "invoice_line_item": invoice_line_item,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "pretax_credit_amounts": [],
        "quantity": quantity,
        "tax_rates": tax_rates,
        "taxes": taxes,
        "type": kind,
        "unit_amount": unit_amount,
        "unit_amount_decimal": None if unit_amount is None else str(unit_amount),
    }


def build_refund(created: int, amount: int, currency: str, customer: str, reason: str | None) -> dict[str, Any]:
    """A succeeded Refund of an invoice's payment (the emulator keeps no Charge or PaymentIntent objects)."""
    return {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": None,
        "created": created,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": None,
        "destination_details": None,
        "metadata": {},
        "payment_intent": None,
        "payment_method": None,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def build_tax_id(created: int, customer: str, tax_type: str, value: str, country: str | None) -> dict[str, Any]:
    """A customer's TaxId; Stripe verifies EU VAT numbers asynchronously (``verification.status`` pending)."""
    verification = (
        {"status": "pending", "verified_address": None, "verified_name": None}
        if tax_type in ("eu_vat", "gb_vat", "au_abn")
        else {"status": "unavailable", "verified_address": None, "verified_name": None}
    )
    return {
        "id": new_id("txi"),
        "object": "tax_id",
        "country": country,
        "created": created,
        "customer": customer,
        "customer_account": None,
        "livemode": False,
        "owner": {
            "account": None,
            "application": None,
            "customer": customer,
            "customer_account": None,
            "type": "customer",
        },
        "type": tax_type,
        "value": value,
        "verification": verification,
    }
