"""``billing report --period YYYY-MM [--format table|csv|json]``: what was billed against Cost Explorer's total.

See ``billing_core.use_cases.period_report``. Amounts in the cost currency (USD) are printed
unrounded, as Cost Explorer gives them, so the parts add up exactly; billed amounts in the invoice
currency are whole cents.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from decimal import Decimal
from typing import Any, TextIO

from billing_cli.run_command import period_argument, print_table
from billing_core.bootstrap import WorkerUseCases
from billing_core.errors import BillingError
from billing_core.use_cases.period_report import PeriodReport

EXIT_OK = 0
EXIT_REFUSED = 3


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` subcommand to the ``billing`` command line."""
    parser = subcommands.add_parser("report", help="reconcile a billed period with Cost Explorer", description=__doc__)
    parser.add_argument("--period", required=True, type=period_argument, help="the billed month, YYYY-MM")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.set_defaults(handler=report_command)


def report_command(
    args: argparse.Namespace, use_cases: WorkerUseCases, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Carry out ``billing report``; returns the exit code."""
    try:
        report = use_cases.period_report(args.period)
    except BillingError as error:
        print(f"billing report {args.period.label} failed: {error}", file=err)
        return EXIT_REFUSED
    if args.format == "json":
        out.write(json.dumps(as_json(report), indent=2) + "\n")
    else:
        rows = as_rows(report)
        if args.format == "csv":
            csv.writer(out, lineterminator="\n").writerows(rows)
        else:
            print_table(rows, out)
    return EXIT_OK


def as_json(report: PeriodReport) -> dict[str, Any]:
    """The report as JSON, money as strings."""
    return {
        "period": report.period.label,
        "costCurrency": report.cost_currency,
        "invoiceCurrency": report.invoice_currency,
        "costExplorer": {
            "payerTotal": _text(report.payer_total),
            "byRecordType": {kind: _text(amount) for kind, amount in report.by_charge_type.items()},
            "excluded": {kind: _text(amount) for kind, amount in report.excluded.items()},
            "allocated": _text(report.allocated),
            "shared": _text(report.shared),
            "unallocated": {scope: _text(amount) for scope, amount in report.unallocated.items()},
            "groupingDifference": _text(report.grouping_difference),
            "requests": report.cost_requests,
        },
        "awsInvoices": None
        if report.aws_invoices is None
        else [
            {
                "invoiceId": invoice.invoice_id or None,
                "billed": _text(invoice.billed),
                "excluded": _text(invoice.excluded),
                "earlierMonths": _text(invoice.earlier),
                "shared": _text(invoice.shared),
                "allocated": _text(invoice.allocated),
                "unallocated": _text(invoice.unallocated),
                "difference": _text(invoice.difference),
                "passedOn": _text(invoice.passed_on),
                "amortization": _text(invoice.amortization),
            }
            for invoice in report.aws_invoices
        ],
        "rate": None
        if report.rate is None
        else {
            "rate": _text(report.rate.rate),
            "date": report.rate.as_of.isoformat(),
            "source": report.rate.source,
            "quote": report.rate.quote.value,
        },
        "accounts": [
            {
                "account": part.account_id,
                "scope": part.scope,
                "awsRaw": _text(part.aws_raw),
                "invoiceId": part.invoice_id,
                "status": part.status,
                "baseFee": _text(part.base_fee),
                "awsLine": _text(part.aws_line),
                "corrections": _text(part.corrections),
                "total": _text(part.total),
                "markup": _text(part.markup),
                "credited": _text(part.credited),
            }
            for part in report.accounts
        ],
        "billed": {
            "baseFees": _text(report.base_fees),
            "total": _text(report.billed_total),
            "margin": _text(report.margin),
            "credited": _text(report.credited),
            "marginAfterCredits": _text(report.margin_after_credits),
        },
    }


def as_rows(report: PeriodReport) -> list[list[str]]:
    """The report as rows: the Cost Explorer reconciliation, then one row per account."""
    cur, inv = report.cost_currency, report.invoice_currency
    rows = [["section", "item", "amount", "currency"], ["cost explorer", "payer total", _text(report.payer_total), cur]]
    rows += [["record type", kind, _text(amount), cur] for kind, amount in report.by_charge_type.items()]
    rows += [["excluded", kind, _text(amount), cur] for kind, amount in report.excluded.items()]
    rows.append(["allocated", "accounts", _text(report.allocated), cur])
    if report.shared:
        rows.append(["shared", "split over the scopes", _text(report.shared), cur])
    rows += [["unallocated", scope or "(untagged)", _text(amount), cur] for scope, amount in report.unallocated.items()]
    rows.append(["grouping difference", "", _text(report.grouping_difference), cur])
    for invoice in report.aws_invoices or ():
        name = invoice.invoice_id or "(not invoiced yet)"
        rows.append(["aws invoice", name, _text(invoice.billed), cur])
        rows += [
            ["aws invoice", f"{name} {part}", _text(amount), cur]
            for part, amount in (
                ("excluded", invoice.excluded),
                ("corrections of earlier months", invoice.earlier),
                ("shared", invoice.shared),
                ("allocated", invoice.allocated),
                ("unallocated", invoice.unallocated),
                ("difference", invoice.difference),
            )
        ]
        if invoice.amortization:
            rows.append(["aws invoice", f"{name} amortization passed on", _text(invoice.amortization), cur])
    if report.rate is not None:
        rows.append(
            [
                "rate",
                f"{report.rate.source} {report.rate.as_of.isoformat()} ({report.rate.quote.value})",
                _text(report.rate.rate),
                "",
            ]
        )
    for part in report.accounts:
        rows.append(
            [
                "account",
                f"{part.account_id} {part.invoice_id or '(not billed)'} aws {_text(part.aws_raw)} {cur}"
                f" base {_text(part.base_fee)} line {_text(part.aws_line)} corr {_text(part.corrections)}"
                f" markup {_text(part.markup)}" + (f" credited {_text(part.credited)}" if part.credited else ""),
                _text(part.total),
                inv,
            ]
        )
    rows += [
        ["billed", "base fees", _text(report.base_fees), inv],
        ["billed", "total", _text(report.billed_total), inv],
        ["billed", "margin", _text(report.margin), inv],
        ["billed", "credited (net)", _text(report.credited), inv],
        ["billed", "margin after credits", _text(report.margin_after_credits), inv],
    ]
    return rows


def _text(amount: Decimal) -> str:
    return format(amount, "f")
