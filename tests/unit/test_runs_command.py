"""billing runs show: which state a period's run is in, as the run recorded it."""

from __future__ import annotations

import argparse
import io
import re
from types import SimpleNamespace

from billing_cli.cli import build_parser
from billing_cli.runs_command import show_command
from billing_core.bootstrap import WorkerUseCases
from billing_core.domain.costs import Period
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import BillingRunRecord, RunStatus
from tests.support.fakes import FakeInvoiceRepository, FakeQueue, FakeRunRecords
from tests.support.records import an_invoice

NOV = Period(2026, 11)


def show(runs: FakeRunRecords, invoices: FakeInvoiceRepository | None = None) -> str:
    out = io.StringIO()
    ports = SimpleNamespace(
        runs=runs,
        billing_jobs=FakeQueue(),
        stripe_events=FakeQueue(),
        audit=None,
        invoices=invoices or FakeInvoiceRepository(),
    )
    assert show_command(argparse.Namespace(period=NOV), WorkerUseCases(ports), out, io.StringIO()) == 0
    return out.getvalue()


def test_a_period_waiting_for_final_costs_says_so():
    runs = FakeRunRecords()
    runs.put(
        BillingRunRecord(
            NOV,
            "run_1",
            RunStatus.WAITING_FOR_FINAL_COSTS,
            "cron",
            3,
            0,
            0,
            1,
            1_764_547_200_000,
            1_764_547_200_000,
            costs_estimated=True,
        ),
        ttl_seconds=10**9,
    )

    text = show(runs)

    assert "waiting for final costs" in text and "estimated" in text
    assert "2025-12-01T00:00:00Z" in text and "billing-jobs dead letters  0" in text


def test_an_enqueued_run_shows_its_invoices_per_status_and_the_accounts_it_skipped_with_why():
    runs = FakeRunRecords()
    runs.put(
        BillingRunRecord(
            NOV,
            "run_1",
            RunStatus.ENQUEUED,
            "cron",
            3,
            1,
            3,
            1,
            1_764_547_200_000,
            1_764_547_200_000,
            skipped_reasons={"kunde-9": "disabled by the operator"},
        ),
        ttl_seconds=10**9,
    )
    invoices = FakeInvoiceRepository(
        [
            an_invoice(account_id="a", period=NOV, status=InvoiceStatus.PAID),
            an_invoice(account_id="b", period=NOV, status=InvoiceStatus.PAID),
            an_invoice(account_id="c", period=NOV, status=InvoiceStatus.PAYMENT_FAILED),
            an_invoice(account_id="d", period=Period(2026, 10), status=InvoiceStatus.DRAFT),  # another month
        ]
    )

    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in show(runs, invoices).splitlines()[2:])

    assert (rows["invoices paid"], rows["invoices payment_failed"], rows["done"]) == ("2", "1", "yes")
    assert "invoices draft" not in rows  # October's
    assert rows["skipped kunde-9"] == "disabled by the operator"


def test_a_period_never_run_says_so():
    assert "not run yet" in show(FakeRunRecords())


def test_the_command_line_has_runs_show_with_an_optional_period():
    args = build_parser().parse_args(["runs", "show", "--period", "2026-11"])

    assert args.period == NOV and args.handler is show_command
