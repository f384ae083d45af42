"""Each contract test runs twice: against the in-memory fake and against the real adapter on moto.

A fixture here is parametrized ``memory`` / ``dynamodb`` (or ``sqs``, ``cost_explorer``); the test
body is the contract both must keep, so a fake can never drift from the adapter it stands in for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from decimal import Decimal

import pytest
import requests

from billing_core import resources
from billing_core.adapters.cost_explorer import CostExplorerCostSource, group_by_definitions
from billing_core.adapters.dynamodb import DynamoAccountRepository, DynamoInvoiceRepository
from billing_core.adapters.dynamodb_events import (
    DynamoAuditLog,
    DynamoLeases,
    DynamoMemberships,
    DynamoPeriodRates,
    DynamoPreviewCache,
    DynamoProcessedEvents,
    DynamoRunRecords,
)
from billing_core.adapters.sqs import SqsMessageQueue
from billing_core.domain.costs import AttributionKind, ChargeType, CostAttribution, CostLine, Period
from billing_core.ports import CostSource
from tests.support.aws import LocalAws, running_aws
from tests.support.fakes import (
    FakeAccountRepository,
    FakeAuditLog,
    FakeCostSource,
    FakeInvoiceRepository,
    FakeLeases,
    FakeMemberships,
    FakePeriodRates,
    FakePreviewCache,
    FakeProcessedEvents,
    FakeQueue,
    FakeRunRecords,
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


@pytest.fixture(params=BOTH)
def invoices(request):
    return _repository(request, FakeInvoiceRepository, DynamoInvoiceRepository, resources.BILLING)


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


class CostsUnderTest:
    """A cost source and how to make it answer: the fake's lines, or a canned answer moto gives the next query."""

    def __init__(self, source: CostSource, aws: LocalAws | None = None) -> None:
        self.source = source
        self._aws = aws

    def answer(
        self,
        months: Mapping[Period, Sequence[CostLine]],
        attribution: CostAttribution,
        *,
        estimated: Collection[Period] = (),
    ) -> None:
        """The next query (attributed as ``attribution``) answers each month's lines."""
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

    def _queue(self, result: dict) -> None:
        # moto gives a queued answer to the next query it has not seen, and that query keeps it.
        assert self._aws is not None
        endpoint = self._aws.info["aws_endpoint"]
        requests.post(
            f"{endpoint}/moto-api/static/ce/cost-and-usage-results", json={"results": [result]}, timeout=10
        ).raise_for_status()


def _keys(line: CostLine, attribution: CostAttribution) -> list[str]:
    if attribution.kind is AttributionKind.TAG:
        return [f"{attribution.tag_key}${line.scope}", line.service]
    return [str(line.scope), line.service] if attribution.splits else [line.service]


def _group(keys: list[str], amount: Decimal) -> dict:
    return {"Keys": keys, "Metrics": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}}


@pytest.fixture(params=["memory", "cost_explorer"])
def costs(request) -> CostsUnderTest:
    if request.param == "memory":
        return CostsUnderTest(FakeCostSource())
    aws = request.getfixturevalue("aws")
    # A fresh Cost Explorer: moto keeps the answer each query got, and tests may ask the same query.
    requests.post(f"{aws.info['aws_endpoint']}/moto-api/reset", timeout=10).raise_for_status()
    return CostsUnderTest(CostExplorerCostSource(aws.client("ce")), aws)
