"""The OpenAPI 3.1 description of billing-api, served at ``/openapi.json``.

Kept by hand next to the views; ``tests/integration/test_api_schema.py`` runs schemathesis against
the running API with it, so a response that does not match fails the build.
"""

from __future__ import annotations

import copy
from typing import Any

from billing_api.web import MAX_BODY_BYTES
from billing_core.use_cases.billing_overview import DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE

_MONEY = {
    "type": "string",
    "pattern": r"^-?[0-9]+\.[0-9]{2}$",
    "description": 'A decimal amount with two places, e.g. "37.74"; never a JSON number.',
}
_NULLABLE_MONEY = {**_MONEY, "type": ["string", "null"]}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_EPOCH_MS = {"type": ["integer", "null"], "description": "Epoch milliseconds."}
_EINVOICE_FILE = {
    "description": "The file (Content-Disposition: attachment).",
    "content": {
        "application/xml": {"schema": {"type": "string"}},
        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
    },
}
_FORMAT = {
    "name": "format",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["xrechnung", "zugferd"]},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# Actions that write to Stripe count against their caller's budget per minute (STRIPE_WRITES_PER_MINUTE).
_RATE_LIMITED = {
    "429": {
        "description": "Too many requests of this kind from this account (or operator) this minute.",
        "headers": {
            "Retry-After": {"description": "Seconds until it may be tried again.", "schema": {"type": "integer"}}
        },
        "content": {"application/json": {"schema": _ref("Error")}},
    }
}

_AUTH_ERRORS = {
    "401": _error("No token, or a token that is invalid, expired or not for this pool and client."),
    "403": _error("A valid token of a user who is not in the admin group."),
    "503": _error("A dependency (JWKS, DynamoDB, Stripe) is temporarily unavailable."),
    "default": _error("Any other error, in the same shape."),
}

_EMAILS = {
    "type": "array",
    "items": {"type": "string", "format": "email"},
    "maxItems": 10,
    "description": "Who gets the invoices and credit notes by e-mail (default: the account's e-mail).",
}
_UNDELIVERABLE = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Addresses that bounced or complained: not mailed until the recipients are set again.",
}
_RECIPIENTS = {
    "type": "object",
    "required": ["invoiceEmails", "undeliverableEmails"],
    "additionalProperties": False,
    "properties": {"invoiceEmails": _EMAILS, "undeliverableEmails": _UNDELIVERABLE},
}


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "billing-api",
        "version": "1.0.0",
        "description": (
            "The admin's Billing tab: invoices, payment method, current month's costs. Every route except "
            "/healthz and /openapi.json needs a Cognito access token of a member of the admin group; each "
            "admin sees only their own account. Money is a string with two decimals next to an ISO currency."
        ),
    },
    "components": {
        "securitySchemes": {"cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "additionalProperties": False,
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "additionalProperties": False,
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            },
            "Period": {
                "type": "object",
                "required": ["start", "end"],
                "properties": {
                    "start": {**_NULLABLE_TEXT, "description": "First day (inclusive), YYYY-MM-DD."},
                    "end": {**_NULLABLE_TEXT, "description": "First day of the next month (exclusive)."},
                },
            },
            "Breakdown": {
                "type": "object",
                "description": "AWS service -> amount; sums exactly to awsCosts.",
                "additionalProperties": _MONEY,
            },
            "Invoice": {
                "type": "object",
                "required": [
                    "invoiceId",
                    "period",
                    "status",
                    "currency",
                    "amount",
                    "netAmount",
                    "taxAmount",
                    "taxRate",
                    "taxCategory",
                    "taxNote",
                    "einvoice",
                    "baseFee",
                    "awsCosts",
                    "awsBreakdown",
                    "costsEstimated",
                    "number",
                    "hostedInvoiceUrl",
                    "invoicePdf",
                    "createdAt",
                    "paidAt",
                ],
                "additionalProperties": False,
                "properties": {
                    "invoiceId": {"type": "string", "description": "inv_<YYYY-MM>_<userId>"},
                    "period": {"oneOf": [_ref("Period"), {"type": "null"}]},
                    "status": {
                        **_NULLABLE_TEXT,
                        "description": "pending, draft, open, paid, payment_failed, action_required, "
                        "uncollectible or void.",
                    },
                    "currency": {**_NULLABLE_TEXT, "description": "ISO 4217, upper case."},
                    "amount": {**_NULLABLE_MONEY, "description": "The gross total charged (net + VAT)."},
                    "netAmount": {**_NULLABLE_MONEY, "description": "The sum of the net lines."},
                    "taxAmount": {**_NULLABLE_MONEY, "description": "The VAT (USt.), as Stripe computed it."},
                    "taxRate": {**_NULLABLE_TEXT, "description": 'VAT rate in percent, e.g. "19".'},
                    "taxCategory": {**_NULLABLE_TEXT, "description": "EN 16931 VAT category: S, AE, O or E."},
                    "taxNote": {**_NULLABLE_TEXT, "description": "The legend of an untaxed supply."},
                    "einvoice": {
                        "type": "object",
                        "required": ["xrechnung", "zugferd"],
                        "additionalProperties": False,
                        "description": "Which e-invoice files are stored (GET .../einvoice?format=...).",
                        "properties": {"xrechnung": {"type": "boolean"}, "zugferd": {"type": "boolean"}},
                    },
                    "baseFee": _NULLABLE_MONEY,
                    "awsCosts": _NULLABLE_MONEY,
                    "awsBreakdown": _ref("Breakdown"),
                    "costsEstimated": {"type": "boolean"},
                    "corrections": {
                        "type": "array",
                        "description": "Corrections of earlier months: final AWS costs against what was billed.",
                        "items": {
                            "type": "object",
                            "required": ["period", "description", "amount", "settledByCreditNote"],
                            "additionalProperties": False,
                            "properties": {
                                "period": {"type": "string", "description": "YYYY-MM corrected."},
                                "description": {"type": "string"},
                                "amount": _NULLABLE_MONEY,
                                "settledByCreditNote": {
                                    "type": "boolean",
                                    "description": "Settled by a credit note on the corrected invoice, not a line.",
                                },
                            },
                        },
                    },
                    "creditIn": {**_NULLABLE_MONEY, "description": "Credit carried in from the previous invoice."},
                    "carriedOut": {**_NULLABLE_MONEY, "description": "Carried to the next invoice (total >= 0)."},
                    "fxNote": {**_NULLABLE_TEXT, "description": "Which exchange rate converted the AWS costs."},
                    "number": _NULLABLE_TEXT,
                    "hostedInvoiceUrl": _NULLABLE_TEXT,
                    "invoicePdf": _NULLABLE_TEXT,
                    "createdAt": _EPOCH_MS,
                    "paidAt": _EPOCH_MS,
                },
            },
            "PaymentMethod": {
                "type": "object",
                "required": ["status", "type", "brand", "last4"],
                "additionalProperties": False,
                "properties": {
                    "status": {"type": "string", "enum": ["none", "active"]},
                    "id": {**_NULLABLE_TEXT, "description": "Stripe's payment method id (pm_...)."},
                    "type": {**_NULLABLE_TEXT, "description": "card or sepa_debit."},
                    "brand": _NULLABLE_TEXT,
                    "last4": {"type": ["string", "null"], "maxLength": 4},
                },
            },
            "CurrentCosts": {
                "type": "object",
                "description": "The month so far, priced like the invoice (base fee + converted AWS costs).",
                "required": [
                    "period",
                    "asOf",
                    "asOfIso",
                    "currency",
                    "baseFee",
                    "awsCosts",
                    "awsBreakdown",
                    "amount",
                    "amountBasis",
                    "costsEstimated",
                    "forecastAmount",
                    "forecastAwsCosts",
                    "forecastMethod",
                    "fxRate",
                ],
                "additionalProperties": False,
                "properties": {
                    "period": _ref("Period"),
                    "asOf": {"type": "integer", "description": "When Cost Explorer was asked (epoch ms)."},
                    "asOfIso": {"type": "string", "description": "asOf as ISO 8601 UTC."},
                    "currency": {"type": "string"},
                    "baseFee": _MONEY,
                    "awsCosts": _MONEY,
                    "awsBreakdown": _ref("Breakdown"),
                    "amount": _MONEY,
                    "amountBasis": {
                        "type": "string",
                        "enum": ["net"],
                        "description": "The preview's amounts are net: VAT is added on the invoice.",
                    },
                    "costsEstimated": {"type": "boolean"},
                    "forecastAmount": {**_MONEY, "description": "Projected invoice total at the month's end."},
                    "forecastAwsCosts": _MONEY,
                    "forecastMethod": {"type": "string", "enum": ["cost_explorer", "linear"]},
                    "fxRate": {"type": ["string", "null"], "description": "Invoice currency per USD, if converted."},
                },
            },
            "Billing": {
                "type": "object",
                "required": [
                    "accountId",
                    "invoices",
                    "nextCursor",
                    "paymentMethod",
                    "currentCosts",
                    "invoiceEmails",
                    "undeliverableEmails",
                ],
                "additionalProperties": False,
                "properties": {
                    "accountId": {"type": "string"},
                    "invoices": {"type": "array", "items": _ref("Invoice"), "maxItems": MAX_PAGE_SIZE},
                    "nextCursor": {
                        "type": ["string", "null"],
                        "description": "Pass as `cursor` for the next page; null on the last page.",
                    },
                    "paymentMethod": _ref("PaymentMethod"),
                    "invoiceEmails": _EMAILS,
                    "undeliverableEmails": _UNDELIVERABLE,
                    "currentCosts": {
                        "oneOf": [_ref("CurrentCosts"), {"type": "null"}],
                        "description": "null while no preview can be had (Cost Explorer unavailable).",
                    },
                    "previousMonth": {
                        "oneOf": [
                            {
                                "type": "object",
                                "required": ["period", "waitingForFinalCosts"],
                                "additionalProperties": False,
                                "properties": {
                                    "period": {"type": "string", "description": "YYYY-MM"},
                                    "waitingForFinalCosts": {
                                        "type": "boolean",
                                        "description": "Its invoice comes once AWS's costs for it are final.",
                                    },
                                },
                            },
                            {"type": "null"},
                        ],
                        "description": "Last month's billing state; null when it cannot be read.",
                    },
                },
            },
            "SetupIntent": {
                "type": "object",
                "required": ["clientSecret", "publishableKey"],
                "additionalProperties": False,
                "properties": {"clientSecret": {"type": "string"}, "publishableKey": {"type": "string"}},
            },
        },
    },
    "security": [{"cognito": []}],
    "paths": {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness.",
                "security": [],
                "responses": {
                    "200": _json(
                        "The process serves requests.",
                        {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
                    ),
                    "default": _error("Any error."),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "security": [],
                "responses": {"200": _json("OpenAPI 3.1.", {"type": "object"}), "default": _error("Any error.")},
            }
        },
        "/billing": {
            "get": {
                "operationId": "getBilling",
                "summary": "Invoices (newest first), payment method status and the current month's costs.",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_PAGE_SIZE,
                            "default": DEFAULT_PAGE_SIZE,
                        },
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": "The nextCursor of the previous page (opaque).",
                        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR_LENGTH},
                    },
                ],
                "responses": {
                    "200": _json("The caller's billing overview.", _ref("Billing")),
                    "400": _error(
                        "limit out of range, an unknown query parameter, or a cursor this API did not issue "
                        "for this account."
                    ),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/billing/invoices/{invoiceId}": {
            "get": {
                "operationId": "getInvoice",
                "summary": "One of the caller's invoices with breakdown, number and Stripe links.",
                "parameters": [
                    {"name": "invoiceId", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("The invoice.", _ref("Invoice")),
                    "400": _error("An unknown query parameter."),
                    "404": _error("No such invoice in the caller's account (another account's is a 404 too)."),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/billing/invoices/{invoiceId}/einvoice": {
            "get": {
                "operationId": "getInvoiceEInvoice",
                "summary": "Download the e-invoice of one of the caller's invoices: XRechnung XML or ZUGFeRD PDF.",
                "parameters": [
                    {"name": "invoiceId", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["xrechnung", "zugferd"], "default": "xrechnung"},
                    },
                ],
                "responses": {
                    "200": _EINVOICE_FILE,
                    "400": _error("An unknown query parameter or format."),
                    "404": _error("No such invoice in the caller's account, or no e-invoice for it yet."),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/billing/invoices/{invoiceId}/pay": {
            "post": {
                "operationId": "payInvoice",
                "summary": "Pay one of the caller's failed (or open) invoices now with the default payment method.",
                "description": "If the payment needs the customer's authentication (SCA), actionUrl is the hosted "
                "invoice page to open.",
                "parameters": [
                    {"name": "invoiceId", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json(
                        "What Stripe answered.",
                        {
                            "type": "object",
                            "required": ["invoiceId", "paid", "stripeStatus", "declined", "actionUrl"],
                            "additionalProperties": False,
                            "properties": {
                                "invoiceId": {"type": "string"},
                                "paid": {"type": "boolean"},
                                "stripeStatus": {"type": "string"},
                                "declined": {
                                    **_NULLABLE_TEXT,
                                    "description": "Why it was not paid: Stripe's decline code, or "
                                    "no_payment_method when the customer has none saved.",
                                },
                                "actionUrl": _NULLABLE_TEXT,
                            },
                        },
                    ),
                    "400": _error("An unknown query parameter."),
                    "404": _error("No such invoice in the caller's account."),
                    "409": _error(
                        "The invoice is paid (also a moment ago, by a concurrent payment), void or not finalized: "
                        "nothing to pay."
                    ),
                    "413": _error("Request body too large."),
                    "502": _error("Stripe refused or failed the request."),
                    **_RATE_LIMITED,
                    **_AUTH_ERRORS,
                },
            }
        },
        "/billing/invoice-emails": {
            "put": {
                "operationId": "setInvoiceEmails",
                "summary": "Set who gets the account's invoices and credit notes by e-mail (audited).",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["invoiceEmails"],
                                "additionalProperties": False,
                                "properties": {"invoiceEmails": {**_EMAILS, "minItems": 1}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json("The recipients now.", _RECIPIENTS),
                    "400": _error("Not one to ten e-mail addresses (the message names the bad one)."),
                    "409": _error("The account does not exist yet: save a payment method first."),
                    "413": _error("Request body too large."),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/billing/setup-intent": {
            "post": {
                "operationId": "createSetupIntent",
                "summary": "Get-or-create the account's Stripe customer and a SetupIntent (card, SEPA debit).",
                "description": f"No request body is needed; a body larger than {MAX_BODY_BYTES} bytes is a 413.",
                "responses": {
                    "200": _json("Mount Stripe's Payment Element with these.", _ref("SetupIntent")),
                    "400": _error("An unknown query parameter."),
                    "413": _error("Request body too large."),
                    "502": _error("Stripe refused or failed the request."),
                    **_RATE_LIMITED,
                    **_AUTH_ERRORS,
                },
            }
        },
    },
}


# --- the operator's endpoints (members of the operator group; admins and others get 403) ----------------

_OPERATOR_ERRORS = {
    "401": _error("No token, or a token that is invalid, expired or not for this pool and client."),
    "403": _error("A valid token of a user who is not in the operator group (a customer's admin, too)."),
    "503": _error("A dependency (JWKS, DynamoDB, Stripe) is temporarily unavailable."),
    "default": _error("Any other error, in the same shape."),
}
_ADDRESS = {
    "type": "object",
    "required": ["line1", "postalCode", "city"],
    "additionalProperties": False,
    "properties": {"line1": {"type": "string"}, "postalCode": {"type": "string"}, "city": {"type": "string"}},
}
_ACCOUNT_FIELDS = {
    "name": {"type": "string", "description": "The customer's legal name."},
    "email": {"type": "string", "description": "Where Stripe sends invoices and receipts."},
    "costScope": {**_NULLABLE_TEXT, "description": "Linked AWS account id (12 digits) or tag value; null: clear."},
    "baseFee": {**_NULLABLE_MONEY, "description": "Monthly base fee; null: back to the default."},
    "language": {"type": "string", "enum": ["de", "en"]},
    "country": {"type": "string", "description": "ISO 3166-1 alpha-2."},
    "vatId": {"type": "string", "description": "The customer's EU VAT id (set on create)."},
    "buyerReference": {"type": "string", "description": "The e-invoice's buyer reference (Leitweg-ID or order)."},
    "address": _ADDRESS,
    "invoiceEmails": {**_EMAILS, "minItems": 1},
    "reason": {"type": "string", "description": "Why (kept in the audit log)."},
}
_SCHEMAS = _DOCUMENT["components"]["schemas"]
_DOCUMENT_ID = {
    "name": "documentId",
    "in": "path",
    "required": True,
    "description": "An invoice (inv_...) or a credit note (cn_...).",
    "schema": {"type": "string"},
}
_SCHEMAS["DocumentMail"] = {
    "type": "object",
    "required": ["state", "text", "sending", "reason", "deliveries"],
    "properties": {
        "documentId": {"type": "string"},
        "accountId": {"type": "string"},
        "state": {"type": "string", "enum": ["not_sent", "sending", "delivered", "not_delivered"]},
        "text": {"type": "string", "description": "delivered / not delivered: <reason>"},
        "sending": {"type": "integer", "description": "1: the first sending; 2, 3, ...: resends."},
        "reason": {"type": ["string", "null"]},
        "deliveries": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["recipient", "state", "sentAt", "messageId", "reason", "possibleDuplicate"],
                "properties": {
                    "recipient": {"type": "string"},
                    "state": {
                        "type": "string",
                        "enum": [
                            "sending",
                            "waiting",
                            "sent",
                            "delivered",
                            "rejected",
                            "bounced",
                            "complained",
                            "suppressed",
                            "uncertain",
                        ],
                    },
                    "sentAt": {"type": ["integer", "null"]},
                    "messageId": {"type": ["string", "null"], "description": "SES's message id."},
                    "reason": {"type": ["string", "null"]},
                    "possibleDuplicate": {
                        "type": "boolean",
                        "description": "A sender died mid-send: the recipient may have it twice.",
                    },
                },
            },
        },
    },
}
_SCHEMAS["Account"] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "accountId",
        "name",
        "email",
        "costScope",
        "baseFee",
        "language",
        "country",
        "vatId",
        "buyerReference",
        "address",
        "stripeCustomerId",
        "paymentMethod",
        "disabled",
        "disabledAt",
        "lastInvoice",
        "invoiceEmails",
        "undeliverableEmails",
    ],
    "properties": {
        "invoiceEmails": _EMAILS,
        "undeliverableEmails": _UNDELIVERABLE,
        "accountId": {"type": "string"},
        "name": _NULLABLE_TEXT,
        "email": _NULLABLE_TEXT,
        "costScope": _NULLABLE_TEXT,
        "baseFee": _NULLABLE_MONEY,
        "language": _NULLABLE_TEXT,
        "country": _NULLABLE_TEXT,
        "vatId": _NULLABLE_TEXT,
        "buyerReference": _NULLABLE_TEXT,
        "address": {"oneOf": [_ADDRESS, {"type": "null"}]},
        "stripeCustomerId": _NULLABLE_TEXT,
        "paymentMethod": _ref("PaymentMethod"),
        "disabled": {"type": "boolean"},
        "disabledAt": _EPOCH_MS,
        "lastInvoice": {"type": ["object", "null"], "description": "The newest invoice (listing and show)."},
    },
}
_SCHEMAS["OperatorInvoice"] = {
    **_SCHEMAS["Invoice"],
    "required": [*_SCHEMAS["Invoice"]["required"], "accountId", "attemptCount"],
    "properties": {
        **_SCHEMAS["Invoice"]["properties"],
        "accountId": {"type": "string"},
        "attemptCount": {"type": "integer"},
    },
}
_SCHEMAS["CreditNoteLine"] = {
    "type": "object",
    "required": ["line", "description", "period", "net", "tax"],
    "properties": {
        "line": {"type": "string", "description": "The invoice line credited: base-fee, aws, correction:YYYY-MM."},
        "description": {"type": "string"},
        "period": {"type": "string"},
        "net": _MONEY,
        "tax": _MONEY,
    },
}
_SCHEMAS["CreditNote"] = {
    "type": "object",
    "required": [
        "creditNoteId",
        "invoiceId",
        "accountId",
        "state",
        "full",
        "currency",
        "net",
        "tax",
        "gross",
        "settlement",
        "reason",
        "lines",
    ],
    "properties": {
        "creditNoteId": {"type": "string"},
        "invoiceId": {"type": "string"},
        "accountId": {"type": "string"},
        "number": _NULLABLE_TEXT,
        "state": {"type": "string", "enum": ["pending", "issued", "void"]},
        "full": {"type": "boolean", "description": "A cancellation (Stornorechnung) of the whole invoice."},
        "currency": {"type": "string"},
        "net": _MONEY,
        "tax": _MONEY,
        "gross": _MONEY,
        "settlement": {"type": "string", "enum": ["pre_payment", "refund", "balance", "out_of_band"]},
        "reason": {"type": "string"},
        "lines": {"type": "array", "items": _ref("CreditNoteLine")},
        "createdAt": _EPOCH_MS,
        "issuedAt": _EPOCH_MS,
        "einvoice": {"type": "object"},
    },
}
_ACCOUNT_ID = {"name": "accountId", "in": "path", "required": True, "schema": {"type": "string"}}
_INVOICE_ID = {"name": "invoiceId", "in": "path", "required": True, "schema": {"type": "string"}}
_REASON_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {"type": "object", "properties": {"reason": {"type": "string"}}}}},
}


_CREDIT_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["reason"],
                "additionalProperties": False,
                "properties": {
                    "reason": {"type": "string", "minLength": 1, "maxLength": 500},
                    "full": {"type": "boolean"},
                    "lines": {"type": "object", "additionalProperties": _MONEY},
                    "settlement": {"type": "string", "enum": ["pre_payment", "refund", "balance", "out_of_band"]},
                },
            }
        }
    },
}


# The operator's actions that write to Stripe (their budget: OPERATOR_STRIPE_WRITES_PER_MINUTE).
_OPERATOR_STRIPE_WRITES = frozenset(
    {
        "operatorCreateAccount",
        "operatorUpdateAccount",
        "operatorRetryInvoice",
        "operatorVoidInvoice",
        "operatorIssueCreditNote",
        "operatorPreviewCreditNote",
    }
)


def _operation(operation_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    limited = _RATE_LIMITED if operation_id in _OPERATOR_STRIPE_WRITES else {}
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["operator"],
        **extra,
        "responses": {**responses, **limited, **_OPERATOR_ERRORS},
    }


_DOCUMENT["paths"].update(
    {
        "/operator/accounts": {
            "get": _operation(
                "operatorListAccounts",
                "Every account with its newest invoice.",
                {
                    "200": _json(
                        "The accounts, and the keys of items that are not valid accounts.",
                        {
                            "type": "object",
                            "required": ["accounts", "unreadable"],
                            "properties": {
                                "accounts": {"type": "array", "items": _ref("Account")},
                                "unreadable": {"type": "array", "items": {"type": "object"}},
                            },
                        },
                    )
                },
            ),
            "post": _operation(
                "operatorCreateAccount",
                "A new account and its Stripe customer (repeatable).",
                {
                    "201": _json("The account.", _ref("Account")),
                    "400": _error("A field is invalid (the message names it), or the body is not a JSON object."),
                    "409": _error("An account with this id exists with other values."),
                    "502": _error("Stripe refused or failed the request."),
                },
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name", "email"],
                                "properties": {"id": {"type": "string"}, **_ACCOUNT_FIELDS},
                            }
                        }
                    },
                },
            ),
        },
        "/operator/accounts/{accountId}": {
            "get": _operation(
                "operatorShowAccount",
                "One account.",
                {"200": _json("The account.", _ref("Account")), "404": _error("No such account.")},
                parameters=[_ACCOUNT_ID],
            ),
            "patch": _operation(
                "operatorUpdateAccount",
                "Change the fields given (Stripe first, then the account).",
                {
                    "200": _json("The account.", _ref("Account")),
                    "400": _error("A field is invalid (named)."),
                    "404": _error("No such account."),
                    "502": _error("Stripe refused or failed the request."),
                },
                parameters=[_ACCOUNT_ID],
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object", "properties": _ACCOUNT_FIELDS}}},
                },
            ),
        },
        "/operator/accounts/{accountId}/disable": {
            "post": _operation(
                "operatorDisableAccount",
                "Stop billing the account (reason required).",
                {
                    "200": _json("The account.", _ref("Account")),
                    "400": _error("No reason given."),
                    "404": _error("No such account."),
                },
                parameters=[_ACCOUNT_ID],
                requestBody=_REASON_BODY,
            ),
        },
        "/operator/accounts/{accountId}/enable": {
            "post": _operation(
                "operatorEnableAccount",
                "Bill the account again.",
                {"200": _json("The account.", _ref("Account")), "404": _error("No such account.")},
                parameters=[_ACCOUNT_ID],
                requestBody=_REASON_BODY,
            ),
        },
        "/operator/accounts/{accountId}/invite": {
            "post": _operation(
                "operatorInviteAdmin",
                "Make someone an admin of the account (a Cognito user).",
                {
                    "200": _json(
                        "The invited user; temporaryPassword only where Cognito mails nothing (local stack).",
                        {
                            "type": "object",
                            "required": ["email", "sub", "created", "temporaryPassword"],
                            "properties": {
                                "email": {"type": "string"},
                                "sub": {"type": "string"},
                                "created": {"type": "boolean"},
                                "temporaryPassword": _NULLABLE_TEXT,
                            },
                        },
                    ),
                    "400": _error("No or an invalid e-mail."),
                    "404": _error("No such account."),
                    "409": _error("The person is an admin of another account."),
                },
                parameters=[_ACCOUNT_ID],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["email"],
                                "properties": {"email": {"type": "string"}, "reason": {"type": "string"}},
                            }
                        }
                    },
                },
            ),
        },
        "/operator/invoices": {
            "get": _operation(
                "operatorListInvoices",
                "Invoices of every account, newest period first.",
                {
                    "200": _json(
                        "The invoices.",
                        {
                            "type": "object",
                            "required": ["invoices"],
                            "properties": {"invoices": {"type": "array", "items": _ref("OperatorInvoice")}},
                        },
                    ),
                    "400": _error("An unknown parameter, status or period."),
                },
                parameters=[
                    {"name": "period", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "status", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "account", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
            ),
        },
        "/operator/invoices/{invoiceId}/retry": {
            "post": _operation(
                "operatorRetryInvoice",
                "Pay an open or failed invoice again now.",
                {
                    "200": _json(
                        "What Stripe answered.",
                        {
                            "type": "object",
                            "required": ["invoiceId", "stripeStatus", "paid"],
                            "properties": {
                                "invoiceId": {"type": "string"},
                                "stripeStatus": {"type": "string"},
                                "paid": {"type": "boolean"},
                                "declined": _NULLABLE_TEXT,
                                "actionUrl": _NULLABLE_TEXT,
                            },
                        },
                    ),
                    "404": _error("No such invoice."),
                    "409": _error("The invoice cannot be paid again (paid, void, ...)."),
                    "502": _error("Stripe refused or failed the request."),
                },
                parameters=[_INVOICE_ID],
                requestBody=_REASON_BODY,
            ),
        },
        "/operator/invoices/{invoiceId}/einvoice": {
            "get": _operation(
                "operatorInvoiceEInvoice",
                "Any account's e-invoice: XRechnung XML or ZUGFeRD PDF.",
                {
                    "200": _EINVOICE_FILE,
                    "400": _error("An unknown query parameter or format."),
                    "404": _error("No such invoice, or no e-invoice for it yet."),
                },
                parameters=[
                    _INVOICE_ID,
                    _FORMAT,
                ],
            ),
        },
        "/operator/invoices/{invoiceId}/void": {
            "post": _operation(
                "operatorVoidInvoice",
                "Void a finalized, unpaid invoice (reason required).",
                {
                    "200": _json("The invoice.", _ref("OperatorInvoice")),
                    "404": _error("No such invoice."),
                    "409": _error("No reason, or the invoice cannot be voided."),
                    "502": _error("Stripe refused or failed the request."),
                },
                parameters=[_INVOICE_ID],
                requestBody=_REASON_BODY,
            ),
        },
        "/operator/invoices/{invoiceId}/credit-notes": {
            "get": _operation(
                "operatorListCreditNotes",
                "An invoice's credit notes, first to last.",
                {
                    "200": _json(
                        "The credit notes.",
                        {
                            "type": "object",
                            "required": ["invoiceId", "creditNotes"],
                            "properties": {
                                "invoiceId": {"type": "string"},
                                "creditNotes": {"type": "array", "items": _ref("CreditNote")},
                            },
                        },
                    ),
                    "404": _error("No such invoice."),
                },
                parameters=[_INVOICE_ID],
            ),
            "post": _operation(
                "operatorIssueCreditNote",
                "Credit an issued invoice (lines or all of it), refunded, on the balance or out of band.",
                {
                    "201": _json("The credit note issued.", _ref("CreditNote")),
                    "400": _error("The body is not a credit note request."),
                    "404": _error("No such invoice."),
                    "409": _error("The invoice cannot be credited so (nothing left, wrong state, no reason ...)."),
                    "502": _error("Stripe refused or failed the request."),
                },
                parameters=[_INVOICE_ID],
                requestBody=_CREDIT_REQUEST_BODY,
            ),
        },
        "/operator/invoices/{invoiceId}/credit-notes/preview": {
            "post": _operation(
                "operatorPreviewCreditNote",
                "What a credit note would take back, as Stripe previews it; nothing is issued.",
                {
                    "200": _json(
                        "The proposal: net, VAT and gross to confirm.",
                        {
                            "type": "object",
                            "required": ["invoiceId", "full", "currency", "net", "tax", "gross", "settlement", "lines"],
                            "properties": {
                                "invoiceId": {"type": "string"},
                                "number": _NULLABLE_TEXT,
                                "full": {"type": "boolean"},
                                "currency": {"type": "string"},
                                "net": _MONEY,
                                "tax": _MONEY,
                                "gross": _MONEY,
                                "settlement": {"type": "string"},
                                "lines": {"type": "array", "items": _ref("CreditNoteLine")},
                            },
                        },
                    ),
                    "400": _error("The body is not a credit note request."),
                    "404": _error("No such invoice."),
                    "409": _error("The invoice cannot be credited so."),
                    "502": _error("Stripe refused or failed the request."),
                },
                parameters=[_INVOICE_ID],
                requestBody=_CREDIT_REQUEST_BODY,
            ),
        },
        "/operator/credit-notes/{creditNoteId}/einvoice": {
            "get": _operation(
                "operatorCreditNoteEInvoice",
                "A credit note's e-invoice: XRechnung XML or ZUGFeRD PDF.",
                {
                    "200": _EINVOICE_FILE,
                    "400": _error("An unknown query parameter or format."),
                    "404": _error("No such credit note, or no e-invoice for it yet."),
                },
                parameters=[
                    {"name": "creditNoteId", "in": "path", "required": True, "schema": {"type": "string"}},
                    _FORMAT,
                ],
            ),
        },
        "/operator/mail/undelivered": {
            "get": _operation(
                "operatorUndeliveredMail",
                "Invoices and credit notes whose latest e-mail reached nobody, and why.",
                {
                    "200": _json(
                        "The documents.",
                        {
                            "type": "object",
                            "required": ["documents"],
                            "properties": {"documents": {"type": "array", "items": _ref("DocumentMail")}},
                        },
                    ),
                    "409": _error("E-mail is not configured."),
                },
            ),
        },
        "/operator/documents/{documentId}/mail": {
            "get": _operation(
                "operatorDocumentMail",
                "An invoice's or credit note's latest e-mail, per recipient.",
                {"200": _json("Its e-mail.", _ref("DocumentMail")), "404": _error("No such document.")},
                parameters=[_DOCUMENT_ID],
            ),
        },
        "/operator/documents/{documentId}/resend": {
            "post": _operation(
                "operatorResendDocument",
                "E-mail the document again (to the addresses given, else the account's recipients); audited.",
                {
                    "202": _json(
                        "Queued; the worker sends it.",
                        {
                            "type": "object",
                            "required": ["documentId", "sending", "recipients"],
                            "properties": {
                                "documentId": {"type": "string"},
                                "sending": {"type": "integer", "minimum": 2},
                                "recipients": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                    ),
                    "400": _error("to is not a list of addresses, or a field is unknown."),
                    "404": _error("No such document."),
                    "409": _error("The document has no e-invoice yet, or an address bounced: change the recipients."),
                },
                parameters=[_DOCUMENT_ID],
                requestBody={
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "to": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
                                    "reason": {"type": "string"},
                                },
                            }
                        }
                    },
                },
            ),
        },
        "/operator/runs/{period}": {
            "get": _operation(
                "operatorShowRun",
                "A period's run: state, counts, invoices per status, skipped accounts.",
                {
                    "200": _json("The run.", {"type": "object", "required": ["period", "run", "invoicesByStatus"]}),
                    "400": _error("period is not YYYY-MM."),
                },
                parameters=[{"name": "period", "in": "path", "required": True, "schema": {"type": "string"}}],
            ),
        },
        "/operator/audit": {
            "get": _operation(
                "operatorAuditLog",
                "The newest operator actions.",
                {
                    "200": _json("The entries, newest first.", {"type": "object", "required": ["entries"]}),
                    "400": _error("An unknown parameter or a limit outside 1..500."),
                },
                parameters=[
                    {"name": "account", "in": "query", "required": False, "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                ],
            ),
        },
    }
)


# --- credit notes as the Billing tab and the operator page show them ----------------------------------------
# Every invoice says what its credit notes took back; the customer's invoice lists the credit notes issued on
# it, each downloadable as an e-invoice; the operator's lists its lines (what a credit note can take back).

_CREDITED_PROPERTIES = {
    "credited": {**_NULLABLE_MONEY, "description": "The gross issued credit notes took back (0.00: none)."},
    "correction": {
        "type": ["string", "null"],
        "enum": ["cancelled", "credited", None],
        "description": "cancelled: credited in full (Stornorechnung); credited: in part (Rechnungskorrektur).",
    },
}
_SCHEMAS["CustomerCreditNote"] = {
    "type": "object",
    "required": ["creditNoteId", "number", "kind", "currency", "net", "tax", "gross", "issuedAt", "einvoice"],
    "additionalProperties": False,
    "properties": {
        "creditNoteId": {"type": "string", "description": "cn_<YYYY-MM>_<userId>_<n>"},
        "number": {**_NULLABLE_TEXT, "description": "Stripe's credit note number."},
        "kind": {
            "type": "string",
            "enum": ["cancellation", "correction"],
            "description": "cancellation (Stornorechnung): the whole invoice; correction (Rechnungskorrektur): part.",
        },
        "currency": {**_NULLABLE_TEXT, "description": "ISO 4217, upper case."},
        "net": _NULLABLE_MONEY,
        "tax": _NULLABLE_MONEY,
        "gross": {**_NULLABLE_MONEY, "description": "What the invoice is reduced by (net + VAT)."},
        "issuedAt": _EPOCH_MS,
        "einvoice": {
            "type": "object",
            "required": ["xrechnung", "zugferd"],
            "additionalProperties": False,
            "description": "Which e-invoice files are stored (GET .../credit-notes/{creditNoteId}/einvoice).",
            "properties": {"xrechnung": {"type": "boolean"}, "zugferd": {"type": "boolean"}},
        },
    },
}
# Stripe's customer balance (domain.customer_balance): applied at finalization, or carried when too small.
_BALANCE_PROPERTIES = {
    "balanceApplied": {
        **_NULLABLE_MONEY,
        "description": "The customer balance Stripe took into the invoice: > 0 an earlier amount collected with "
        "it, < 0 a credit deducted.",
    },
    "carriedToBalance": {
        **_NULLABLE_MONEY,
        "description": "The amount due below Stripe's minimum charge (0.50 EUR), not charged but carried to the "
        "next invoice.",
    },
    "amountDue": {**_NULLABLE_MONEY, "description": "What is collected: amount + balanceApplied - carriedToBalance."},
}
for _schema in (_SCHEMAS["Invoice"], _SCHEMAS["OperatorInvoice"]):
    _schema["required"] = [*_schema["required"], *_CREDITED_PROPERTIES, *_BALANCE_PROPERTIES]
    _schema["properties"] = {**_schema["properties"], **_CREDITED_PROPERTIES, **_BALANCE_PROPERTIES}
_SCHEMAS["Invoice"]["required"].append("creditNotes")
_SCHEMAS["Invoice"]["properties"]["creditNotes"] = {
    "type": "array",
    "items": _ref("CustomerCreditNote"),
    "description": "The credit notes issued on the invoice, first to last.",
}
_SCHEMAS["OperatorInvoice"]["required"].append("lines")
_SCHEMAS["OperatorInvoice"]["properties"]["lines"] = {
    "type": "array",
    "description": "The invoice's lines as Stripe has them (a credit note names them).",
    "items": {
        "type": "object",
        "required": ["line", "description", "net"],
        "additionalProperties": False,
        "properties": {
            "line": {"type": "string", "description": "base-fee, aws, correction:YYYY-MM, credit or carried."},
            "description": {"type": "string"},
            "net": _NULLABLE_MONEY,
        },
    },
}
_DOCUMENT["paths"]["/billing/invoices/{invoiceId}/credit-notes/{creditNoteId}/einvoice"] = {
    "get": {
        "operationId": "getCreditNoteEInvoice",
        "summary": "Download the e-invoice of a credit note of one of the caller's invoices: XRechnung or ZUGFeRD.",
        "parameters": [
            {"name": "invoiceId", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "creditNoteId", "in": "path", "required": True, "schema": {"type": "string"}},
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["xrechnung", "zugferd"], "default": "xrechnung"},
            },
        ],
        "responses": {
            "200": _EINVOICE_FILE,
            "400": _error("An unknown query parameter or format."),
            "404": _error(
                "No such invoice in the caller's account, no such issued credit note of it (another account's "
                "is a 404 too), or no e-invoice for it yet."
            ),
            **_AUTH_ERRORS,
        },
    }
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the OpenAPI document (callers may not change the original)."""
    return copy.deepcopy(_DOCUMENT)
