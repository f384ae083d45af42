"""Each contract test runs twice: against the in-memory fake and against the real adapter.

A fixture here is parametrized ``memory`` / ``dynamodb`` (or ``sqs``, ``cost_explorer``, or ``emulator``
for Stripe); the test body is the contract both must keep, so a fake can never drift from the adapter
it stands in for. The AWS adapters run on moto; the Stripe adapter runs through the official SDK
against the Stripe emulator.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from decimal import Decimal

import pytest
import requests
import stripe

from billing_core import resources
from billing_core.adapters.cost_explorer import CostExplorerCostSource, group_by_definitions
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
from billing_core.adapters.focus_duckdb import DuckDbFocusEngine
from billing_core.adapters.focus_export import FocusCostSource, FocusExportFiles
from billing_core.adapters.sqs import SqsMessageQueue
from billing_core.adapters.stripe_gateway import StripePaymentGateway
from billing_core.domain.costs import AttributionKind, ChargeType, CostAttribution, CostLine, Period
from billing_core.errors import StripeUnavailable
from billing_core.ports import CostSource, PaymentGateway, StripeInvoice, StripeSetupIntent
from local_stack.focus_seed import FocusLine, publish
from stripe_emulator import EmulatorConfig, EmulatorServer
from tests.support.aws import LocalAws, running_aws
from tests.support.emulator import Control
from tests.support.fakes import (
    FakeAccountRepository,
    FakeAuditLog,
    FakeCostSource,
    FakeCreditNotes,
    FakeDeliveries,
    FakeInvoiceRepository,
    FakeLeases,
    FakeMemberships,
    FakePaymentGateway,
    FakePeriodRates,
    FakePreviewCache,
    FakeProcessedEvents,
    FakeQueue,
    FakeRequestLimits,
    FakeRunRecords,
    FakeSecretsProvider,
)


class Clock:
    """Epoch seconds the test moves forward."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    yield from running_aws()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _repository(request, fake, real, table):
    if request.param == "memory":
        return fake()
    aws = request.getfixturevalue("aws")
    return real(aws.client("dynamodb"), aws.create_table(table))


def _events_port(request, clock, fake, real):
    if request.param == "memory":
        return fake(clock=clock)
    aws = request.getfixturevalue("aws")
    return real(aws.client("dynamodb"), aws.create_table(resources.EVENTS), clock=clock)


BOTH = ["memory", "dynamodb"]
FOCUS_BUCKET = "contract-focus-export"


@pytest.fixture(params=BOTH)
def invoices(request):
    return _repository(request, FakeInvoiceRepository, DynamoInvoiceRepository, resources.BILLING)


@pytest.fixture(params=BOTH)
def credit_notes(request):
    return _repository(request, FakeCreditNotes, DynamoCreditNotes, resources.EVENTS)


@pytest.fixture(params=BOTH)
def deliveries(request):
    return _repository(request, FakeDeliveries, DynamoDeliveries, resources.EVENTS)


@pytest.fixture(params=BOTH)
def accounts(request):
    return _repository(request, FakeAccountRepository, DynamoAccountRepository, resources.ACCOUNTS)


@pytest.fixture(params=BOTH)
def processed_events(request, clock):
    return _events_port(request, clock, FakeProcessedEvents, DynamoProcessedEvents)


@pytest.fixture(params=BOTH)
def leases(request, clock):
    return _events_port(request, clock, FakeLeases, DynamoLeases)


@pytest.fixture(params=BOTH)
def request_limits(request, clock):
    return _events_port(request, clock, FakeRequestLimits, DynamoRequestLimits)


@pytest.fixture(params=BOTH)
def run_records(request, clock):
    return _events_port(request, clock, FakeRunRecords, DynamoRunRecords)


@pytest.fixture(params=BOTH)
def period_rates(request, clock):
    return _events_port(request, clock, lambda clock: FakePeriodRates(), DynamoPeriodRates)


@pytest.fixture(params=BOTH)
def audit_log(request, clock):
    return _events_port(request, clock, lambda clock: FakeAuditLog(), DynamoAuditLog)


@pytest.fixture(params=BOTH)
def memberships(request, clock):
    return _events_port(request, clock, lambda clock: FakeMemberships(), DynamoMemberships)


@pytest.fixture(params=BOTH)
def preview_cache(request, clock):
    return _events_port(request, clock, FakePreviewCache, DynamoPreviewCache)


class QueueUnderTest:
    """A queue and how to let its visibility timeout pass (moving the fake's clock, or asking SQS for 0)."""

    def __init__(self, queue, max_receive_count: int) -> None:
        self.queue = queue
        self.max_receive_count = max_receive_count


@pytest.fixture(params=["memory", "sqs"])
def jobs_queue(request):
    if request.param == "memory":
        return QueueUnderTest(
            FakeQueue(max_receive_count=resources.BILLING_JOBS.max_receive_count),
            resources.BILLING_JOBS.max_receive_count,
        )
    aws = request.getfixturevalue("aws")
    url = aws.create_queue(resources.BILLING_JOBS)
    return QueueUnderTest(SqsMessageQueue(aws.client("sqs"), url), resources.BILLING_JOBS.max_receive_count)


# --- Stripe ---------------------------------------------------------------------------------------

STRIPE_SECRET_KEY = "sk_test_contracts"
# The emulator's knobs for the contract: Stripe's own pace where a test waits for nothing (an
# automatic charge about an hour after finalizing), short where a test waits for Stripe.
EMULATOR_BASELINE = {
    "auto_charge_delay": 3600.0,
    "sepa_settle_delay": 0.05,
    "payment_retry_interval": 3 * 24 * 3600.0,
    "payment_max_attempts": 4,
    "fault_next_n": 0,
    "fault_rate": 0.0,
    "fault_after_execution_next_n": 0,
    "finalization_failures_next_n": 0,
    "rate_limit": 0.0,
    "check_contract": True,
    "idempotency_ttl": 24 * 3600.0,
}


class StripeUnderTest:
    """A ``PaymentGateway`` and the parts of Stripe around it that the port does not reach.

    The browser's part (Stripe.js confirming a SetupIntent), time passing at Stripe (an automatic
    charge, a SEPA debit settling) and injected failures differ between the fake and the emulator;
    everything a test asserts goes through ``gateway``.
    """

    gateway: PaymentGateway

    def save_payment_method(self, intent: StripeSetupIntent, test_payment_method: str) -> str:
        """Confirm ``intent`` with one of Stripe's test payment methods, as Stripe.js does; the saved id."""
        raise NotImplementedError

    def collect_soon(self) -> None:
        """Invoices finalized from now on with ``auto_advance`` are collected without waiting an hour."""

    def await_collection(self, invoice_id: str) -> StripeInvoice:
        """Let Stripe attempt its automatic charge of ``invoice_id``; the invoice afterwards."""
        raise NotImplementedError

    def await_settlement(self, invoice_id: str) -> StripeInvoice:
        """Let the SEPA debit of ``invoice_id`` settle; the invoice afterwards."""
        raise NotImplementedError

    def fail_next_before_execution(self, method: str) -> None:
        """The next call of ``method`` fails with a 500 before it takes any effect."""
        raise NotImplementedError

    def fail_next_after_execution(self, method: str) -> None:
        """The next call of ``method`` takes effect, then answers a 500 that Stripe keeps for its key."""
        raise NotImplementedError

    def fail_next_finalization(self) -> None:
        """The next finalization fails as Stripe's can (``invoice.finalization_failed``)."""
        raise NotImplementedError


class FakeStripe(StripeUnderTest):
    """The in-memory fake, on the wall clock (so its events and the emulator's read alike)."""

    def __init__(self) -> None:
        self.fake = FakePaymentGateway(clock=lambda: int(time.time()))
        self.gateway = self.fake

    def save_payment_method(self, intent: StripeSetupIntent, test_payment_method: str) -> str:
        confirmed = self.fake.confirm_setup_intent(intent.id, test_payment_method)
        assert confirmed.payment_method_id is not None
        return confirmed.payment_method_id

    def await_collection(self, invoice_id: str) -> StripeInvoice:
        self.fake.collect_automatically()
        return self.fake.retrieve_invoice(invoice_id)

    def await_settlement(self, invoice_id: str) -> StripeInvoice:
        self.fake.settle_debits()
        return self.fake.retrieve_invoice(invoice_id)

    def fail_next_before_execution(self, method: str) -> None:
        self.fake.fail_next(method, StripeUnavailable("An unknown error occurred (injected fault)."))

    def fail_next_after_execution(self, method: str) -> None:
        self.fake.fail_after_execution_next(method)

    def fail_next_finalization(self) -> None:
        self.fake.fail_finalization_next()


class EmulatedStripe(StripeUnderTest):
    """``StripePaymentGateway`` through the official SDK against the Stripe emulator."""

    def __init__(self, url: str) -> None:
        self.gateway = StripePaymentGateway(
            FakeSecretsProvider(secret_key=STRIPE_SECRET_KEY), api_base=url, max_network_retries=0
        )
        self.sdk = stripe.StripeClient(STRIPE_SECRET_KEY, base_addresses={"api": url}, max_network_retries=0)
        self.control = Control(url)

    def save_payment_method(self, intent: StripeSetupIntent, test_payment_method: str) -> str:
        confirmed = self.sdk.v1.setup_intents.confirm(intent.id, params={"payment_method": test_payment_method})
        assert confirmed.status == "succeeded" and isinstance(confirmed.payment_method, str)
        return confirmed.payment_method

    def collect_soon(self) -> None:
        self.control.configure(auto_charge_delay=0.05)

    def await_collection(self, invoice_id: str) -> StripeInvoice:
        return self._await(invoice_id, lambda invoice: invoice.attempt_count > 0 or invoice.status != "open")

    def await_settlement(self, invoice_id: str) -> StripeInvoice:
        return self._await(invoice_id, lambda invoice: invoice.status != "open")

    def _await(self, invoice_id: str, done) -> StripeInvoice:
        deadline = time.monotonic() + 5
        while not done(invoice := self.gateway.retrieve_invoice(invoice_id)):
            assert time.monotonic() < deadline, f"the emulator left {invoice_id} as it was"
            time.sleep(0.02)
        return invoice

    def fail_next_before_execution(self, method: str) -> None:
        self.control.configure(fault_next_n=1)

    def fail_next_after_execution(self, method: str) -> None:
        self.control.configure(fault_after_execution_next_n=1)

    def fail_next_finalization(self) -> None:
        self.control.configure(finalization_failures_next_n=1)


@pytest.fixture(scope="session")
def stripe_emulator() -> Iterator[EmulatorServer]:
    """One emulator for every contract test (reset before each), started only if one needs it."""
    with EmulatorServer(EmulatorConfig(secret_key=STRIPE_SECRET_KEY, log_requests=False)) as server:
        yield server


@pytest.fixture(params=["memory", "emulator"])
def payments(request) -> StripeUnderTest:
    if request.param == "memory":
        return FakeStripe()
    server = request.getfixturevalue("stripe_emulator")
    control = Control(server.url)
    control.configure(**EMULATOR_BASELINE)
    control.reset()
    return EmulatedStripe(server.url)


class CostsUnderTest:
    """A cost source and how to make it answer: the fake's lines, or a canned answer moto gives the next query,
    or a FOCUS export published to moto's S3 (``focus``: the export's URI)."""

    def __init__(self, source: CostSource, aws: LocalAws | None = None, focus: str | None = None) -> None:
        self.source = source
        self._aws = aws
        self._focus = focus

    def answer(
        self,
        months: Mapping[Period, Sequence[CostLine]],
        attribution: CostAttribution,
        *,
        estimated: Collection[Period] = (),
    ) -> None:
        """The next query (attributed as ``attribution``) answers each month's lines."""
        if self._focus is not None:
            for period, lines in months.items():
                self._publish(period, [_focus_line(line, period, attribution, period in estimated) for line in lines])
            return
        if self._aws is None:
            fake = self.source
            assert isinstance(fake, FakeCostSource)
            last = max(months)
            fake.lines, fake.estimated = tuple(months[last]), last in estimated
            fake.monthly = {period: tuple(lines) for period, lines in months.items()}
            fake.estimated_months = {period: period in estimated for period in months}
            return
        self._queue(
            {
                "GroupDefinitions": group_by_definitions(attribution),
                "ResultsByTime": [
                    {
                        "TimePeriod": {"Start": period.start.isoformat(), "End": period.end.isoformat()},
                        "Total": {},
                        "Groups": [_group(_keys(line, attribution), line.amount) for line in lines],
                        "Estimated": period in estimated,
                    }
                    for period, lines in sorted(months.items())
                ],
                "DimensionValueAttributes": [],
            }
        )

    def answer_charge_types(self, period: Period, totals: Mapping[ChargeType, Decimal]) -> None:
        """The next query of the payer's bill by charge type answers ``totals``."""
        if self._focus is not None:
            self._publish(
                period,
                [
                    FocusLine("AWS Lambda", str(amount), period, category=kind.name, invoice_id="INV-1")
                    for kind, amount in totals.items()
                ],
            )
            return
        if self._aws is None:
            fake = self.source
            assert isinstance(fake, FakeCostSource)
            fake.charge_types = dict(totals)
            return
        self._queue(
            {
                "GroupDefinitions": [{"Type": "DIMENSION", "Key": "RECORD_TYPE"}],
                "ResultsByTime": [
                    {
                        "TimePeriod": {"Start": period.start.isoformat(), "End": period.end.isoformat()},
                        "Total": {},
                        "Groups": [_group([kind.name], amount) for kind, amount in totals.items()],
                        "Estimated": False,
                    }
                ],
                "DimensionValueAttributes": [],
            }
        )

    def _publish(self, period: Period, lines: list[FocusLine]) -> None:
        assert self._aws is not None and self._focus is not None
        publish(self._aws.client("s3"), self._focus, period, lines)

    def _queue(self, result: dict) -> None:
        # moto gives a queued answer to the next query it has not seen, and that query keeps it.
        assert self._aws is not None
        endpoint = self._aws.info["aws_endpoint"]
        requests.post(
            f"{endpoint}/moto-api/static/ce/cost-and-usage-results", json={"results": [result]}, timeout=10
        ).raise_for_status()


def _focus_line(line: CostLine, period: Period, attribution: CostAttribution, estimated: bool) -> FocusLine:
    """A cost line as the FOCUS export has it: its scope as SubAccountId or the tag, invoiced unless estimated."""
    scope = {}
    if attribution.kind is AttributionKind.ACCOUNT:
        scope = {"sub_account": line.scope}
    elif attribution.kind is AttributionKind.TAG and attribution.tag_key and line.scope:
        scope = {"tags": {attribution.tag_key: line.scope}}
    invoice = None if estimated else f"INV-{period.label}"
    return FocusLine(line.service, str(line.amount), period, invoice_id=invoice, **scope)  # type: ignore[arg-type]


def _keys(line: CostLine, attribution: CostAttribution) -> list[str]:
    if attribution.kind is AttributionKind.TAG:
        return [f"{attribution.tag_key}${line.scope}", line.service]
    return [str(line.scope), line.service] if attribution.splits else [line.service]


def _group(keys: list[str], amount: Decimal) -> dict:
    return {"Keys": keys, "Metrics": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}}


@pytest.fixture(params=["memory", "cost_explorer", "focus"])
def costs(request, tmp_path) -> CostsUnderTest:
    if request.param == "memory":
        return CostsUnderTest(FakeCostSource())
    aws = request.getfixturevalue("aws")
    if request.param == "focus":
        # A new export per test, in moto's S3, read through the manifest and DuckDB as in production.
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=FOCUS_BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.info["region"]})
        uri = f"s3://{FOCUS_BUCKET}/exports/{uuid.uuid4().hex}/focus"
        files = FocusExportFiles(s3, uri, tmp_path / "focus-cache")
        return CostsUnderTest(FocusCostSource(DuckDbFocusEngine(files.paths)), aws, focus=uri)
    # A fresh Cost Explorer: moto keeps the answer each query got, and tests may ask the same query.
    requests.post(f"{aws.info['aws_endpoint']}/moto-api/reset", timeout=10).raise_for_status()
    return CostsUnderTest(CostExplorerCostSource(aws.client("ce")), aws)
