"""``billing invoices credit|cancel|credit-notes``: correct an issued invoice by a credit note, never by changing it.

    billing invoices credit INVOICE_ID --line base-fee --amount 10.00 [--line aws --amount 2.00 ...]
                            --reason R [--refund | --balance | --out-of-band] [--yes]
    billing invoices credit INVOICE_ID --full --reason R ...      the same as cancel
    billing invoices cancel INVOICE_ID --reason R [...]           a full credit note (Stornorechnung)
    billing invoices reissue INVOICE_ID [--yes]                   bill a cancelled invoice's month again
    billing invoices credit-notes INVOICE_ID                      the invoice's credit notes
    billing invoices credit-note-file CREDIT_NOTE_ID --format xrechnung|zugferd --out FILE

Amounts are net, in the invoice's currency; the VAT taken back is the invoice's. An open invoice is
credited before payment (what is due is reduced); a paid one is refunded to the original payment
method unless ``--balance`` (the next invoice collects less) or ``--out-of-band`` (settled outside
Stripe) says otherwise. Without ``--yes`` the command shows what Stripe would credit and asks.
A cancelled invoice's month is billed again by ``reissue``: a new invoice with a new number, once.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from billing_cli.accounts_command import operator_name
from billing_cli.run_command import print_table, write_file
from billing_core.bootstrap import WorkerUseCases
from billing_core.domain.credit_notes import CreditNote, CreditRefused, CreditRequest, Settlement
from billing_core.errors import BillingError
from billing_core.use_cases.einvoices import FORMATS
from billing_core.use_cases.operator_invoices import InvoiceNotFound
from billing_core.use_cases.reissue import ReissueRefused

EXIT_OK = 0
EXIT_FAILED = 1


def register_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``credit``, ``cancel``, ``credit-notes`` and ``credit-note-file`` to ``billing invoices``."""
    credit = actions.add_parser("credit", help="credit lines of an issued invoice (a credit note)")
    credit.add_argument("invoice")
    credit.add_argument("--full", action="store_true", help="credit the whole invoice (as cancel does)")
    credit.add_argument("--line", action="append", default=[], help="a line to credit: base-fee, aws, correction:...")
    credit.add_argument("--amount", action="append", default=[], help="the net to credit of the --line before it")
    _common(credit)
    credit.set_defaults(handler=credit_command)
    cancel = actions.add_parser("cancel", help="cancel an issued invoice by a full credit note (Stornorechnung)")
    cancel.add_argument("invoice")
    _common(cancel)
    cancel.set_defaults(handler=cancel_command, full=True, line=[], amount=[])
    reissue = actions.add_parser(
        "reissue", help="bill a cancelled invoice's month again with the account's current data, new number"
    )
    reissue.add_argument("invoice")
    reissue.add_argument("--yes", action="store_true", help="reissue without asking")
    reissue.set_defaults(handler=reissue_command)
    listing = actions.add_parser("credit-notes", help="an invoice's credit notes")
    listing.add_argument("invoice")
    listing.set_defaults(handler=list_command)
    file = actions.add_parser("credit-note-file", help="write a credit note's stored e-invoice file")
    file.add_argument("credit_note")
    file.add_argument("--format", choices=sorted(FORMATS), default="xrechnung")
    file.add_argument("--out", required=True, type=Path, help="the file to write")
    file.set_defaults(handler=file_command)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", required=True, help="why (printed on the credit note, kept in the audit log)")
    where = parser.add_mutually_exclusive_group()
    for flag, settlement in (
        ("--refund", Settlement.REFUND),
        ("--balance", Settlement.BALANCE),
        ("--out-of-band", Settlement.OUT_OF_BAND),
    ):
        where.add_argument(flag, dest="settlement", action="store_const", const=settlement)
    parser.add_argument("--yes", action="store_true", help="issue without asking")


def request_of(args: argparse.Namespace) -> CreditRequest:
    """The credit request the arguments describe; ``CreditRefused`` naming what is wrong."""
    if len(args.line) != len(args.amount):
        raise CreditRefused("give each --line its --amount (net, e.g. --line base-fee --amount 10.00)")
    lines: dict[str, Decimal] = {}
    for kind, text in zip(args.line, args.amount, strict=True):
        try:
            lines[kind] = Decimal(text)
        except InvalidOperation:
            raise CreditRefused(f"--amount {text!r} is not an amount (e.g. 10.00)") from None
    return CreditRequest(reason=args.reason, lines=lines, full=args.full, settlement=args.settlement)


def credit_command(
    args: argparse.Namespace,
    use_cases: WorkerUseCases,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    answer: TextIO = sys.stdin,
) -> int:
    """Show what Stripe would credit, ask (unless ``--yes``), issue; exit 1 if refused."""
    what = "cancel" if args.handler is cancel_command else "credit"
    try:
        request = request_of(args)
        proposal = use_cases.credit_notes.propose(args.invoice, request)
        plan, invoice = proposal.plan, proposal.invoice
        rows = [[line.kind, line.description, str(line.net), str(line.tax)] for line in plan.lines]
        print_table([["line", "description", "net", "VAT"], *rows], out)
        print(
            f"{args.invoice} ({invoice.stripe.number}): credit {plan.net} + VAT {plan.tax} = {plan.gross} "
            f"{invoice.currency}, {plan.settlement.value.replace('_', ' ')}",
            file=out,
        )
        if not args.yes and not _confirmed("Issue this credit note?", "nothing issued", out, answer):
            return EXIT_FAILED
        note = use_cases.credit_notes.credit(args.invoice, request, actor=operator_name())
    except (CreditRefused, InvoiceNotFound) as refused:
        print(f"billing invoices {what}: {refused}", file=err)
        return EXIT_FAILED
    except BillingError as error:
        print(f"billing invoices {what} failed: {type(error).__name__}: {error}", file=err)
        return EXIT_FAILED
    _print_notes([note], out)
    return EXIT_OK


def cancel_command(
    args: argparse.Namespace,
    use_cases: WorkerUseCases,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    answer: TextIO = sys.stdin,
) -> int:
    """A full credit note."""
    return credit_command(args, use_cases, out, err, answer)


def reissue_command(
    args: argparse.Namespace,
    use_cases: WorkerUseCases,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    answer: TextIO = sys.stdin,
) -> int:
    """Ask (unless ``--yes``), then bill the cancelled invoice's month again; exit 1 if refused."""
    question = f"Bill the month of the cancelled invoice {args.invoice} again?"
    if not args.yes and not _confirmed(question, "nothing reissued", out, answer):
        return EXIT_FAILED
    try:
        reissued = use_cases.reissue.reissue(args.invoice, actor=operator_name())
    except (ReissueRefused, InvoiceNotFound) as refused:
        print(f"billing invoices reissue: {refused}", file=err)
        return EXIT_FAILED
    except BillingError as error:
        print(f"billing invoices reissue failed: {type(error).__name__}: {error}", file=err)
        return EXIT_FAILED
    result = reissued.reissue
    print(
        f"{args.invoice} reissued as {result.invoice_id}: {result.total} {result.currency}, {result.status}",
        file=out,
    )
    return EXIT_OK


def list_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """One line per credit note of the invoice."""
    try:
        use_cases.operator_invoices.get(args.invoice)
        _print_notes(use_cases.credit_notes.notes_of(args.invoice), out)
    except InvoiceNotFound as missing:
        print(f"billing invoices credit-notes: {missing}", file=err)
        return EXIT_FAILED
    return EXIT_OK


def file_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Copy the credit note's stored file to ``--out``; exit 1 if it has none (yet)."""
    note = use_cases.credit_notes.get(args.credit_note)
    stored = use_cases.credit_note_file(note, args.format) if note else None
    if stored is None:
        print(f"billing invoices credit-note-file: {args.credit_note} has no {args.format} file stored", file=err)
        return EXIT_FAILED
    return write_file(stored, args.out, out)


def _confirmed(question: str, declined: str, out: TextIO, answer: TextIO) -> bool:
    """Ask ``question``; whether the operator said yes (else ``declined`` is printed)."""
    print(f"{question} [y/N] ", end="", file=out, flush=True)
    if answer.readline().strip().lower() in {"y", "yes", "j", "ja"}:
        return True
    print(declined, file=out)
    return False


def _print_notes(notes: list[CreditNote], out: TextIO) -> None:
    rows = [
        [
            note.credit_note_id,
            note.number or "",
            note.state.value,
            "cancellation" if note.full else "partial",
            f"{note.net} + {note.tax} = {note.gross} {note.currency}",
            note.settlement.value,
            "stored" if note.einvoice_xml and note.einvoice_pdf else note.einvoice_error or "not yet",
            note.reason,
        ]
        for note in notes
    ]
    print_table([["credit note", "number", "state", "kind", "amount", "money", "e-invoice", "reason"], *rows], out)
