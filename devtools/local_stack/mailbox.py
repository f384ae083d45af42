"""The local stack's outbox: the raw messages moto's SES accepted, read from moto's data endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import requests


@dataclass(frozen=True)
class SentMessage:
    """One message SES (moto) accepted: its id (what our delivery records hold), sender, recipients, bytes."""

    message_id: str
    source: str
    destinations: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return parsed_message(self.raw)


def parsed_message(raw: bytes) -> EmailMessage:
    """A raw MIME message as the standard library's ``EmailMessage`` (headers decoded)."""
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def sent_messages(aws_endpoint: str) -> list[SentMessage]:
    """Every raw message moto's SES has accepted since it started, oldest first."""
    data = requests.get(f"{aws_endpoint}/moto-api/data.json", timeout=10).json()
    return [
        SentMessage(
            str(entry["id"]),
            str(entry.get("source", "")),
            tuple(str(d) for d in entry.get("destinations") or ()),
            str(entry["raw_data"]).encode(),
        )
        for entry in data.get("ses", {}).get("RawMessage", [])
    ]


def save_message(sent: SentMessage, folder: Path) -> list[Path]:
    """Write the message (``<id>.eml``) and each of its attachments into ``folder``; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / f"{sent.message_id}.eml"]
    written[0].write_bytes(sent.raw)
    for part in sent.message.iter_attachments():
        name = Path(part.get_filename() or "attachment").name  # never a path out of the folder
        path = folder / name
        path.write_bytes(part.get_content())
        written.append(path)
    return written
