"""Sending e-mail: what the invoice delivery needs from Amazon SES (or its in-memory twin)."""

from __future__ import annotations

import abc
from collections.abc import Sequence


class MailSender(abc.ABC):
    """Sends one raw MIME message; raises ``MailThrottled`` (retry later) or ``MailRejected`` (never)."""

    @abc.abstractmethod
    def send(self, raw: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        """Send ``raw`` from ``sender`` to ``recipients``; the provider's message id."""
