"""The one definition of the system's DynamoDB tables and SQS queues.

The local stack provisions from these definitions, the adapters use their key names, and the
infrastructure tests hold the Terraform definitions to them, so the three can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Index:
    """A global secondary index (projection ALL)."""

    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class Table:
    """A DynamoDB table, billed on demand, with string keys."""

    logical_name: str  # the name the Settings default uses, e.g. "billing"
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None

    def key_attributes(self) -> list[str]:
        """Every attribute that appears in a key of the table or one of its indexes."""
        names = [self.partition_key, self.sort_key]
        for index in self.indexes:
            names += [index.partition_key, index.sort_key]
        return sorted({n for n in names if n})

    def create_table_kwargs(self, physical_name: str) -> dict[str, Any]:
        """Arguments for boto3's DynamoDB ``create_table``."""
        kwargs: dict[str, Any] = {
            "TableName": physical_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in self.key_attributes()],
            "KeySchema": _key_schema(self.partition_key, self.sort_key),
        }
        if self.indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": _key_schema(index.partition_key, index.sort_key),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ]
        return kwargs


@dataclass(frozen=True)
class Queue:
    """A standard SQS queue with its dead-letter queue."""

    logical_name: str
    visibility_timeout_seconds: int
    max_receive_count: int  # receives before SQS moves a message to the DLQ
    dlq_retention_seconds: int = 14 * 24 * 3600
    message_retention_seconds: int = 4 * 24 * 3600
    # SQS's MaximumMessageSize, set on the queue and its DLQ alike (a dead letter is its message plus
    # its reason). The webhook receiver queues larger events as a claim check (receive_webhook.py).
    max_message_bytes: int = 256 * 1024

    @property
    def dlq_name(self) -> str:
        return f"{self.logical_name}-dlq"


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return schema


# One item per account and invoice; invoiceId is deterministic per account and period
# (inv_2024-11_<userId>), which is what lets a rerun find the invoice it already started.
BILLING = Table(
    logical_name="billing",
    partition_key="userId",
    sort_key="invoiceId",
    indexes=(Index("byStripeInvoiceId", "stripeInvoiceId"),),
)

# The accounts table: one item per account (Stripe customer, cost scope, default payment method and its
# display fields). It keeps the name it was deployed with, "payment-methods".
ACCOUNTS = Table(
    logical_name="payment-methods",
    partition_key="userId",
    indexes=(Index("byStripeCustomerId", "stripeCustomerId"),),
)

# Processed Stripe event ids (deduplication), run / lease records and rates; old items expire by TTL.
# The audit log lives here too (never expiring): each entry is kept once per stream it belongs to
# ("all", "account#<id>"), and the sparse index lists a stream newest first.
EVENTS = Table(
    logical_name="events",
    partition_key="pk",
    ttl_attribute="expiresAt",
    indexes=(Index("byAuditStream", "auditStream", "auditAt"),),
)

TABLES: tuple[Table, ...] = (BILLING, ACCOUNTS, EVENTS)

# A short visibility, which the worker extends while it handles a message: a dead worker's message is
# back in 30 s. maxReceiveCount is only the backstop for a message that kills its worker each time:
# the worker dead-letters poison messages itself, and never counts transient failures (consumer).
BILLING_JOBS = Queue(logical_name="billing-jobs", visibility_timeout_seconds=30, max_receive_count=10)
STRIPE_EVENTS = Queue(logical_name="stripe-events", visibility_timeout_seconds=30, max_receive_count=10)

# One message per document (invoice or credit note) to e-mail: the worker sends it, paced to SES's rate.
DOCUMENT_MAIL = Queue(logical_name="document-mail", visibility_timeout_seconds=30, max_receive_count=10)
# SES's bounce, complaint and delivery events, published by the configuration set to SNS, which delivers
# them here (raw message delivery).
MAIL_EVENTS = Queue(logical_name="mail-events", visibility_timeout_seconds=30, max_receive_count=10)

QUEUES: tuple[Queue, ...] = (BILLING_JOBS, STRIPE_EVENTS, DOCUMENT_MAIL, MAIL_EVENTS)

# The e-invoice files (XRechnung, ZUGFeRD PDF): private, encrypted, versioned; Terraform adds Object Lock
# retention for the legal keeping period (§ 14b UStG: eight years).
EINVOICE_BUCKET = "billing-einvoices"
