"""An in-memory ``MailSender``: keeps every message, and answers like SES when told to (or when sent too fast)."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from billing_core.errors import MailRejected, MailThrottled
from billing_core.ports.mail import MailSender
from local_stack.mailbox import parsed_message


@dataclass(frozen=True)
class SentMail:
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return parsed_message(self.raw)


class FakeMailSender(MailSender):
    """Keeps sent messages; ``refuse``/``throttle`` queue SES's answers; ``max_rate`` throttles like SES does
    when more than that many messages come within one second."""

    def __init__(self, *, max_rate: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.sent: list[SentMail] = []
        self._answers: deque[Exception] = deque()
        self._ids = itertools.count(1)
        self._max_rate = max_rate
        self._clock = clock
        self._recent: deque[float] = deque()
        self.throttled = 0
        self.crash_after_send = False  # the send reaches SES, then the caller dies before hearing the answer

    def refuse(self, reason: str = "Email address is not verified.") -> None:
        self._answers.append(MailRejected(f"SES refused the message (MessageRejected): {reason}"))

    def throttle(self, times: int = 1) -> None:
        self._answers.extend(
            MailThrottled("SES did not send the message now (TooManyRequestsException)") for _ in range(times)
        )

    def send(self, raw: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        if self._answers:
            answer = self._answers.popleft()
            self.throttled += isinstance(answer, MailThrottled)
            raise answer
        if self._max_rate is not None:
            now = self._clock()
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            if len(self._recent) >= self._max_rate:
                self.throttled += 1
                raise MailThrottled("SES did not send the message now (Throttling: Maximum sending rate exceeded)")
            self._recent.append(now)
        mail = SentMail(f"0100-fake-{next(self._ids):06d}", sender, tuple(recipients), raw)
        self.sent.append(mail)
        if self.crash_after_send:
            raise SystemExit("the sender died after SES took the message")
        return mail.message_id

    def to(self, recipient: str) -> list[SentMail]:
        return [mail for mail in self.sent if recipient in mail.recipients]
