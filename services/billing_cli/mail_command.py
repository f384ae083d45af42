"""``billing invoices resend|mail|undelivered``: the e-mail of invoices and credit notes.

    billing invoices mail DOCUMENT_ID                   each recipient's delivery of the latest sending
    billing invoices resend DOCUMENT_ID [--to EMAIL]... send it again (to these addresses, else to the
                                                        account's invoice recipients), audited
    billing invoices undelivered                        documents whose latest sending reached nobody

DOCUMENT_ID is an invoice (inv_...) or a credit note (cn_...). An address that bounced or complained is
not mailed again until the account's invoice recipients are changed (billing accounts update
--invoice-email).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from billing_cli.accounts_command import operator_name
from billing_cli.run_command import print_table
from billing_core.bootstrap import WorkerUseCases
from billing_core.domain.deliveries import Delivery, UnknownDocument
from billing_core.errors import BillingError, SettingsError
from billing_core.use_cases.document_mail import DocumentMailer, DocumentNotMailable
from billing_core.use_cases.operator_invoices import InvoiceNotFound

EXIT_OK = 0
EXIT_FAILED = 1


def register_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``mail``, ``resend`` and ``undelivered`` to ``billing invoices``."""
    mail = actions.add_parser("mail", help="how an invoice's or credit note's e-mail went, per recipient")
    mail.add_argument("document", help="inv_... or cn_...")
    mail.set_defaults(handler=mail_command)
    resend = actions.add_parser("resend", help="e-mail an invoice or credit note again (audited)")
    resend.add_argument("document", help="inv_... or cn_...")
    resend.add_argument("--to", action="append", default=[], metavar="EMAIL", help="send to this address (repeatable)")
    resend.add_argument("--reason", help="why (kept in the audit log)")
    resend.set_defaults(handler=resend_command)
    undelivered = actions.add_parser("undelivered", help="documents whose latest e-mail reached nobody")
    undelivered.set_defaults(handler=undelivered_command)


def _mailer(use_cases: WorkerUseCases) -> DocumentMailer:
    mailer = use_cases.document_mailer
    if mailer is None:
        raise SettingsError("e-mail needs the events table and EINVOICE_BUCKET")
    return mailer


def _run(action: Callable[[], int], err: TextIO, what: str) -> int:
    try:
        return action()
    except (DocumentNotMailable, UnknownDocument, InvoiceNotFound, SettingsError) as refused:
        print(f"billing invoices {what}: {refused}", file=err)
        return EXIT_FAILED
    except BillingError as error:
        print(f"billing invoices {what} failed: {type(error).__name__}: {error}", file=err)
        return EXIT_FAILED


def _when(epoch_ms: int | None) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if epoch_ms else ""


def _delivery_rows(deliveries: tuple[Delivery, ...] | list[Delivery]) -> list[list[str]]:
    return [
        [
            delivery.recipient,
            delivery.state.value + (" (possibly twice)" if delivery.possible_duplicate else ""),
            _when(delivery.sent_at),
            delivery.message_id or "",
            delivery.reason or "",
        ]
        for delivery in deliveries
    ]


def mail_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """The latest sending of a document, per recipient."""

    def action() -> int:
        status = _mailer(use_cases).status_of(args.document)
        print(f"{args.document}: {status.text} (sending {status.round_number})", file=out)
        if status.deliveries:
            print_table(
                [["recipient", "state", "sent", "SES message id", "reason"], *_delivery_rows(status.deliveries)], out
            )
        return EXIT_OK

    return _run(action, err, "mail")


def resend_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Queue the document's e-mail again; the worker sends it."""

    def action() -> int:
        mailing = _mailer(use_cases).resend(args.document, to=tuple(args.to), actor=operator_name())
        print(
            f"{args.document}: sending {mailing.round_number} to {', '.join(mailing.recipients)} is queued",
            file=out,
        )
        return EXIT_OK

    return _run(action, err, "resend")


def undelivered_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Every document whose latest e-mail reached nobody; exit 1 if there is one."""

    def action() -> int:
        found = _mailer(use_cases).undelivered()
        if not found:
            print("every e-mailed document reached at least one recipient", file=out)
            return EXIT_OK
        rows = [[m.document_id, m.account_id, str(m.round_number), status.text] for m, status in found]
        print_table([["document", "account", "sending", "why"], *rows], out)
        return EXIT_FAILED

    return _run(action, err, "undelivered")
