"""The local stack's worker settings: its parts (moto's endpoint and region, the tables, the queues, the
Stripe emulator's base URL) as the variables ``Settings`` reads, with the example seller and moto's fake
credentials. The stack starts its services with this mapping and writes it into stack.json
(``worker_environment``), where ``billing --stack`` reads it, so the command sees exactly what they see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# moto accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Where the local moto server takes revised Cost Explorer results (a correction of an earlier month).
COST_EXPLORER_REVISIONS_PATH = "/_local/cost-explorer/revisions"
# The local stack serves the ECB's feed at the ECB's own paths below its AWS endpoint.
LOCAL_ECB_FEED_PATH = "/stats/eurofxref/eurofxref-hist-90d.xml"
LOCAL_ECB_HISTORY_PATH = "/stats/eurofxref/eurofxref-hist.xml"
# The local stack's example seller (a valid-format USt-IdNr, the Bundesbank's test creditor id).
LOCAL_SELLER_SETTINGS = {
    "SELLER_NAME": "Beispiel Hosting GmbH",
    "SELLER_STREET": "Musterstraße 1",
    "SELLER_POSTAL_CODE": "10115",
    "SELLER_CITY": "Berlin",
    "SELLER_COUNTRY": "DE",
    "SELLER_VAT_ID": "DE136695976",
    "SELLER_CONTACT_NAME": "Erika Mustermann",
    "SELLER_CONTACT_PHONE": "+49 30 1234567",
    "SELLER_CONTACT_EMAIL": "rechnung@beispiel-hosting.de",
    "SEPA_CREDITOR_ID": "DE98ZZZ09999999999",
}


def worker_environment(info: Mapping[str, Any]) -> dict[str, str]:
    """The variables a local stack's worker runs with, from the stack's ``stack.json`` contents."""
    return {
        "AWS_REGION": info["region"],
        "AWS_ENDPOINT_URL": info["aws_endpoint"],
        "BILLING_TABLE": info["tables"]["billing"],
        "PAYMENT_METHODS_TABLE": info["tables"]["payment_methods"],
        "EVENTS_TABLE": info["tables"]["events"],
        "BILLING_JOBS_QUEUE_URL": info["queues"]["billing_jobs"],
        "STRIPE_EVENTS_QUEUE_URL": info["queues"]["stripe_events"],
        "STRIPE_API_BASE": info["stripe_api_base"],
        "ECB_FEED_URL": info["aws_endpoint"] + LOCAL_ECB_FEED_PATH,
        "ECB_HISTORY_URL": info["aws_endpoint"] + LOCAL_ECB_HISTORY_PATH,
        "COGNITO_USER_POOL_ID": info["cognito"]["user_pool_id"],
        **LOCAL_SELLER_SETTINGS,
        **({"EINVOICE_BUCKET": info["buckets"]["einvoices"]} if "buckets" in info else {}),
        **(mail_environment(info) if "mail" in info else {}),
        **(focus_environment(info) if "focus_export" in info else {}),
    }


def focus_environment(info: Mapping[str, Any]) -> dict[str, str]:
    """The FOCUS export in the stack's S3, and which cost source the stack bills from (COST_SOURCE at start)."""
    export = info["focus_export"]
    return {
        "COST_SOURCE": export["cost_source"],
        "FOCUS_EXPORT_URI": export["uri"],
        "FOCUS_CACHE_DIR": export["cache_dir"],
    }


def mail_environment(info: Mapping[str, Any]) -> dict[str, str]:
    """The invoice e-mail through the stack's SES (moto), at the sending rate SES allows after the sandbox."""
    return {
        "DOCUMENT_MAIL_QUEUE_URL": info["queues"]["document_mail"],
        "MAIL_EVENTS_QUEUE_URL": info["queues"]["mail_events"],
        "INVOICE_MAIL_FROM": info["mail"]["sender"],
        "INVOICE_MAIL_CONFIGURATION_SET": info["mail"]["configuration_set"],
        "SES_MAX_SEND_RATE": "14",
        "BILLING_PAGE_URL": info["mail"]["billing_page_url"],
    }


def command_environment(info: Mapping[str, Any]) -> dict[str, str]:
    """What ``billing --stack`` runs with: the worker's variables and the fake credentials (no real AWS)."""
    return {**LOCAL_AWS_CREDENTIALS, **worker_environment(info)}
