"""``billing invoices ...``: the invoices of every account, and what the operator does about a failed payment.

    billing invoices list [--period YYYY-MM] [--status payment_failed] [--account ACCOUNT]
    billing invoices show INVOICE_ID
    billing invoices retry INVOICE_ID [--reason R]    pay again now with the current default payment method
    billing invoices void INVOICE_ID --reason R       void an invoice never sent to anyone: finalized,
                                                      unpaid, no e-invoice issued (else: cancel)
    billing invoices credit|cancel|credit-notes ...   credit notes (see billing invoices credit -h)
    billing invoices einvoice INVOICE_ID --format xrechnung|zugferd --out FILE
                                                      the stored e-invoice: XRechnung XML or ZUGFeRD PDF
    billing invoices mail|resend|undelivered ...      its e-mail (see billing invoices resend -h)

A retry that needs the customer's authentication (SCA) says so and prints the hosted invoice page to
send them. Every retry and void is written to the audit log.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from billing_cli import credit_notes_command, mail_command
from billing_cli.accounts_command import operator_name
from billing_cli.run_command import period_argument, print_table, write_file
from billing_core.bootstrap import WorkerUseCases
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Invoice
from billing_core.errors import BillingError, InvalidStoredRecord, SettingsError
from billing_core.use_cases.einvoices import FORMATS
from billing_core.use_cases.operator_invoices import InvoiceNotFound, InvoiceNotRetryable

EXIT_OK = 0
EXIT_FAILED = 1


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``invoices`` to the ``billing`` command line."""
    parser = subcommands.add_parser(
        "invoices",
        help="invoices across accounts: list, show, retry, void, credit, cancel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="invoices of every account, newest period first")
    listing.add_argument("--period", type=period_argument, help="YYYY-MM")
    listing.add_argument("--status", choices=[status.value for status in InvoiceStatus])
    listing.add_argument("--account", help="only this account's")
    listing.set_defaults(handler=list_command)
    show = actions.add_parser("show", help="one invoice")
    show.add_argument("invoice")
    show.set_defaults(handler=show_command)
    retry = actions.add_parser("retry", help="pay an open or failed invoice again now")
    retry.add_argument("invoice")
    retry.add_argument("--reason", help="why (kept in the audit log)")
    retry.set_defaults(handler=retry_command)
    void = actions.add_parser(
        "void",
        help="void an invoice never sent to anyone (finalized, unpaid, no e-invoice issued); "
        "an issued invoice is cancelled instead (billing invoices cancel)",
    )
    void.add_argument("invoice")
    void.add_argument("--reason", required=True, help="why (kept in the audit log)")
    void.set_defaults(handler=void_command)
    einvoice = actions.add_parser("einvoice", help="write an invoice's stored e-invoice file")
    einvoice.add_argument("invoice")
    einvoice.add_argument("--format", choices=sorted(FORMATS), default="xrechnung")
    einvoice.add_argument("--out", required=True, type=Path, help="the file to write")
    einvoice.set_defaults(handler=einvoice_command)
    credit_notes_command.register_actions(actions)
    mail_command.register_actions(actions)


def _run(action: Callable[[], int], err: TextIO, what: str) -> int:
    try:
        return action()
    except (InvoiceNotFound, InvoiceNotRetryable, SettingsError) as refused:
        print(f"billing invoices {what}: {refused}", file=err)
        return EXIT_FAILED
    except BillingError as error:
        print(f"billing invoices {what} failed: {type(error).__name__}: {error}", file=err)
        return EXIT_FAILED


def list_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """One line per invoice; an unreadable one is listed with its problem (exit 1)."""

    def action() -> int:
        rows, broken = [], 0
        entries = use_cases.operator_invoices.all_invoices(
            period_label=args.period.label if args.period else None, status=args.status, account_id=args.account
        )
        for entry in entries:
            if isinstance(entry, InvalidStoredRecord):
                broken += 1
                rows.append(["UNREADABLE", str(entry.record_id), "", "", "", str(entry)])
                continue
            rows.append(
                [
                    entry.period.label,
                    entry.invoice_id,
                    entry.account_id,
                    entry.status.value,
                    f"{entry.amount} {entry.currency}",
                    entry.stripe.invoice_id or "",
                ]
            )
        rows.sort(key=lambda row: (row[0], row[1]), reverse=True)
        print_table([["period", "invoice", "account", "status", "total", "stripe invoice"], *rows], out)
        return EXIT_FAILED if broken else EXIT_OK

    return _run(action, err, "list")


def show_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Every part of one invoice."""

    def action() -> int:
        mailer = use_cases.document_mailer
        mail = mailer.status_of(args.invoice).text if mailer is not None else "not configured"
        _print_invoice(use_cases.operator_invoices.get(args.invoice), out, mail=mail)
        return EXIT_OK

    return _run(action, err, "show")


def retry_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Pay again; exit 0 if Stripe reports it paid, 1 if declined or authentication is needed."""

    def action() -> int:
        outcome = use_cases.operator_invoices.retry(args.invoice, actor=operator_name(), reason=args.reason)
        if outcome.paid:
            print(f"{args.invoice}: paid (the invoice.paid event records it)", file=out)
            return EXIT_OK
        if outcome.action_url:
            print(
                f"{args.invoice}: the customer must authenticate the payment (SCA); send them {outcome.action_url}",
                file=out,
            )
            return EXIT_FAILED
        if outcome.declined:
            print(f"{args.invoice}: declined ({outcome.declined}); the customer needs another payment method", file=out)
            return EXIT_FAILED
        print(f"{args.invoice}: Stripe reports it {outcome.stripe_status}, payment pending", file=out)
        return EXIT_OK

    return _run(action, err, "retry")


def void_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Void at Stripe and on the record."""

    def action() -> int:
        _print_invoice(use_cases.operator_invoices.void(args.invoice, actor=operator_name(), reason=args.reason), out)
        return EXIT_OK

    return _run(action, err, "void")


def einvoice_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Copy the stored file to ``--out``; exit 1 if the invoice has none (yet)."""

    def action() -> int:
        invoice = use_cases.operator_invoices.get(args.invoice)
        stored = use_cases.einvoice_file(invoice, args.format)
        if stored is None:
            print(f"billing invoices einvoice: {args.invoice} has no {args.format} e-invoice stored", file=err)
            return EXIT_FAILED
        return write_file(stored, args.out, out)

    return _run(action, err, "einvoice")


def _print_invoice(invoice: Invoice, out: TextIO, *, mail: str | None = None) -> None:
    vat = invoice.vat
    rows = [
        ["invoice", invoice.invoice_id],
        ["account", invoice.account_id],
        ["period", invoice.period.label],
        ["status", invoice.status.value],
        ["base fee", f"{invoice.base_fee} {invoice.currency}"],
        ["AWS", f"{invoice.aws_costs} {invoice.currency}"],
        *[[f"  {service}", f"{amount} {invoice.currency}"] for service, amount in invoice.aws_breakdown.items()],
        *[
            [
                f"correction {c.period.label}",
                f"{c.amount} {invoice.currency}"
                + (" (settled by a credit note, not a line)" if c.by_credit_note else ""),
            ]
            for c in invoice.true_up.corrections
        ],
        ["net", f"{invoice.net} {invoice.currency}"],
        *(
            [[f"USt. {vat.rate.normalize():f} %", f"{vat.tax} {invoice.currency}"]]
            if vat and vat.category == "S"
            else []
        ),
        *([["VAT", f"{vat.category}: {vat.note}"]] if vat and vat.note else []),
        ["total", f"{invoice.amount} {invoice.currency}"],
        ["stripe invoice", invoice.stripe.invoice_id or ""],
        ["number", invoice.stripe.number or ""],
        ["hosted page", invoice.stripe.hosted_invoice_url or ""],
        ["payment attempts", str(invoice.payment.attempt_count)],
        *([["credited", f"{invoice.payment.credited} {invoice.currency}"]] if invoice.payment.credited else []),
        *([["correction", invoice.correction]] if invoice.correction else []),
        *(
            [["balance applied", f"{invoice.payment.balance_applied} {invoice.currency}"]]
            if invoice.payment.balance_applied
            else []
        ),
        *(
            [
                [
                    "carried to balance",
                    f"{invoice.payment.carried_to_balance} {invoice.currency} (below the minimum charge)",
                ]
            ]
            if invoice.payment.carried_to_balance
            else []
        ),
        *([["amount due", f"{invoice.amount_due} {invoice.currency}"]] if invoice.amount_due != invoice.amount else []),
        [
            "e-invoice",
            "XRechnung + ZUGFeRD stored"
            if invoice.einvoice.xml and invoice.einvoice.pdf
            else f"not written: {invoice.einvoice.error}"
            if invoice.einvoice.error
            else "not yet",
        ],
        *([["e-mail", mail]] if mail else []),
    ]
    print_table([["field", "value"], *rows], out)
