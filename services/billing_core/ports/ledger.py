"""Ports over the events table, one per role: processed Stripe events, leases, run records, the preview cache.

All four live in one DynamoDB table (deployed as ``events``) and expire by TTL; each port sees only
its own kind of item.
"""

from __future__ import annotations

import abc
from enum import StrEnum

from billing_core.domain.costs import CostSnapshot, Period
from billing_core.domain.records import BillingRunRecord


class EventClaim(StrEnum):
    """What ``ProcessedEvents.claim_event`` found: the caller's turn, already done, or someone else's turn."""

    CLAIMED = "claimed"  # this caller applies the event, then calls ``complete_event`` with its owner
    DONE = "done"  # applied before: acknowledge the delivery
    IN_PROGRESS = "in_progress"  # another worker holds a live claim: let the delivery come back later


class ProcessedEvents(abc.ABC):
    """Which Stripe events were applied: each event id is claimed, applied and marked done once.

    A claim belongs to its ``owner`` (one per attempt): only the owner renews, completes or releases
    it, so a worker that stalled past its lease and woke up cannot count a second application or
    drop the claim of the worker that took over.
    """

    @abc.abstractmethod
    def claim_event(self, event_id: str, *, owner: str, lease_seconds: int, retention_seconds: int) -> EventClaim:
        """Claim ``event_id`` for ``owner`` unless it is done or another claim on it is still live."""

    @abc.abstractmethod
    def renew_event_claim(self, event_id: str, *, owner: str, lease_seconds: int) -> bool:
        """Extend ``owner``'s live claim by ``lease_seconds`` from now; ``False`` if it is not theirs any more."""

    @abc.abstractmethod
    def complete_event(self, event_id: str, *, owner: str, retention_seconds: int) -> bool:
        """Mark ``owner``'s claim done (kept ``retention_seconds``) and count one application of it.

        ``False`` (and nothing counted) if the claim is no longer ``owner``'s: another worker took over.
        """

    @abc.abstractmethod
    def release_event(self, event_id: str, *, owner: str) -> None:
        """Drop ``owner``'s unfinished claim (the attempt failed), so a redelivery may claim it at once."""


class Leases(abc.ABC):
    """Named, expiring leases: one holder at a time (a period's billing run, a preview refill)."""

    @abc.abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl_seconds: int) -> bool:
        """Take (or renew, if ``owner`` holds it) the lease ``name`` unless another owner holds it unexpired."""

    @abc.abstractmethod
    def release_lease(self, name: str, owner: str) -> bool:
        """Give up the lease if ``owner`` holds it; ``False`` if it was not theirs (anymore)."""


class RunRecords(abc.ABC):
    """The record of each period's billing run."""

    @abc.abstractmethod
    def put(self, record: BillingRunRecord, *, ttl_seconds: int) -> None:
        """Store (or replace) the period's run record."""

    @abc.abstractmethod
    def get(self, period: Period) -> BillingRunRecord | None:
        """The period's run record, or ``None`` if it never ran (or the record expired)."""


class PreviewCache(abc.ABC):
    """Month-to-date cost reports, cached so page views do not multiply Cost Explorer requests."""

    @abc.abstractmethod
    def put(self, key: str, snapshot: CostSnapshot, *, ttl_seconds: int) -> None:
        """Cache ``snapshot`` under ``key`` for ``ttl_seconds``."""

    @abc.abstractmethod
    def get(self, key: str) -> CostSnapshot | None:
        """The cached snapshot, or ``None`` if absent, expired or unreadable."""


class RequestLimits(abc.ABC):
    """How often one caller may do one thing: a count per fixed window, shared by every process."""

    @abc.abstractmethod
    def take(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        """Count one request under ``key``; ``None`` if it is within ``limit`` for the current window,
        else the whole seconds until the window ends (the caller's Retry-After). A refused request
        is not counted."""
