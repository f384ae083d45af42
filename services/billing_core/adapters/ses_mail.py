"""``MailSender`` over Amazon SES v2 ``SendEmail`` with a raw MIME message (boto3 ``sesv2``).

SES's answers, from the SendEmail error shapes of botocore's model: ``TooManyRequestsException`` and
``LimitExceededException`` (and the generic throttling codes) mean "slow down" and are ``MailThrottled``;
``MessageRejected``, ``MailFromDomainNotVerifiedException``, ``AccountSuspendedException``,
``SendingPausedException``, ``NotFoundException`` and ``BadRequestException`` will not change on a retry
and are ``MailRejected``. Anything else (a 5xx, a network error) is ``MailThrottled`` too: the delivery is
tried again later, never given up on.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_core.adapters.rate_limited_gateway import TokenBucket
from billing_core.errors import MailRejected, MailThrottled
from billing_core.ports.mail import MailSender

REJECTING_CODES = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "SendingPausedException",
        "NotFoundException",
        "BadRequestException",
    }
)


class SesMailSender(MailSender):
    """Sends through SES v2, in the configuration set whose events report bounces and complaints."""

    def __init__(self, client: Any, *, configuration_set: str | None = None) -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send(self, raw: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        """See ``MailSender.send``."""
        request: dict[str, Any] = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": list(recipients)},
            "Content": {"Raw": {"Data": raw}},
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            answer = self._client.send_email(**request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", str(error))
            if code in REJECTING_CODES:
                raise MailRejected(f"SES refused the message ({code}): {message}") from None
            raise MailThrottled(f"SES did not send the message now ({code or 'error'}): {message}") from None
        except BotoCoreError as error:
            raise MailThrottled(f"SES could not be reached: {error}") from None
        message_id: str = answer["MessageId"]
        return message_id


# Paced exactly at the rate, 15 sends can fall into one second when one send is a little late (sleep's
# jitter); 5 % below it, a one-second window never sees more than the rate.
RATE_MARGIN = Decimal("0.95")


class PacedMailSender(MailSender):
    """Wraps another ``MailSender``: at most ``bucket.rate`` messages per second (SES's sending rate)."""

    def __init__(self, inner: MailSender, bucket: TokenBucket) -> None:
        self._inner = inner
        self._bucket = bucket

    @classmethod
    def at_rate(cls, inner: MailSender, messages_per_second: Decimal) -> PacedMailSender:
        """Paced a little under ``messages_per_second`` (SES's sending rate), one message at a time."""
        return cls(inner, TokenBucket(messages_per_second * RATE_MARGIN, capacity=1))

    def send(self, raw: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        """Wait for a slot of the sending rate, then send."""
        self._bucket.acquire()
        return self._inner.send(raw, sender=sender, recipients=recipients)
