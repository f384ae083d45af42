"""The audit log: every operator action, who did it, when, the values before and after, and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AuditEntry:
    """One operator action on the system (account created, base fee changed, invoice retried, ...)."""

    entry_id: str
    at: int  # epoch ms
    actor: str  # who: "cli:<user>@<host>" for the command line, "operator:<username>" for the page
    action: str  # e.g. "account.create", "account.update", "account.disable", "invoice.retry"
    account_id: str | None = None
    before: Mapping[str, str] = field(default_factory=dict)  # field -> value as shown, only what changed
    after: Mapping[str, str] = field(default_factory=dict)
    reason: str | None = None
