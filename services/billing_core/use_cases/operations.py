"""What the operator watches and repairs: a period's run at a glance, and the worker queues' dead letters."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from billing_core.domain.audit import AuditEntry
from billing_core.domain.costs import Period
from billing_core.domain.records import BillingRunRecord
from billing_core.errors import InvalidStoredRecord
from billing_core.ports import AuditLog, DeadLetter, InvoiceRepository, MessageQueue, RunRecords


@dataclass(frozen=True)
class RunOverview:
    """A period's run record (``None``: not run yet) and its invoices counted by status."""

    period: Period
    record: BillingRunRecord | None
    invoices_by_status: Mapping[str, int]
    unreadable_invoices: int  # records of the period that could not be read


def run_overview(period: Period, *, runs: RunRecords | None, invoices: InvoiceRepository) -> RunOverview:
    """The run of ``period`` with its invoices per status."""
    record = runs.get(period) if runs is not None else None
    statuses: Counter[str] = Counter()
    unreadable = 0
    for invoice in invoices.list_all(period_label=period.label):
        if isinstance(invoice, InvalidStoredRecord):
            unreadable += 1
        else:
            statuses[invoice.status.value] += 1
    return RunOverview(period, record, dict(statuses), unreadable)


class DeadLetterQueues:
    """The dead letters of the worker's queues by name (``stripe-events``, ``billing-jobs``); a redrive is audited."""

    def __init__(
        self, queues: Mapping[str, MessageQueue], audit: AuditLog | None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._queues = dict(queues)
        self._audit = audit
        self._clock = clock

    def dead_letters(self, queue: str, *, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters of ``queue``, left where they are."""
        return self._queues[queue].dead_letters(limit=limit)

    def depth(self, queue: str) -> int:
        """How many messages wait in ``queue``'s dead-letter queue."""
        return self._queues[queue].dead_letter_depth()

    def redrive(self, queue: str, *, actor: str, limit: int | None = None, reason: str | None = None) -> int:
        """Move ``queue``'s dead letters (all, or ``limit``) back to it; how many moved, audited when any did."""
        moved = self._queues[queue].redrive(limit=limit)
        if self._audit is not None and moved:
            self._audit.record(
                AuditEntry(
                    entry_id=uuid.uuid4().hex,
                    at=int(self._clock() * 1000),
                    actor=actor,
                    action="queue.redrive",
                    after={"queue": queue, "moved": str(moved)},
                    reason=reason,
                )
            )
        return moved
