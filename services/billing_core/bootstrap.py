"""The composition root: builds each process's real adapters and its use cases from ``Settings``.

Entry points call ``bootstrap_api``, ``bootstrap_webhook_receiver`` or ``bootstrap_worker`` once at
startup and get the process's use cases, ready to call (``ApiUseCases``, ``WebhookReceiverUseCases``,
``WorkerUseCases``); they never see an adapter. Nothing else wires a use case. Tests pass ready boto3
clients (or a session) and a Stripe client factory to reach the local stack, or build the same use
cases over the ports of ``tests/support/fakes`` (``WorkerUseCases(WorkerPorts(...))``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from billing_core.adapters.cognito_users import CognitoUserDirectory, CognitoUserInfo
from billing_core.adapters.cost_explorer import CostExplorerCostSource
from billing_core.adapters.dynamodb import DynamoAccountRepository, DynamoInvoiceRepository
from billing_core.adapters.dynamodb_credit_notes import DynamoCreditNotes
from billing_core.adapters.dynamodb_deliveries import DynamoDeliveries
from billing_core.adapters.dynamodb_events import (
    DynamoAuditLog,
    DynamoLeases,
    DynamoMemberships,
    DynamoPeriodRates,
    DynamoPreviewCache,
    DynamoProcessedEvents,
    DynamoRequestLimits,
    DynamoRunRecords,
)
from billing_core.adapters.ecb_feed import EcbFeed
from billing_core.adapters.einvoice_files import EInvoiceFiles
from billing_core.adapters.focus_athena import AthenaFocusEngine
from billing_core.adapters.focus_duckdb import DuckDbFocusEngine
from billing_core.adapters.focus_export import FocusCostSource, FocusExportFiles, MarketplaceCharges
from billing_core.adapters.rate_limited_gateway import RateLimitedPaymentGateway, TokenBucket, request_budget
from billing_core.adapters.s3_documents import S3DocumentStore
from billing_core.adapters.secrets_manager import SecretsManagerSecretsProvider
from billing_core.adapters.ses_mail import PacedMailSender, SesMailSender
from billing_core.adapters.shared_cost_source import SharedCostSource
from billing_core.adapters.sqs import SqsMessageQueue
from billing_core.adapters.stripe_gateway import ClientFactory, StripePaymentGateway
from billing_core.adapters.stripe_webhooks import StripeWebhookSignatures
from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import CreditNote
from billing_core.domain.errors import ConfigurationError
from billing_core.domain.fx import FxRate, FxRule
from billing_core.domain.invoice_plan import BillingPolicy
from billing_core.domain.records import Invoice
from billing_core.domain.seller import Seller
from billing_core.domain.tax import TaxMode, TaxPolicy
from billing_core.errors import SettingsError
from billing_core.ports import (
    AccountRepository,
    AuditLog,
    CostSource,
    CreditNoteRepository,
    DeliveryRepository,
    DocumentStore,
    FocusEngine,
    InvoiceRepository,
    Leases,
    Memberships,
    MessageQueue,
    PaymentGateway,
    PreviewCache,
    ProcessedEvents,
    RequestLimits,
    RunRecords,
    SecretsProvider,
    UserDirectory,
)
from billing_core.ports.mail import MailSender
from billing_core.ports.rates import PeriodRates, ReferenceRateFeed
from billing_core.settings import Settings
from billing_core.use_cases.apply_event import EventPorts
from billing_core.use_cases.billing_overview import CustomerBilling
from billing_core.use_cases.billing_run import BillingRun
from billing_core.use_cases.cost_preview import CostPreviewService
from billing_core.use_cases.credit_notes import CreditNotes, credit_note_files
from billing_core.use_cases.customer_balance import books_balance_before
from billing_core.use_cases.document_mail import DocumentMailer, MailSettings, credit_note_mailing
from billing_core.use_cases.einvoices import CreditNoteEInvoices, EInvoiceFile, EInvoices, StoredEInvoices
from billing_core.use_cases.exchange_rates import ExchangeRates
from billing_core.use_cases.invoice_job import InvoiceJob
from billing_core.use_cases.operations import DeadLetterQueues, RunOverview, run_overview
from billing_core.use_cases.operator_accounts import OperatorAccounts
from billing_core.use_cases.operator_invoices import OperatorInvoices
from billing_core.use_cases.period_report import PeriodReport, period_report
from billing_core.use_cases.receive_webhook import WebhookIntake
from billing_core.use_cases.reconcile import ReconcileReport, reconcile
from billing_core.use_cases.reissue import Reissue
from billing_core.use_cases.request_budget import StripeWriteBudget

log = logging.getLogger(__name__)

API = "billing-api"
WEBHOOK_RECEIVER = "webhook-receiver"
WORKER = "scheduler-worker"

# Settings each process cannot start without (beyond those with defaults).
REQUIRED_SETTINGS: dict[str, tuple[str, ...]] = {
    API: ("cognito_user_pool_id", "cognito_client_id"),
    WEBHOOK_RECEIVER: ("stripe_events_queue_url",),
    WORKER: ("billing_jobs_queue_url", "stripe_events_queue_url"),
}

# Standard retry mode backs off on throttling and 5xx inside botocore; timeouts keep a hung
# endpoint from holding a request thread or an SQS message forever.
_AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)
# The web processes answer in their request: the webhook receiver answers Stripe (an unreachable SQS
# must be a quick 503, and Stripe retries), billing-api answers people (a stalled AWS is a quick 503
# with Retry-After, not a page that hangs). At most two calls a request, each two attempts of
# 2 s + 3 s: well inside gunicorn's 30 s, so even a stalled AWS gets a JSON 503, never a killed worker.
REQUEST_PATH_AWS_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=2, read_timeout=3
)


@dataclass(frozen=True)
class StripeTimeouts:
    """Connect and read timeouts of the Stripe SDK's HTTP client, and the most retries it may make."""

    connect_seconds: float
    read_seconds: float
    max_network_retries: int


# The SDK's default waits 80 s for an answer. billing-api answers a person: a stalled Stripe is a 503 with
# Retry-After within seconds (the SDK retries once, under the same idempotency key). The worker may wait
# longer: its messages retry anyway, but a hung request must not hold a message (and its claim) for minutes.
API_STRIPE_TIMEOUTS = StripeTimeouts(connect_seconds=2, read_seconds=5, max_network_retries=1)
WORKER_STRIPE_TIMEOUTS = StripeTimeouts(connect_seconds=5, read_seconds=20, max_network_retries=2)
# The preview may read the ECB feed (at most every few hours): a stalled feed must not hold a page.
API_FEED_TIMEOUT = (2.0, 3.0)


@dataclass
class ApiPorts:
    """billing-api's adapters: the account's invoices and payment method, costs, Stripe."""

    settings: Settings
    invoices: InvoiceRepository
    accounts: AccountRepository
    costs: CostSource
    payments: PaymentGateway
    secrets: SecretsProvider
    billing_jobs: MessageQueue | None  # the admin's "run now"; None when not configured
    preview_cache: PreviewCache | None = None  # None: every page view asks Cost Explorer
    leases: Leases | None = None  # who refills the preview cache
    runs: RunRecords | None = None  # whether last month's run waits for final costs
    period_rates: PeriodRates | None = None  # the preview converts at the newest stored period rate
    rate_feed: ReferenceRateFeed | None = None
    memberships: Memberships | None = None  # which account an invited admin acts for
    request_limits: RequestLimits | None = None  # how often a caller may write to Stripe (None: no limit)
    audit: AuditLog | None = None  # the operator's actions through the operator API
    user_info: CognitoUserInfo | None = None  # the signed-in admin's e-mail for their Stripe customer
    users: UserDirectory | None = None  # where the operator page invites a customer's admins
    documents: DocumentStore | None = None  # the e-invoice files (EINVOICE_BUCKET)
    credit_notes: CreditNoteRepository | None = None  # the credit notes of issued invoices (events table)
    deliveries: DeliveryRepository | None = None  # the e-mail of invoices and credit notes (events table)
    document_mail: MessageQueue | None = None  # where a credit note's e-mail is queued (DOCUMENT_MAIL_QUEUE_URL)


@dataclass
class WebhookReceiverPorts:
    """webhook-receiver's adapters: the webhook secrets and the queue it hands events to."""

    settings: Settings
    secrets: SecretsProvider
    stripe_events: MessageQueue


@dataclass
class WorkerPorts:
    """scheduler-worker's adapters: everything the billing run, the event consumer and the operator touch."""

    settings: Settings
    invoices: InvoiceRepository
    accounts: AccountRepository
    events: ProcessedEvents
    leases: Leases
    runs: RunRecords
    costs: CostSource
    payments: PaymentGateway
    secrets: SecretsProvider
    billing_jobs: MessageQueue
    stripe_events: MessageQueue
    # The rate each period is billed at: stored once, fixed from the ECB feed (or FX_RATE).
    period_rates: PeriodRates | None = None
    rate_feed: ReferenceRateFeed | None = None
    audit: AuditLog | None = None  # every operator action (the ``billing`` command's)
    memberships: Memberships | None = None
    users: UserDirectory | None = None  # Cognito, where the operator invites a customer's admins
    documents: DocumentStore | None = None  # the e-invoice files (EINVOICE_BUCKET)
    credit_notes: CreditNoteRepository | None = None  # the credit notes of issued invoices (events table)
    deliveries: DeliveryRepository | None = None  # the e-mail of invoices and credit notes (events table)
    document_mail: MessageQueue | None = None  # documents to e-mail (DOCUMENT_MAIL_QUEUE_URL)
    mail_events: MessageQueue | None = None  # SES's bounces and complaints (MAIL_EVENTS_QUEUE_URL)
    mail: MailSender | None = None  # SES, paced to SES_MAX_SEND_RATE (None without INVOICE_MAIL_FROM)


class _Clients:
    """Creates each boto3 client once, unless the caller handed one in."""

    def __init__(
        self,
        settings: Settings,
        session: boto3.Session | None,
        clients: Mapping[str, Any] | None,
        config: Config = _AWS_CONFIG,
    ) -> None:
        self._settings = settings
        self._session = session or boto3.Session(region_name=settings.aws_region)
        self._clients = dict(clients or {})
        self._config = config

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            # Settings may come from a file (`billing --stack`), not the environment boto3 reads itself.
            endpoint = {"endpoint_url": self._settings.aws_endpoint_url} if self._settings.aws_endpoint_url else {}
            self._clients[service] = self._session.client(
                service, region_name=self._settings.aws_region, config=self._config, **endpoint
            )
        return self._clients[service]


def aws_session_from(environ: Mapping[str, str]) -> boto3.Session:
    """A boto3 session with the credentials and region in ``environ`` (a local stack's), never the caller's profile."""
    return boto3.Session(
        aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
        region_name=environ.get("AWS_REGION"),
    )


def _secrets(settings: Settings, clients: _Clients, secrets: SecretsProvider | None) -> SecretsProvider:
    return secrets or SecretsManagerSecretsProvider(
        clients("secretsmanager"), settings.stripe_secret_id, refresh_seconds=settings.secrets_refresh_seconds
    )


def _payments(
    settings: Settings,
    secrets: SecretsProvider,
    stripe_client_factory: ClientFactory | None,
    *,
    timeouts: StripeTimeouts,
) -> PaymentGateway:
    kwargs: dict[str, Any] = {}
    if stripe_client_factory is not None:
        kwargs["client_factory"] = stripe_client_factory
    return StripePaymentGateway(
        secrets,
        api_base=settings.stripe_api_base,
        max_network_retries=min(settings.stripe_max_network_retries, timeouts.max_network_retries),
        timeout=(timeouts.connect_seconds, timeouts.read_seconds),
        **kwargs,
    )


def api_ports(
    settings: Settings,
    *,
    session: boto3.Session | None = None,
    clients: Mapping[str, Any] | None = None,
    secrets: SecretsProvider | None = None,
    stripe_client_factory: ClientFactory | None = None,
) -> ApiPorts:
    """Wire billing-api. ``clients`` maps boto3 service names (``dynamodb``, ``sqs``, ``ce``,
    ``secretsmanager``) to ready clients; anything not given is created from ``session``."""
    settings.require(*REQUIRED_SETTINGS[API], process=API)
    make = _Clients(settings, session, clients, config=REQUEST_PATH_AWS_CONFIG)
    secrets = _secrets(settings, make, secrets)
    return ApiPorts(
        settings=settings,
        invoices=DynamoInvoiceRepository(make("dynamodb"), settings.billing_table),
        accounts=DynamoAccountRepository(make("dynamodb"), settings.accounts_table),
        # A page does not wait out Cost Explorer's throttling: one attempt (botocore's retry aside).
        costs=cost_source(settings, make, max_attempts=1),
        payments=_payments(settings, secrets, stripe_client_factory, timeouts=API_STRIPE_TIMEOUTS),
        secrets=secrets,
        billing_jobs=SqsMessageQueue(make("sqs"), _required(settings.billing_jobs_queue_url))
        if settings.billing_jobs_queue_url
        else None,
        preview_cache=DynamoPreviewCache(make("dynamodb"), settings.events_table),
        leases=DynamoLeases(make("dynamodb"), settings.events_table),
        runs=DynamoRunRecords(make("dynamodb"), settings.events_table),
        period_rates=DynamoPeriodRates(make("dynamodb"), settings.events_table),
        rate_feed=EcbFeed(settings.ecb_feed_url, settings.ecb_history_url, timeout_seconds=API_FEED_TIMEOUT),
        memberships=DynamoMemberships(make("dynamodb"), settings.events_table),
        request_limits=DynamoRequestLimits(make("dynamodb"), settings.events_table),
        audit=DynamoAuditLog(make("dynamodb"), settings.events_table),
        user_info=CognitoUserInfo(make("cognito-idp")) if settings.cognito_user_pool_id else None,
        users=CognitoUserDirectory(
            make("cognito-idp"),
            settings.cognito_user_pool_id,
            settings.admin_group,
            operator_group=settings.operator_group,
            hand_out_passwords=settings.aws_endpoint_url is not None,
        )
        if settings.cognito_user_pool_id
        else None,
        documents=S3DocumentStore(make("s3"), settings.einvoice_bucket) if settings.einvoice_bucket else None,
        credit_notes=DynamoCreditNotes(make("dynamodb"), settings.events_table),
        deliveries=DynamoDeliveries(make("dynamodb"), settings.events_table),
        document_mail=_queue(make, settings.document_mail_queue_url),
    )


def _queue(make: _Clients, url: str | None) -> MessageQueue | None:
    return SqsMessageQueue(make("sqs"), url) if url else None


def _mail_sender(make: _Clients, settings: Settings) -> MailSender | None:
    """SES v2 in the configuration set, at most SES_MAX_SEND_RATE messages a second (``None``: no sender)."""
    if not settings.invoice_mail_from:
        return None
    ses = SesMailSender(make("sesv2"), configuration_set=settings.invoice_mail_configuration_set)
    return PacedMailSender.at_rate(ses, settings.ses_max_send_rate)


def webhook_receiver_ports(
    settings: Settings,
    *,
    session: boto3.Session | None = None,
    clients: Mapping[str, Any] | None = None,
    secrets: SecretsProvider | None = None,
) -> WebhookReceiverPorts:
    """Wire webhook-receiver: only the secrets and the ``stripe-events`` queue."""
    settings.require(*REQUIRED_SETTINGS[WEBHOOK_RECEIVER], process=WEBHOOK_RECEIVER)
    make = _Clients(settings, session, clients, REQUEST_PATH_AWS_CONFIG)
    return WebhookReceiverPorts(
        settings=settings,
        secrets=_secrets(settings, make, secrets),
        stripe_events=SqsMessageQueue(make("sqs"), _required(settings.stripe_events_queue_url)),
    )


def worker_ports(
    settings: Settings,
    *,
    session: boto3.Session | None = None,
    clients: Mapping[str, Any] | None = None,
    secrets: SecretsProvider | None = None,
    stripe_client_factory: ClientFactory | None = None,
) -> WorkerPorts:
    """Wire scheduler-worker: tables, both queues, Cost Explorer and Stripe."""
    settings.require(*REQUIRED_SETTINGS[WORKER], process=WORKER)
    make = _Clients(settings, session, clients)
    secrets = _secrets(settings, make, secrets)
    return WorkerPorts(
        settings=settings,
        invoices=DynamoInvoiceRepository(make("dynamodb"), settings.billing_table),
        accounts=DynamoAccountRepository(make("dynamodb"), settings.accounts_table),
        events=DynamoProcessedEvents(make("dynamodb"), settings.events_table),
        leases=DynamoLeases(make("dynamodb"), settings.events_table),
        runs=DynamoRunRecords(make("dynamodb"), settings.events_table),
        costs=cost_source(settings, make),
        payments=_payments(settings, secrets, stripe_client_factory, timeouts=WORKER_STRIPE_TIMEOUTS),
        secrets=secrets,
        billing_jobs=SqsMessageQueue(make("sqs"), _required(settings.billing_jobs_queue_url)),
        stripe_events=SqsMessageQueue(make("sqs"), _required(settings.stripe_events_queue_url)),
        period_rates=DynamoPeriodRates(make("dynamodb"), settings.events_table),
        rate_feed=EcbFeed(settings.ecb_feed_url, settings.ecb_history_url),
        audit=DynamoAuditLog(make("dynamodb"), settings.events_table),
        memberships=DynamoMemberships(make("dynamodb"), settings.events_table),
        users=CognitoUserDirectory(
            make("cognito-idp"),
            settings.cognito_user_pool_id,
            settings.admin_group,
            operator_group=settings.operator_group,
            hand_out_passwords=settings.aws_endpoint_url is not None,
        )
        if settings.cognito_user_pool_id
        else None,
        documents=S3DocumentStore(make("s3"), settings.einvoice_bucket) if settings.einvoice_bucket else None,
        credit_notes=DynamoCreditNotes(make("dynamodb"), settings.events_table),
        deliveries=DynamoDeliveries(make("dynamodb"), settings.events_table),
        document_mail=_queue(make, settings.document_mail_queue_url),
        mail_events=_queue(make, settings.mail_events_queue_url),
        mail=_mail_sender(make, settings),
    )


# --- settings as domain objects ----------------------------------------------------------------------


def policy_from_settings(settings: Settings) -> BillingPolicy:
    """The billing policy the settings describe (base fee, currency, FX rate, markup, language)."""
    fx = None
    if settings.fx_rate is not None:
        if not settings.fx_source or settings.fx_date is None:
            raise SettingsError("FX_RATE is set but FX_SOURCE or FX_DATE is not: say where the rate comes from")
        fx = FxRate(settings.fx_rate, settings.fx_source, settings.fx_date)
    try:
        return BillingPolicy(
            base_fee=settings.base_fee,
            currency=settings.billing_currency,
            fx=fx,
            markup_percent=settings.markup_percent,
            language=settings.invoice_language,
        )
    except ConfigurationError as error:
        raise SettingsError(f"invalid billing settings: {error}") from error


def cost_source(settings: Settings, make: Callable[[str], Any], *, max_attempts: int = 6) -> CostSource:
    """The cost source ``COST_SOURCE`` names, with the shared costs split when a rule is set.

    ``max_attempts``: Cost Explorer's attempts under throttling (a page makes one)."""
    source: CostSource
    if settings.cost_source == "focus":
        source = _focus_source(settings, make)
    else:
        source = CostExplorerCostSource(
            make("ce"),
            metric=settings.cost_explorer_metric,
            excluded=settings.excluded_record_types,
            max_attempts=max_attempts,
        )
    rule = settings.shared_cost_rule
    return SharedCostSource(source, rule) if rule.active else source


def _focus_source(settings: Settings, make: Callable[[str], Any]) -> FocusCostSource:
    engine: FocusEngine
    if settings.focus_engine == "athena":
        settings.require(
            "focus_athena_workgroup", "focus_athena_database", "focus_athena_table", process="FOCUS_ENGINE=athena"
        )
        engine = AthenaFocusEngine(
            make("athena"),
            workgroup=_required(settings.focus_athena_workgroup),
            database=_required(settings.focus_athena_database),
            table=_required(settings.focus_athena_table),
        )
    else:
        settings.require("focus_export_uri", process="COST_SOURCE=focus")
        files = FocusExportFiles(make("s3"), _required(settings.focus_export_uri), Path(settings.focus_cache_dir))
        engine = DuckDbFocusEngine(files.paths, memory_limit=settings.focus_memory_limit)
    try:
        return FocusCostSource(
            engine,
            cost_column=settings.focus_cost_column,
            excluded=settings.excluded_record_types,
            marketplace=MarketplaceCharges(settings.focus_marketplace),
        )
    except ValueError as error:
        raise SettingsError(f"EXCLUDED_RECORD_TYPES under COST_SOURCE=focus: {error}") from None


def cost_requests_of(costs: CostSource) -> Callable[[], int] | None:
    """How many paid requests the cost source has made so far, where it counts them (Cost Explorer)."""
    if isinstance(costs, SharedCostSource):
        costs = costs.source
    if isinstance(costs, CostExplorerCostSource):
        source = costs
        return lambda: source.requests_made
    return None


def exchange_rates_for(settings: Settings, stored: PeriodRates, feed: ReferenceRateFeed | None) -> ExchangeRates:
    """Each period's rate: FX_RATE when the operator set one, else the ECB's under FX_RULE; stored once."""
    return ExchangeRates(
        stored, feed, rule=FxRule(settings.fx_rule), manual=policy_from_settings(settings).fx, currency="USD"
    )


def seller_from_settings(settings: Settings) -> Seller:
    """The operator as the seller on its invoices, from the SELLER_* settings (validated)."""
    return Seller(
        name=settings.seller_name,
        street=settings.seller_street,
        postal_code=settings.seller_postal_code,
        city=settings.seller_city,
        country=settings.seller_country,
        vat_id=settings.seller_vat_id,
        tax_number=settings.seller_tax_number,
        contact_name=settings.seller_contact_name,
        contact_phone=settings.seller_contact_phone,
        contact_email=settings.seller_contact_email,
        sepa_creditor_id=settings.sepa_creditor_id,
    )


def tax_policy_from_settings(settings: Settings) -> TaxPolicy:
    """The VAT the settings describe (TAX_MODE, VAT_RATE, the seller's country)."""
    try:
        return TaxPolicy(TaxMode(settings.tax_mode), settings.vat_rate, settings.seller_country.upper())
    except ConfigurationError as error:
        raise SettingsError(f"invalid VAT settings: {error}") from error


# --- each process's use cases, ready to call -----------------------------------------------------------
# Each is built on first use, so a command that needs no seller (``billing accounts list``) runs
# without SELLER_* settings; what a process always needs is checked when it starts (REQUIRED_SETTINGS).


def _exchange_rates(ports: ApiPorts | WorkerPorts) -> ExchangeRates | None:
    """The stored period rates behind FX_RULE (``None`` where the process has no rate store)."""
    if ports.period_rates is None:
        return None
    return exchange_rates_for(ports.settings, ports.period_rates, ports.rate_feed)


class _OperatorUseCases:
    """What billing-api (the operator API) and the worker (the ``billing`` command) both offer the operator."""

    _ports: ApiPorts | WorkerPorts

    @property
    def settings(self) -> Settings:
        """The settings the process was wired from."""
        return self._ports.settings

    @cached_property
    def operator_accounts(self) -> OperatorAccounts:
        """The operator's account administration, audited."""
        ports = self._ports
        return OperatorAccounts(
            ports.accounts,
            ports.payments,
            self._audit(),
            attribution=ports.settings.cost_group_by,
            memberships=ports.memberships,
            users=ports.users,
            tax=tax_policy_from_settings(ports.settings),
        )

    @cached_property
    def operator_invoices(self) -> OperatorInvoices:
        """The operator's invoices across accounts (list, retry, void), audited."""
        return OperatorInvoices(self._ports.invoices, self._ports.payments, self._audit())

    @cached_property
    def credit_notes(self) -> CreditNotes:
        """Credit notes and cancellations of issued invoices, audited, each with its e-invoice."""
        if self._ports.credit_notes is None:
            raise SettingsError("credit notes need the events table")
        return self._credit_notes_through(self._ports.payments, self._audit())

    def _credit_notes_through(self, payments: PaymentGateway, audit: AuditLog) -> CreditNotes:
        """The credit notes use case calling Stripe through ``payments``."""
        ports = self._ports
        assert ports.credit_notes is not None  # checked by the callers
        return CreditNotes(
            ports.invoices,
            ports.credit_notes,
            payments,
            audit,
            issue_files=self._credit_note_files(ports.credit_notes),
            after_issue=credit_note_mailing(self.document_mailer),
        )

    @cached_property
    def document_mailer(self) -> DocumentMailer | None:
        """The e-mail of invoices and credit notes (``None``: no events table or no document store)."""
        ports = self._ports
        if ports.deliveries is None or ports.credit_notes is None or ports.documents is None or ports.audit is None:
            return None
        settings = ports.settings
        sender = getattr(ports, "mail", None)
        return DocumentMailer(
            invoices=ports.invoices,
            credit_notes=ports.credit_notes,
            accounts=ports.accounts,
            deliveries=ports.deliveries,
            files=StoredEInvoices(ports.documents),
            queue=ports.document_mail,
            audit=ports.audit,
            sender=sender,
            settings=MailSettings(
                settings.invoice_mail_from,
                settings.invoice_mail_from_name or settings.seller_name,
                settings.invoice_mail_reply_to,
                settings.billing_page_url,
            )
            if settings.invoice_mail_from
            else None,
        )

    def _credit_note_files(self, notes: CreditNoteRepository) -> Callable[[CreditNote, Invoice], CreditNote] | None:
        """The step writing an issued credit note's e-invoice (``None``: no document store)."""
        ports = self._ports
        if not ports.documents:
            return None
        files = CreditNoteEInvoices(
            documents=ports.documents,
            writer=EInvoiceFiles(),
            seller=seller_from_settings(ports.settings),
            language=ports.settings.invoice_language,
        )
        return credit_note_files(files, ports.accounts, notes)

    def credit_note_file(self, note: CreditNote, format_name: str) -> EInvoiceFile | None:
        """The stored e-invoice of credit note ``note`` in ``format_name``, or ``None``."""
        documents = self._ports.documents
        return StoredEInvoices(documents).credit_note_file(note, format_name) if documents is not None else None

    def run_overview(self, period: Period) -> RunOverview:
        """A period's run and its invoices per status."""
        return run_overview(period, runs=self._ports.runs, invoices=self._ports.invoices)

    def einvoice_file(self, invoice: Invoice, format_name: str) -> EInvoiceFile | None:
        """The stored e-invoice of ``invoice`` in ``format_name``, or ``None`` if there is none (yet)."""
        documents = self._ports.documents
        return StoredEInvoices(documents).file(invoice, format_name) if documents is not None else None

    def _audit(self) -> AuditLog:
        if self._ports.audit is None:
            raise SettingsError("the operator's commands need the audit log (the events table)")
        return self._ports.audit


class ApiUseCases(_OperatorUseCases):
    """billing-api's use cases: an admin's Billing tab, the cost preview, the operator's API."""

    _ports: ApiPorts

    def __init__(self, ports: ApiPorts) -> None:
        self._ports = ports

    @property
    def memberships(self) -> Memberships | None:
        """Which account an invited admin acts for (read by the request authentication)."""
        return self._ports.memberships

    @cached_property
    def stripe_write_budget(self) -> StripeWriteBudget:
        """How often a caller may start an action that writes to Stripe."""
        settings = self._ports.settings
        return StripeWriteBudget(
            self._ports.request_limits,
            per_account=settings.stripe_writes_per_minute,
            per_operator=settings.operator_stripe_writes_per_minute,
        )

    @cached_property
    def customer_billing(self) -> CustomerBilling:
        """The Billing tab of the signed-in admin's account (its invoices' credit notes included)."""
        ports = self._ports
        return CustomerBilling(
            invoices=ports.invoices,
            accounts=ports.accounts,
            payments=ports.payments,
            secrets=ports.secrets,
            runs=ports.runs,
            email_of=ports.user_info.email if ports.user_info is not None else None,
            credit_notes=ports.credit_notes,
        )

    @cached_property
    def cost_preview(self) -> CostPreviewService | None:
        """The current month's preview (``None``: costs in USD and no way to convert them)."""
        ports = self._ports
        policy = policy_from_settings(ports.settings)
        if policy.fx is None and policy.currency != "USD" and ports.period_rates is None:
            # Cost Explorer answers in USD: without a rate the preview would price USD as EUR.
            log.warning(
                "no exchange rate store and no FX_RATE: the cost preview is off", extra={"currency": policy.currency}
            )
            return None
        return CostPreviewService(
            ports.costs,
            ports.preview_cache,
            policy,
            rates=_exchange_rates(ports),
            leases=ports.leases,
            attribution=ports.settings.cost_group_by,
            ttl_seconds=ports.settings.cost_preview_ttl_seconds,
        )


class WebhookReceiverUseCases:
    """webhook-receiver's one use case: take a Stripe delivery in."""

    def __init__(self, ports: WebhookReceiverPorts) -> None:
        self._ports = ports

    @property
    def settings(self) -> Settings:
        """The settings the process was wired from."""
        return self._ports.settings

    @cached_property
    def webhook_intake(self) -> WebhookIntake:
        """Verify a delivery's signature with Stripe's scheme, enqueue it."""
        return WebhookIntake(self._ports.secrets, self._ports.stripe_events, StripeWebhookSignatures())


class WorkerUseCases(_OperatorUseCases):
    """scheduler-worker's use cases: the monthly run, invoice jobs, Stripe's events, the operator's commands."""

    _ports: WorkerPorts

    def __init__(self, ports: WorkerPorts) -> None:
        self._ports = ports

    @property
    def billing_jobs(self) -> MessageQueue:
        """The queue of invoice jobs (one account's invoice for one period each)."""
        return self._ports.billing_jobs

    @property
    def stripe_events(self) -> MessageQueue:
        """The queue of Stripe's events, as webhook-receiver enqueued them."""
        return self._ports.stripe_events

    @property
    def document_mail(self) -> MessageQueue | None:
        """The queue of documents to e-mail (``None``: e-mail is off)."""
        return getattr(self._ports, "document_mail", None)

    @property
    def mail_events(self) -> MessageQueue | None:
        """The queue of SES's events (``None``: not configured)."""
        return getattr(self._ports, "mail_events", None)

    @property
    def worker_queues(self) -> dict[str, MessageQueue]:
        """Every queue the worker consumes, by name (their dead letters are watched and redriven)."""
        ports = self._ports
        queues = {"stripe-events": ports.stripe_events, "billing-jobs": ports.billing_jobs}
        mail_queues = {"document-mail": self.document_mail, "mail-events": self.mail_events}
        return {**queues, **{name: queue for name, queue in mail_queues.items() if queue is not None}}

    @cached_property
    def rate_limited_payments(self) -> PaymentGateway:
        """The worker's Stripe gateway behind one token bucket shared by all its threads."""
        ports = self._ports
        budget, reason = request_budget(ports.settings.stripe_max_requests_per_second, ports.secrets.get().secret_key)
        log.info("Stripe request budget", extra={"requestsPerSecond": str(budget), "from": reason})
        return RateLimitedPaymentGateway(ports.payments, TokenBucket(budget))

    def billing_run(self, *, clock: Callable[[], float] = time.time) -> BillingRun:
        """The billing run (``clock``: seconds since the epoch)."""
        ports = self._ports
        settings = ports.settings
        return BillingRun(
            rates=_exchange_rates(ports),
            accounts=ports.accounts,
            costs=ports.costs,
            leases=ports.leases,
            runs=ports.runs,
            billing_jobs=ports.billing_jobs,
            policy=policy_from_settings(settings),
            attribution=settings.cost_group_by,
            wait_for_final_costs=settings.cost_finality == "final",
            invoices=ports.invoices,
            correction_months=settings.correction_months,
            final_costs_deadline_day=settings.final_costs_deadline_day,
            clock=clock,
            seller=seller_from_settings(settings),
            cost_requests=cost_requests_of(ports.costs),
            tax=tax_policy_from_settings(settings),
        )

    def invoice_job(self) -> InvoiceJob:
        """The invoice job, calling Stripe through the rate-limited gateway."""
        ports = self._ports
        settings = ports.settings
        seller = seller_from_settings(settings)
        einvoices = (
            EInvoices(
                invoices=ports.invoices,
                documents=ports.documents,
                writer=EInvoiceFiles(),
                seller=seller,
                language=settings.invoice_language,
                credit_notes=ports.credit_notes,
            )
            if ports.documents
            else None
        )
        return InvoiceJob(
            invoices=ports.invoices,
            accounts=ports.accounts,
            payments=self.rate_limited_payments,
            seller=seller,
            tax=tax_policy_from_settings(settings),
            language=settings.invoice_language,
            einvoices=einvoices,
            books_balance=books_balance_before(ports.invoices, ports.credit_notes) if ports.credit_notes else None,
            credit_notes=self._true_up_credit_notes(),
            mail=self.document_mailer.request if self.document_mailer is not None else None,
        )

    def _true_up_credit_notes(self) -> CreditNotes | None:
        """The credit notes the invoice job issues for downward corrections under Stripe Tax (rate-limited)."""
        ports = self._ports
        if ports.credit_notes is None or ports.audit is None:
            return None
        return self._credit_notes_through(self.rate_limited_payments, ports.audit)

    @cached_property
    def reissue(self) -> Reissue:
        """A cancelled invoice's month billed again through the invoice job, audited."""
        ports = self._ports
        if ports.credit_notes is None:
            raise SettingsError("reissuing needs the events table (the credit notes)")
        return Reissue(
            ports.invoices,
            ports.accounts,
            ports.credit_notes,
            self.invoice_job(),
            policy_from_settings(ports.settings),
            self._audit(),
        )

    def event_ports(self, *, rate_limited: bool = True) -> EventPorts:
        """What applying Stripe events needs (through the rate-limited gateway unless told otherwise)."""
        ports = self._ports
        return EventPorts(
            invoices=ports.invoices,
            accounts=ports.accounts,
            payments=self.rate_limited_payments if rate_limited else ports.payments,
            events=ports.events,
            retry_failed_on_new_payment_method=ports.settings.retry_failed_on_new_payment_method,
            credit_notes=ports.credit_notes,
        )

    def reconcile(self, since: date) -> ReconcileReport:
        """Apply every Stripe event and invoice created since ``since`` that never reached the records."""
        return reconcile(since, self.event_ports(rate_limited=False))

    def period_report(self, period: Period) -> PeriodReport:
        """Reconcile ``period`` with the cost source: billed, corrected, unbilled, excluded."""
        ports = self._ports
        settings = ports.settings
        return period_report(
            period,
            costs=ports.costs,
            accounts=ports.accounts,
            invoices=ports.invoices,
            attribution=settings.cost_group_by,
            excluded=ports.costs.excluded,
            shared=settings.shared_cost_rule,
            cost_requests=cost_requests_of(ports.costs),
            invoice_currency=settings.billing_currency,
            correction_months=settings.correction_months,
            credit_notes=ports.credit_notes,
        )

    @cached_property
    def dead_letters(self) -> DeadLetterQueues:
        """The dead letters of ``stripe-events`` and ``billing-jobs``; a redrive is audited."""
        ports = self._ports
        return DeadLetterQueues(self.worker_queues, ports.audit)


def _required(value: str | None) -> str:
    """A setting ``Settings.require`` has already checked is present."""
    if value is None:  # pragma: no cover - require() refused to start without it
        raise SettingsError("a required setting is missing")
    return value


def bootstrap_api(
    settings: Settings,
    *,
    session: boto3.Session | None = None,
    clients: Mapping[str, Any] | None = None,
    secrets: SecretsProvider | None = None,
    stripe_client_factory: ClientFactory | None = None,
) -> ApiUseCases:
    """billing-api's use cases over its real adapters (the arguments as ``api_ports`` takes them)."""
    return ApiUseCases(
        api_ports(
            settings, session=session, clients=clients, secrets=secrets, stripe_client_factory=stripe_client_factory
        )
    )


def bootstrap_webhook_receiver(
    settings: Settings,
    *,
    session: boto3.Session | None = None,
    clients: Mapping[str, Any] | None = None,
    secrets: SecretsProvider | None = None,
) -> WebhookReceiverUseCases:
    """webhook-receiver's use case over its real adapters (the arguments as ``webhook_receiver_ports`` takes them)."""
    return WebhookReceiverUseCases(webhook_receiver_ports(settings, session=session, clients=clients, secrets=secrets))


def bootstrap_worker(
    settings: Settings,
    *,
    session: boto3.Session | None = None,
    clients: Mapping[str, Any] | None = None,
    secrets: SecretsProvider | None = None,
    stripe_client_factory: ClientFactory | None = None,
) -> WorkerUseCases:
    """scheduler-worker's (and the ``billing`` command's) use cases over its real adapters."""
    return WorkerUseCases(
        worker_ports(
            settings, session=session, clients=clients, secrets=secrets, stripe_client_factory=stripe_client_factory
        )
    )
