"""One ``Settings`` object built from environment variables, with local defaults where safe.

Adding a setting is one field below: name the variable, the default and the parser. Variables that
only some processes need default to ``None`` and are demanded with ``Settings.require`` by the
process that uses them, so a missing one fails at startup with a message naming the variable.
Secrets are never settings: they come from Secrets Manager (see ``billing_core.adapters.secrets_manager``).

Longer than most modules on purpose: it is the one table of every setting (the settings README is
checked against it), and splitting it would scatter that table.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from billing_core.adapters.cost_explorer import TAX, charge_type
from billing_core.domain.costs import PAYER, AttributionKind, ChargeType, CostAttribution
from billing_core.domain.shared_costs import SharedCostRule, SharedCostSplit
from billing_core.errors import SettingsError

__all__ = ["Settings", "SettingsError", "setting"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_CURRENCY = re.compile(r"^[a-z]{3}$")


def setting(
    env: str,
    default: Any = None,
    *,
    parse: Callable[[str], Any] | None = None,
    doc: str = "",
    fallback: tuple[str, ...] = (),
    shown_default: str | None = None,
) -> Any:
    """Declare a ``Settings`` field read from environment variable ``env`` (then ``fallback``)."""
    return field(
        default=default,
        metadata={
            "env": env,
            "parse": parse or _text,
            "doc": doc,
            "fallback": fallback,
            "shown_default": shown_default,
        },
    )


# --- parsers: each raises ValueError with a message that does not repeat the value ---------------


def _text(raw: str) -> str:
    return raw


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("must be a whole number") from None
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("must be a whole number") from None
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _decimal(raw: str) -> Decimal:
    """Money and rates: parsed as Decimal from the text, never through float."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError("must be a decimal number such as 20.00") from None
    if not value.is_finite():
        raise ValueError("must be a finite decimal number")
    return value


def _url(raw: str) -> str:
    if not re.match(r"^https?://[^\s/]+", raw):
        raise ValueError("must be an http(s) URL")
    return raw.rstrip("/")


def _region(raw: str) -> str:
    if not _REGION.match(raw):
        raise ValueError("must be an AWS region such as eu-central-1")
    return raw


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
    return level


def _currency(raw: str) -> str:
    currency = raw.lower()
    if not _CURRENCY.match(currency):
        raise ValueError("must be a three-letter ISO currency code such as eur")
    return currency


def _positive_number(raw: str) -> Decimal:
    value = _decimal(raw)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative_decimal(raw: str) -> Decimal:
    value = _decimal(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _iso_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError("must be a date such as 2024-11-30") from None


def _language(raw: str) -> str:
    language = raw.lower()
    if language not in ("de", "en"):
        raise ValueError("must be de or en")
    return language


def _cron(raw: str) -> str:
    if len(raw.split()) != 5:
        raise ValueError("must be a five-field cron expression such as 0 0 1 * *")
    return raw


def _cost_group_by(raw: str) -> CostAttribution:
    """Cost Explorer's grouping names: the whole payer by service, or per linked account or tag value."""
    if raw == "SERVICE":
        return PAYER
    if raw == "LINKED_ACCOUNT":
        return CostAttribution.by_account()
    if raw.startswith("TAG:") and len(raw) > 4:
        return CostAttribution.by_tag(raw[4:])
    raise ValueError("must be SERVICE, LINKED_ACCOUNT or TAG:<key>")


def _cost_group_by_text(attribution: CostAttribution) -> str:
    """The ``COST_GROUP_BY`` value that sets ``attribution``."""
    if attribution.kind is AttributionKind.TAG:
        return f"TAG:{attribution.tag_key}"
    return "LINKED_ACCOUNT" if attribution.kind is AttributionKind.ACCOUNT else "SERVICE"


def _token_use(raw: str) -> str:
    if raw not in ("access", "id"):
        raise ValueError("must be access or id")
    return raw


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        if not re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?", origin):
            raise ValueError("must be comma-separated origins such as https://admin.example.com")
    return origins


def _correction_months(raw: str) -> int:
    months = _non_negative_int(raw)
    if months > 12:
        raise ValueError("must be from 0 to 12")
    return months


def _cost_finality(raw: str) -> str:
    if raw not in ("final", "estimated"):
        raise ValueError("must be final or estimated")
    return raw


def _cost_source(raw: str) -> str:
    if raw not in ("cost-explorer", "focus"):
        raise ValueError("must be cost-explorer or focus")
    return raw


def _focus_engine(raw: str) -> str:
    if raw not in ("duckdb", "athena"):
        raise ValueError("must be duckdb or athena")
    return raw


def _focus_cost_column(raw: str) -> str:
    if raw not in ("BilledCost", "EffectiveCost"):
        raise ValueError("must be BilledCost or EffectiveCost")
    return raw


def _marketplace(raw: str) -> str:
    if raw not in ("line", "exclude"):
        raise ValueError("must be line or exclude")
    return raw


def _export_uri(raw: str) -> str:
    from billing_core.adapters.focus_export import parse_export_uri

    parse_export_uri(raw)
    return raw.rstrip("/")


def _service_names(raw: str) -> frozenset[str]:
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    if not all(re.fullmatch(r"[^\x00-\x1f\x7f,]{1,200}", name) for name in names):
        raise ValueError("must be comma-separated service names as the cost source names them")
    return names


def _shared_split(raw: str) -> SharedCostSplit:
    try:
        return SharedCostSplit(raw)
    except ValueError:
        raise ValueError("must be proportional or even") from None


def _tax_mode(raw: str) -> str:
    if raw not in ("rates", "stripe-tax", "small-business"):
        raise ValueError("must be rates, stripe-tax or small-business")
    return raw


def _vat_rate(raw: str) -> Decimal:
    rate = _non_negative_decimal(raw)
    if not Decimal(0) < rate < Decimal(100) or rate != rate.quantize(Decimal("0.01")):
        raise ValueError("must be a percentage above 0 and below 100 with at most two decimals, such as 19")
    return rate


def _on_off(raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ValueError("must be true or false")
    return raw == "true"


def _deadline_day(raw: str) -> int:
    day = _positive_int(raw)
    if not 2 <= day <= 28:
        raise ValueError("must be a day from 2 to 28")
    return day


def _hour(raw: str) -> int:
    hour = _non_negative_int(raw)
    if hour > 23:
        raise ValueError("must be an hour from 0 to 23")
    return hour


def _fx_rule(raw: str) -> str:
    if raw not in ("last-working-day", "month-average"):
        raise ValueError("must be last-working-day or month-average")
    return raw


def _record_types(raw: str) -> tuple[ChargeType, ...]:
    if raw.strip().lower() == "none":
        return ()
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not names or not all(re.fullmatch(r"[A-Za-z][A-Za-z ]*", name) for name in names):
        raise ValueError("must be comma-separated Cost Explorer record types such as Tax, or none")
    return tuple(charge_type(name) for name in names)


def _mail_address(raw: str) -> str:
    from billing_core.domain.invoice_mail import InvalidMailAddress, valid_mail_address

    try:
        return valid_mail_address(raw)
    except InvalidMailAddress as error:
        raise ValueError(str(error)) from None


def _name(raw: str) -> str:
    if not re.match(r"^[A-Za-z0-9_.\-/:]+$", raw):
        raise ValueError("must be a name of letters, digits and _.-/:")
    return raw


def _auth_mode(raw: str) -> str:
    mode = raw.lower()
    if mode not in ("hosted-ui", "local"):
        raise ValueError("must be hosted-ui or local")
    return mode


def _receive_wait(raw: str) -> int:
    value = _positive_int(raw)
    if value > 20:
        raise ValueError("must be at most 20 (the longest SQS long poll)")
    return value


def _visibility_seconds(raw: str) -> int:
    value = _positive_int(raw)
    if value > 12 * 3600:
        raise ValueError("must be at most 43200 (the longest SQS visibility timeout, 12 hours)")
    return value


def _absolute_path(raw: str) -> str:
    if not raw.startswith("/") or "\0" in raw:
        raise ValueError("must be an absolute file path such as /tmp/scheduler-worker.heartbeat")
    return raw


def _script_url(raw: str) -> str:
    """A URL kept exactly as written (Stripe.js paths end in a slash that matters)."""
    if not re.match(r"^https?://[^\s/]+/\S*$", raw):
        raise ValueError("must be an http(s) URL with a path")
    return raw


@dataclass(frozen=True)
class Settings:
    """Every configurable value of the three processes, read once at startup."""

    aws_region: str = setting(
        "AWS_REGION",
        "eu-central-1",
        parse=_region,
        fallback=("AWS_DEFAULT_REGION",),
        doc="AWS region of every AWS client (falls back to `AWS_DEFAULT_REGION`).",
    )
    aws_endpoint_url: str | None = setting(
        "AWS_ENDPOINT_URL",
        None,
        parse=_url,
        doc="Endpoint of the local AWS (moto); unset in production (the real AWS endpoints).",
    )
    billing_table: str = setting("BILLING_TABLE", "billing", parse=_name, doc="DynamoDB table of invoices.")
    accounts_table: str = setting(
        "PAYMENT_METHODS_TABLE",
        "payment-methods",
        parse=_name,
        doc="The accounts table (Stripe customer, payment method, cost scope); deployed as payment-methods.",
    )
    events_table: str = setting(
        "EVENTS_TABLE", "events", parse=_name, doc="DynamoDB table of processed events, runs and leases."
    )
    billing_jobs_queue_url: str | None = setting(
        "BILLING_JOBS_QUEUE_URL",
        None,
        parse=_url,
        doc="SQS queue of per-account invoice jobs. Required by scheduler-worker.",
    )
    stripe_events_queue_url: str | None = setting(
        "STRIPE_EVENTS_QUEUE_URL",
        None,
        parse=_url,
        doc="SQS queue of verified Stripe events. Required by webhook-receiver and scheduler-worker.",
    )
    document_mail_queue_url: str | None = setting(
        "DOCUMENT_MAIL_QUEUE_URL",
        None,
        parse=_url,
        doc="SQS queue of documents to e-mail. scheduler-worker sends them; billing-api queues credit notes. "
        "Unset: no e-mail is sent.",
    )
    mail_events_queue_url: str | None = setting(
        "MAIL_EVENTS_QUEUE_URL",
        None,
        parse=_url,
        doc="SQS queue of SES's bounce, complaint and delivery events (through SNS); scheduler-worker reads it.",
    )
    invoice_mail_from: str | None = setting(
        "INVOICE_MAIL_FROM",
        None,
        parse=_mail_address,
        doc="Sender of the invoice e-mails (an address of the SES identity, e.g. rechnung@example.de).",
    )
    invoice_mail_from_name: str | None = setting(
        "INVOICE_MAIL_FROM_NAME", None, doc="Display name of the sender; default: `SELLER_NAME`."
    )
    invoice_mail_reply_to: str | None = setting(
        "INVOICE_MAIL_REPLY_TO", None, parse=_mail_address, doc="Reply-To of the invoice e-mails; unset: none."
    )
    invoice_mail_configuration_set: str | None = setting(
        "INVOICE_MAIL_CONFIGURATION_SET",
        None,
        parse=_name,
        doc="SES configuration set the e-mails are sent in (its event destination reports bounces).",
    )
    ses_max_send_rate: Decimal = setting(
        "SES_MAX_SEND_RATE",
        Decimal("1"),
        parse=_positive_number,
        doc="E-mails per second one worker sends at most: SES's sending rate (1 in the sandbox, 14 and up after).",
    )
    billing_page_url: str | None = setting(
        "BILLING_PAGE_URL",
        None,
        parse=_url,
        doc="The Billing tab's address, linked from the e-mail of an invoice whose payment failed.",
    )
    stripe_secret_id: str = setting(
        "STRIPE_SECRET_ID",
        "billing/stripe",
        parse=_name,
        doc='Secrets Manager secret: JSON {"secret_key", "publishable_key", "webhook_secrets": [...]}.',
    )
    stripe_api_base: str | None = setting(
        "STRIPE_API_BASE", None, parse=_url, doc="Stripe API base URL; unset means real Stripe."
    )
    stripe_max_network_retries: int = setting(
        "STRIPE_MAX_NETWORK_RETRIES",
        2,
        parse=_non_negative_int,
        doc="Retries the Stripe SDK makes on network errors and 409/429/5xx (same idempotency key).",
    )
    secrets_refresh_seconds: int = setting(
        "SECRETS_REFRESH_SECONDS",
        10,
        parse=_positive_int,
        doc="How long the Stripe secrets are cached before Secrets Manager is read again (a revoked one stops).",
    )
    cognito_user_pool_id: str | None = setting(
        "COGNITO_USER_POOL_ID", None, parse=_name, doc="Cognito user pool of the admins. Required by billing-api."
    )
    cognito_client_id: str | None = setting(
        "COGNITO_CLIENT_ID", None, parse=_name, doc="Cognito app client id (token audience). Required by billing-api."
    )
    cognito_jwks_url: str | None = setting(
        "COGNITO_JWKS_URL",
        None,
        parse=_url,
        shown_default="derived",
        doc="JWKS URL; default `<issuer>/.well-known/jwks.json`. The local stack overrides it.",
    )
    cognito_issuer: str | None = setting(
        "COGNITO_ISSUER",
        None,
        parse=_url,
        shown_default="derived",
        doc="Expected token issuer; default `https://cognito-idp.<region>.amazonaws.com/<pool id>`.",
    )
    admin_group: str = setting("ADMIN_GROUP", "admin", parse=_name, doc="Cognito group whose members may sign in.")
    operator_group: str = setting(
        "OPERATOR_GROUP",
        "operator",
        parse=_name,
        doc="Cognito group whose members may use the operator API and page (every account).",
    )
    cognito_token_use: str = setting(
        "COGNITO_TOKEN_USE",
        "access",
        parse=_token_use,
        doc="Which Cognito token billing-api accepts: `access` (checked by client_id) or `id` (checked by aud).",
    )
    account_claim: str = setting(
        "ACCOUNT_CLAIM",
        "sub",
        parse=_name,
        doc="Token claim whose value is the admin's account (`userId` in the tables).",
    )
    cors_allowed_origins: tuple[str, ...] = setting(
        "CORS_ALLOWED_ORIGINS",
        (),
        parse=_origins,
        shown_default="empty",
        doc="Comma-separated origins (https://admin.example.com) that may call billing-api from a browser.",
    )
    stripe_writes_per_minute: int = setting(
        "STRIPE_WRITES_PER_MINUTE",
        10,
        parse=_positive_int,
        doc="How often a minute one customer account may start each action that writes to Stripe (saving a "
        "payment method, paying now); beyond it billing-api answers 429 with Retry-After.",
    )
    operator_stripe_writes_per_minute: int = setting(
        "OPERATOR_STRIPE_WRITES_PER_MINUTE",
        120,
        parse=_positive_int,
        doc="The same for each operator and operator action (accounts, retries, voids, credit notes).",
    )
    cost_preview_ttl_seconds: int = setting(
        "COST_PREVIEW_TTL_SECONDS",
        21600,
        parse=_positive_int,
        doc="How long billing-api reuses one Cost Explorer answer for the current month's preview.",
    )
    log_level: str = setting("LOG_LEVEL", "INFO", parse=_log_level, doc="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    billing_currency: str = setting(
        "BILLING_CURRENCY", "eur", parse=_currency, doc="Currency of the invoices (ISO code, lower case)."
    )
    cost_explorer_metric: str = setting(
        "COST_EXPLORER_METRIC",
        "UnblendedCost",
        parse=_name,
        doc="Cost Explorer metric billed to customers (UnblendedCost, AmortizedCost, ...).",
    )
    excluded_record_types: tuple[ChargeType, ...] = setting(
        "EXCLUDED_RECORD_TYPES",
        (TAX,),
        parse=_record_types,
        shown_default="Tax",
        doc="Cost Explorer record types never passed on (AWS's own VAT is input tax to reclaim); none: pass all.",
    )
    base_fee: Decimal = setting(
        "BASE_FEE",
        Decimal("20.00"),
        parse=_non_negative_decimal,
        doc="Monthly base fee per account, in the invoice currency (an account's baseFeeOverride wins).",
    )
    fx_rate: Decimal | None = setting(
        "FX_RATE",
        None,
        parse=_positive_number,
        doc="Manual override: invoice-currency units per USD for the AWS costs; unset: each period's ECB rate.",
    )
    fx_source: str | None = setting("FX_SOURCE", None, doc="Where FX_RATE comes from (stored on every invoice).")
    fx_date: date | None = setting("FX_DATE", None, parse=_iso_date, doc="The date FX_RATE applies to (YYYY-MM-DD).")
    fx_rule: str = setting(
        "FX_RULE",
        "last-working-day",
        parse=_fx_rule,
        doc="Which ECB rate converts a period: last-working-day (of the period) or month-average.",
    )
    ecb_feed_url: str = setting(
        "ECB_FEED_URL",
        "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist-90d.xml",
        parse=_url,
        doc="The ECB's 90-day reference-rate feed (recent periods).",
    )
    ecb_history_url: str = setting(
        "ECB_HISTORY_URL",
        "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.xml",
        parse=_url,
        doc="The ECB's full-history feed (periods older than the 90-day feed).",
    )
    markup_percent: Decimal = setting(
        "MARKUP_PERCENT", Decimal("0"), parse=_non_negative_decimal, doc="Markup on AWS costs, in percent."
    )
    invoice_language: str = setting(
        "INVOICE_LANGUAGE", "de", parse=_language, doc="Language of the invoice lines: de or en."
    )
    billing_cron: str = setting(
        "BILLING_CRON",
        "0 0 1 * *",
        parse=_cron,
        doc="When scheduler-worker starts the billing run for the previous month (cron, UTC).",
    )
    correction_months: int = setting(
        "CORRECTION_MONTHS",
        3,
        parse=_correction_months,
        doc="Earlier billed months each run re-checks against Cost Explorer's final costs (correction lines).",
    )
    seller_name: str | None = setting(
        "SELLER_NAME", None, doc="The operator's legal name, as invoices name the seller."
    )
    seller_street: str | None = setting("SELLER_STREET", None, doc="The seller's street and number.")
    seller_postal_code: str | None = setting("SELLER_POSTAL_CODE", None, doc="The seller's postal code.")
    seller_city: str | None = setting("SELLER_CITY", None, doc="The seller's city.")
    seller_country: str = setting("SELLER_COUNTRY", "DE", doc="The seller's country (ISO 3166-1 alpha-2).")
    seller_vat_id: str | None = setting("SELLER_VAT_ID", None, doc="The seller's USt-IdNr (EU VAT id).")
    seller_tax_number: str | None = setting(
        "SELLER_TAX_NUMBER", None, doc="The seller's Steuernummer, where it has no USt-IdNr."
    )
    seller_contact_name: str | None = setting("SELLER_CONTACT_NAME", None, doc="Whom customers ask about invoices.")
    seller_contact_phone: str | None = setting("SELLER_CONTACT_PHONE", None, doc="The seller contact's phone.")
    seller_contact_email: str | None = setting("SELLER_CONTACT_EMAIL", None, doc="The seller contact's e-mail.")
    sepa_creditor_id: str | None = setting(
        "SEPA_CREDITOR_ID", None, doc="The seller's SEPA creditor id (Gläubiger-ID), for direct debits."
    )
    einvoice_bucket: str | None = setting(
        "EINVOICE_BUCKET",
        None,
        doc="S3 bucket of each finalized invoice's e-invoice files (XRechnung, ZUGFeRD PDF); unset: none written.",
    )
    tax_mode: str = setting(
        "TAX_MODE",
        "rates",
        parse=_tax_mode,
        doc="VAT on the invoices: rates (a Stripe Tax Rate on every line), stripe-tax (Stripe Tax computes it) "
        "or small-business (§ 19 UStG: none, with its legend).",
    )
    vat_rate: Decimal = setting(
        "VAT_RATE", Decimal("19"), parse=_vat_rate, doc="The German VAT rate in percent (TAX_MODE rates)."
    )
    retry_failed_on_new_payment_method: bool = setting(
        "RETRY_FAILED_ON_NEW_PAYMENT_METHOD",
        "true",
        parse=_on_off,
        doc="true: when a customer saves a new payment method, their failed invoices are paid again at once.",
    )
    cost_source: str = setting(
        "COST_SOURCE",
        "cost-explorer",
        parse=_cost_source,
        doc="Where the AWS costs come from: cost-explorer, or focus (the FOCUS 1.2 Data Export in S3).",
    )
    focus_export_uri: str | None = setting(
        "FOCUS_EXPORT_URI",
        None,
        parse=_export_uri,
        doc="The FOCUS export's folder, s3://<bucket>/<prefix>/<export-name> (holding data/ and metadata/). "
        "Required by COST_SOURCE=focus with FOCUS_ENGINE=duckdb.",
    )
    focus_engine: str = setting(
        "FOCUS_ENGINE",
        "duckdb",
        parse=_focus_engine,
        doc="What aggregates the export: duckdb (in the process, over the files downloaded) or athena.",
    )
    focus_cache_dir: str = setting(
        "FOCUS_CACHE_DIR",
        "/tmp/focus-export",
        parse=_absolute_path,
        doc="Where FOCUS_ENGINE=duckdb keeps the export's files it downloaded (each file once per version).",
    )
    focus_memory_limit: str = setting(
        "FOCUS_MEMORY_LIMIT",
        "3GB",
        parse=_name,
        doc="DuckDB's memory limit for one FOCUS query (it spills to disk beyond it).",
    )
    focus_athena_workgroup: str | None = setting(
        "FOCUS_ATHENA_WORKGROUP", None, parse=_name, doc="Athena workgroup of the FOCUS queries (FOCUS_ENGINE=athena)."
    )
    focus_athena_database: str | None = setting(
        "FOCUS_ATHENA_DATABASE",
        None,
        parse=_name,
        doc="Glue database of the FOCUS export's table (FOCUS_ENGINE=athena).",
    )
    focus_athena_table: str | None = setting(
        "FOCUS_ATHENA_TABLE", None, parse=_name, doc="Glue table over the FOCUS export (FOCUS_ENGINE=athena)."
    )
    focus_cost_column: str = setting(
        "FOCUS_COST_COLUMN",
        "BilledCost",
        parse=_focus_cost_column,
        doc="What a customer pays for: BilledCost (as AWS invoices it) or EffectiveCost (amortized: Savings "
        "Plans and reservations spread over the usage they covered).",
    )
    focus_marketplace: str = setting(
        "FOCUS_MARKETPLACE",
        "line",
        parse=_marketplace,
        doc="Marketplace charges (InvoiceIssuerName not Amazon Web Services): line (passed on, each its own "
        "line) or exclude.",
    )
    shared_cost_services: frozenset[str] = setting(
        "SHARED_COST_SERVICES",
        frozenset(),
        parse=_service_names,
        shown_default="none",
        doc="Comma-separated services whose costs are shared by all scopes (e.g. AWS Support (Business)).",
    )
    shared_cost_unattributed: bool = setting(
        "SHARED_COST_UNATTRIBUTED",
        False,
        parse=_on_off,
        shown_default="false",
        doc="true: the costs no scope claims (untagged, no linked account) are shared too.",
    )
    shared_cost_split: SharedCostSplit = setting(
        "SHARED_COST_SPLIT",
        SharedCostSplit.PROPORTIONAL,
        parse=_shared_split,
        doc="How shared costs are split over the scopes with costs of their own: proportional (to those costs) "
        "or even. Each share is the invoice line Anteilige gemeinsame Kosten.",
    )
    cost_finality: str = setting(
        "COST_FINALITY",
        "final",
        parse=_cost_finality,
        doc="final: the cron's run waits until Cost Explorer marks the month final; estimated: bill at once.",
    )
    final_costs_deadline_day: int = setting(
        "FINAL_COSTS_DEADLINE_DAY",
        8,
        parse=_deadline_day,
        doc="Day of the month after the period on which the run bills what is there, flagged estimated.",
    )
    final_costs_check_hour: int = setting(
        "FINAL_COSTS_CHECK_HOUR",
        6,
        parse=_hour,
        doc="Hour (UTC) of the daily re-check of a period waiting for final costs.",
    )
    stripe_max_requests_per_second: Decimal | None = setting(
        "STRIPE_MAX_REQUESTS_PER_SECOND",
        None,
        parse=_positive_number,
        shown_default="20 test / 80 live",
        doc="Stripe requests per second one worker process makes at most, across its threads. Unset: 20 with a "
        "test-mode key (Stripe allows 25), 80 with a live key (Stripe allows 100).",
    )
    cost_group_by: CostAttribution = setting(
        "COST_GROUP_BY",
        PAYER,
        parse=_cost_group_by,
        shown_default="SERVICE",
        doc="Cost Explorer grouping: SERVICE (whole payer account), LINKED_ACCOUNT or TAG:<key> (per-account scopes).",
    )
    worker_threads: int = setting(
        "WORKER_THREADS", 4, parse=_positive_int, doc="Threads of scheduler-worker that process invoice jobs."
    )
    queue_wait_seconds: int = setting(
        "QUEUE_WAIT_SECONDS",
        20,
        parse=_receive_wait,
        doc="SQS long poll of every consumer (1..20 s); also about how long scheduler-worker takes to stop.",
    )
    retry_base_seconds: int = setting(
        "RETRY_BASE_SECONDS",
        15,
        parse=_visibility_seconds,
        doc="First back-off of a queue message that failed for a transient reason; it doubles per attempt.",
    )
    retry_max_seconds: int = setting(
        "RETRY_MAX_SECONDS",
        7200,
        parse=_visibility_seconds,
        doc="Longest back-off between two attempts of a failed queue message (at most 12 hours).",
    )
    worker_heartbeat_file: str | None = setting(
        "WORKER_HEARTBEAT_FILE",
        None,
        parse=_absolute_path,
        doc="File scheduler-worker touches every 30 s while its consumers and scheduler live; unset: none.",
    )

    auth_mode: str = setting(
        "AUTH_MODE",
        "hosted-ui",
        parse=_auth_mode,
        doc="How the admin page signs in: hosted-ui (Cognito Hosted UI, code + PKCE) or local (password form).",
    )
    cognito_domain: str | None = setting(
        "COGNITO_DOMAIN",
        None,
        parse=_url,
        doc="Base URL of the Cognito Hosted UI (https://<prefix>.auth.<region>.amazoncognito.com or custom).",
    )
    cognito_signin_endpoint: str | None = setting(
        "COGNITO_SIGNIN_ENDPOINT",
        None,
        parse=_url,
        doc="Cognito endpoint the browser calls for password sign-in (AUTH_MODE=local); default: "
        "`AWS_ENDPOINT_URL` when set, else the regional Cognito endpoint.",
    )
    stripe_js_url: str = setting(
        "STRIPE_JS_URL",
        "https://js.stripe.com/v3/",
        parse=_script_url,
        doc="Where the admin page loads Stripe.js from; the local stack uses the emulator's stand-in.",
    )
    page_language: str = setting(
        "PAGE_LANGUAGE", "de", parse=_language, doc="Default language of the admin page: de or en."
    )

    def __post_init__(self) -> None:
        # The Cognito URLs follow from region and pool unless the local stack overrides them.
        if self.cognito_user_pool_id:
            issuer = f"https://cognito-idp.{self.aws_region}.amazonaws.com/{self.cognito_user_pool_id}"
            if self.cognito_issuer is None:
                object.__setattr__(self, "cognito_issuer", issuer)
            if self.cognito_jwks_url is None:
                object.__setattr__(self, "cognito_jwks_url", f"{issuer}/.well-known/jwks.json")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, require: Iterable[str] = ()) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``); all problems in one error."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for spec in dataclasses.fields(cls):
            meta = spec.metadata
            for name in (meta["env"], *meta["fallback"]):
                raw = environ.get(name)
                if raw is not None and raw.strip() != "":
                    break
            else:
                continue  # unset or empty: keep the default
            try:
                values[spec.name] = meta["parse"](raw.strip())
            except ValueError as error:
                problems.append(f"{name} {error}")
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        settings = cls(**values)
        settings.require(*require)
        return settings

    @property
    def shared_cost_rule(self) -> SharedCostRule:
        """Which costs are shared and how they are split."""
        return SharedCostRule(self.shared_cost_services, self.shared_cost_unattributed, self.shared_cost_split)

    def require(self, *attributes: str, process: str | None = None) -> Settings:
        """Raise ``SettingsError`` naming the variables of ``attributes`` that are not set."""
        missing = [self.env_name(name) for name in attributes if getattr(self, name) in (None, "")]
        if missing:
            who = f" by {process}" if process else ""
            raise SettingsError(f"required{who} but not set: {', '.join(missing)}")
        return self

    def required(self, attribute: str, *, process: str | None = None) -> str:
        """The text setting ``attribute``; ``SettingsError`` naming its variable if it is not set."""
        self.require(attribute, process=process)
        value = getattr(self, attribute)
        if not isinstance(value, str):
            raise SettingsError(f"{self.env_name(attribute)} is not a text setting")
        return value

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some values replaced (tests, and the local stack's launcher)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def env_name(cls, attribute: str) -> str:
        """The environment variable that sets ``attribute``."""
        for spec in dataclasses.fields(cls):
            if spec.name == attribute:
                return str(spec.metadata["env"])
        raise AttributeError(f"no setting named {attribute!r}")

    @classmethod
    def documentation(cls) -> list[tuple[str, str, str]]:
        """(variable, default, description) for every setting, as the README table lists them."""
        rows = []
        for spec in dataclasses.fields(cls):
            default = spec.metadata["shown_default"] or ("unset" if spec.default is None else str(spec.default))
            rows.append((spec.metadata["env"], default, spec.metadata["doc"]))
        return rows

    def summary(self) -> dict[str, Any]:
        """Every setting by variable name, for a startup log line (settings never hold secrets)."""
        return {spec.metadata["env"]: _plain(getattr(self, spec.name)) for spec in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, CostAttribution):
        return _cost_group_by_text(value)
    if isinstance(value, tuple) and value and all(isinstance(item, ChargeType) for item in value):
        return tuple(item.name for item in value)
    if isinstance(value, frozenset):
        return sorted(value)
    return str(value) if isinstance(value, Decimal) else value
