"""Who may act for an account: a person (a Cognito user, by ``sub``) is a member of one account.

Several admins of one customer are members of its one account and share its one Stripe customer.
A person without a membership acts for the account keyed by their own ``sub`` (how accounts first
saved from the Billing tab have always been keyed).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Membership:
    """``user_sub`` acts for ``account_id`` (recorded when the operator invited them)."""

    user_sub: str
    account_id: str
    email: str
    added_at: int  # epoch ms


@dataclass(frozen=True)
class InvitedUser:
    """A user the directory created (or found) for an invitation."""

    sub: str
    username: str
    temporary_password: str | None  # only where nothing mails it (the local stack); never logged
    created: bool  # False: the user existed and was added to the group


@dataclass(frozen=True)
class DirectoryUser:
    """A person already in the user directory, and the groups they are in."""

    sub: str
    username: str
    groups: frozenset[str]
