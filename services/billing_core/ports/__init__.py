"""The ports: what use cases need from storage, queues, the AWS costs, Secrets Manager and Stripe.

Use cases depend on these abstract classes and on domain types only. ``billing_core.adapters``
implements them over boto3 and the Stripe SDK; ``tests/support/fakes`` implements them in memory.
"""

from billing_core.ports.infrastructure import (
    CostSource,
    DeadLetter,
    DocumentStore,
    EInvoiceWriter,
    MessageQueue,
    OutgoingMessage,
    ReceivedMessage,
    SecretsProvider,
    StripeSecrets,
)
from billing_core.ports.ledger import EventClaim, Leases, PreviewCache, ProcessedEvents, RunRecords
from billing_core.ports.storage import (
    AccountRepository,
    AuditLog,
    FieldIs,
    InvoiceRepository,
    Memberships,
    Page,
    UserDirectory,
)
from billing_core.ports.stripe import InvoiceLine, PaymentGateway, SignedEvent, TaxRateSpec, WebhookSignatures
from billing_core.ports.stripe_objects import (
    CreditNoteRefund,
    EventObject,
    LineTax,
    OtherStripeObject,
    SetupError,
    StatusTransitions,
    StripeCreditNote,
    StripeCreditNoteLine,
    StripeCustomer,
    StripeEvent,
    StripeInvoice,
    StripeInvoiceLine,
    StripePaymentMethod,
    StripeSetupIntent,
)

__all__ = [
    "AccountRepository",
    "AuditLog",
    "CostSource",
    "CreditNoteRefund",
    "DocumentStore",
    "EInvoiceWriter",
    "EventObject",
    "EventClaim",
    "FieldIs",
    "InvoiceLine",
    "LineTax",
    "TaxRateSpec",
    "InvoiceRepository",
    "Leases",
    "Memberships",
    "MessageQueue",
    "OtherStripeObject",
    "DeadLetter",
    "OutgoingMessage",
    "Page",
    "PaymentGateway",
    "PreviewCache",
    "ProcessedEvents",
    "ReceivedMessage",
    "RunRecords",
    "SecretsProvider",
    "SetupError",
    "SignedEvent",
    "StatusTransitions",
    "StripeCreditNote",
    "StripeCreditNoteLine",
    "StripeCustomer",
    "StripeEvent",
    "StripeInvoice",
    "StripeInvoiceLine",
    "StripePaymentMethod",
    "UserDirectory",
    "StripeSetupIntent",
    "StripeSecrets",
    "WebhookSignatures",
]
