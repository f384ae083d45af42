"""Each contract test runs twice: against the in-memory fake and against the real adapter on moto.

A fixture here is parametrized ``memory`` / ``dynamodb`` (or ``sqs``); the test body is the contract
both must keep, so a fake can never drift from the adapter it stands in for.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billing_core import resources
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
from tests.support.aws import LocalAws, running_aws
from tests.support.fakes import (
    FakeAccountRepository,
    FakeAuditLog,
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
