"""billing runs show: which state a period's run is in, as the run recorded it."""
from __future__ import annotations

import argparse
import io
from types import SimpleNamespace

from billing_core.domain.costs import Period
from billing_core.domain.records import BillingRunRecord, RunStatus
from scheduler_worker.cli import build_parser
from scheduler_worker.runs_command import show_command
from tests.support.fakes import FakeQueue, FakeRunRecords

NOV = Period(2026, 11)


def show(runs: FakeRunRecords) -> str:
    out = io.StringIO()
    services = SimpleNamespace(runs=runs, billing_jobs=FakeQueue())
    assert show_command(argparse.Namespace(period=NOV), services, out, io.StringIO()) == 0
    return out.getvalue()


def test_a_period_waiting_for_final_costs_says_so():
    runs = FakeRunRecords()
    runs.put(BillingRunRecord(NOV, "run_1", RunStatus.WAITING_FOR_FINAL_COSTS, "cron", 3, 0, 0, 1,
                              1_764_547_200_000, 1_764_547_200_000, costs_estimated=True), ttl_seconds=10**9)

    text = show(runs)

    assert "waiting for final costs" in text and "estimated" in text
    assert "2025-12-01T00:00:00Z" in text and "billing-jobs dead letters  0" in text


def test_a_period_never_run_says_so():
    assert "not run yet" in show(FakeRunRecords())


def test_the_command_line_has_runs_show_with_an_optional_period():
    args = build_parser().parse_args(["runs", "show", "--period", "2026-11"])

    assert args.period == NOV and args.handler is show_command
