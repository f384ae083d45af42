"""Benchmark of the FOCUS cost source at scale (issue 33; ``make bench``, not part of ``make test``).

1. Planning a period from a FOCUS export with DuckDB: 100,000 linked accounts x 50 services, two
   usage lines per account and service, a Tax line per account and a Credit line for every tenth
   account (10,110,000 rows), written by DuckDB SQL as 8 Snappy Parquet files under
   ``billing_period=2024-11/`` with the columns and types of ``local_stack.focus_seed.COLUMNS``.
   A fresh child process builds ``FocusCostSource(DuckDbFocusEngine(...))`` (BilledCost, Tax left out,
   DuckDB's memory limit 3GB as FOCUS_MEMORY_LIMIT's default, DuckDB's default threads) and 100,000
   accounts scoped to their linked accounts (``CostAttribution.by_account()``), as the billing-run scale
   benchmark does with in-memory fakes, and times ``BillingRun.plan(Period(2024, 11))`` (no correction
   months: no invoice repository); its peak memory is the child's own peak RSS
   (VmHWM; ``ru_maxrss`` too, which may hold the parent's peak at the fork). Checked: 100,000 plans,
   50 services in each plan's breakdown, and the plans' raw AWS costs summing exactly to DuckDB's own
   DECIMAL(38,10) sum of the non-Tax lines.
   Figures: plan seconds (goal < 60 s) and peak RSS (goal < 4 GiB), with the plan's CPU seconds (all
   threads: a figure less disturbed by other load on the machine), the cost source's part
   (``costs_seconds``: DuckDB's query, its rows streamed in batches, and the cost lines) and the peak RSS once
   the costs were read; the export's generation time and size on disk (not part of the goal).

Prints one JSON line. Timing and memory goals are figures, not test failures.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal, localcontext
from pathlib import Path

import duckdb

from billing_core.adapters.focus_duckdb import DuckDbFocusEngine
from billing_core.adapters.focus_export import FOCUS_TAX, FocusCostSource
from billing_core.domain.costs import CostAttribution, Period
from billing_core.domain.invoice_plan import BillingPolicy, FxRate
from billing_core.domain.records import Account
from billing_core.use_cases.billing_run import BillingRun
from local_stack.focus_seed import AWS_ISSUER, COLUMNS, PAYER_ACCOUNT
from tests.support.fakes import FakeAccountRepository, FakeLeases, FakeQueue, FakeRunRecords

PERIOD = Period(2024, 11)
POLICY = BillingPolicy(fx=FxRate(Decimal("1.0"), "bench", date(2024, 11, 30)))
ATTRIBUTION = CostAttribution.by_account()
ACCOUNTS = 100_000
SERVICES = 50
USAGE_LINES = 2  # per account and service: one in each half of the month
FILES = 8
CREDIT_EVERY = 10  # every tenth account has a Credit line
MEMORY_LIMIT = "3GB"  # FOCUS_MEMORY_LIMIT's default
GOAL_SECONDS = 60
GOAL_MIB = 4096
REPO = Path(__file__).resolve().parents[2]


def _typed(values: dict[str, str]) -> str:
    """The SELECT list of one kind of line: every column of the export, cast to its type, in order."""
    assert set(values) == set(COLUMNS)
    return ", ".join(f'CAST({values[name]} AS {kind}) AS "{name}"' for name, kind in COLUMNS.items())


def _line(*, cost: str, category: str, service: str, account: str, day: str, tags: str) -> str:
    """The column values of a line (SQL expressions); ``day`` is the day of November (0-based)."""
    start = f"TIMESTAMP '2024-11-01 00:00:00' + to_days(CAST({day} AS INTEGER))"
    return _typed(
        {
            "BilledCost": cost,
            "EffectiveCost": cost,
            "BillingAccountId": f"'{PAYER_ACCOUNT}'",
            "BillingCurrency": "'USD'",
            "BillingPeriodStart": "TIMESTAMP '2024-11-01 00:00:00'",
            "BillingPeriodEnd": "TIMESTAMP '2024-12-01 00:00:00'",
            "ChargeCategory": f"'{category}'",
            "ChargeClass": "NULL",
            "ChargeDescription": f"{service} || ' {category.lower()}'",
            "ChargePeriodStart": start,
            "ChargePeriodEnd": f"{start} + INTERVAL 1 DAY",
            "CommitmentDiscountId": "NULL",
            "CommitmentDiscountStatus": "NULL",
            "InvoiceId": "'EUINDE24-110001'",
            "InvoiceIssuerName": f"'{AWS_ISSUER}'",
            "ProviderName": "'Amazon Web Services'",
            "PublisherName": "'Amazon Web Services'",
            "ServiceName": service,
            "SubAccountId": f"lpad(CAST({account} AS VARCHAR), 12, '0')",
            "Tags": tags,
        }
    )


def _file_sql(number: int) -> str:
    """The SELECT of file ``number``: its share of the usage lines (in order of half-month, service,
    account, as an export is not ordered by account), and the Tax and Credit lines of every
    ``FILES``-th account. Amounts are doubles of decimals with 10 places (k / 1e10)."""
    usage_total = ACCOUNTS * SERVICES * USAGE_LINES
    per_file = usage_total // FILES
    half = f"(j // {ACCOUNTS * SERVICES})"
    service = f"(j % {ACCOUNTS * SERVICES}) // {ACCOUNTS}"
    account = f"(j % {ACCOUNTS})"
    usage = _line(
        # 0.05 .. 5.05 USD: every service of every account is billed some cents.
        cost="(500000000 + (j * 2654435761) % 50000000000) / 1e10",
        category="Usage",
        service=f"'Service ' || lpad(CAST({service} AS VARCHAR), 2, '0')",
        account=account,
        day=f"{half} * 15 + ({account} + {service}) % 15",
        tags=f"map(['user:customer'], ['c' || CAST({account} AS VARCHAR)])",
    )
    empty = "MAP {}"
    tax = _line(
        cost="(1000000000 + (a * 40503) % 9000000000) / 1e10",
        category="Tax",
        service="'Tax'",
        account="a",
        day="29",
        tags=empty,
    )
    credit = _line(
        cost="-(1 + (a * 7919) % 499999999) / 1e10",  # up to -0.05 USD, on Service 00
        category="Credit",
        service="'Service 00'",
        account="a",
        day="29",
        tags=empty,
    )
    return (
        f"SELECT {usage} FROM range({number * per_file}, {(number + 1) * per_file}) AS r(j) "
        f"UNION ALL SELECT {tax} FROM range({number}, {ACCOUNTS}, {FILES}) AS t(a) "
        f"UNION ALL SELECT {credit} FROM range({number * CREDIT_EVERY}, {ACCOUNTS}, {FILES * CREDIT_EVERY}) AS c(a)"
    )


def generate_export(root: Path) -> Path:
    """The export's billing period 2024-11 under ``root`` as ``FILES`` Parquet files; its folder."""
    folder = root / f"billing_period={PERIOD.label}"
    folder.mkdir(parents=True)
    connection = duckdb.connect(config={"temp_directory": str(root / "duckdb-tmp")})
    try:
        for number in range(FILES):
            path = folder / f"part-{number:05d}.parquet"
            connection.execute(f"COPY ({_file_sql(number)}) TO '{path}' (FORMAT parquet, COMPRESSION snappy)")
    finally:
        connection.close()
    return folder


def export_figures(folder: Path) -> dict:
    """Rows, column types and DuckDB's own exact sum of the lines the run bills (all but Tax), independently."""
    files = f"read_parquet('{folder}/*.parquet', hive_partitioning = false)"  # the files' own columns
    connection = duckdb.connect()
    try:
        rows, billed, accounts, services = connection.execute(
            "SELECT COUNT(*), "
            "CAST(SUM(CAST(BilledCost AS DECIMAL(38, 10))) FILTER (WHERE ChargeCategory <> 'Tax') AS VARCHAR), "
            "COUNT(DISTINCT SubAccountId), COUNT(DISTINCT ServiceName) FILTER (WHERE ChargeCategory <> 'Tax') "
            f"FROM {files}"
        ).fetchone()
        types = {name: kind for name, kind, *_ in connection.execute(f"DESCRIBE SELECT * FROM {files}").fetchall()}
        stored = {
            name: converted
            for name, converted in connection.execute(
                f"SELECT DISTINCT name, converted_type FROM parquet_schema('{folder}/*.parquet')"
            ).fetchall()
        }
    finally:
        connection.close()
    return {
        "rows": rows,
        "billed": billed,
        "accounts": accounts,
        "services": services,
        "types": types,
        "stored": stored,
    }


class _Timed:
    """Wraps a collaborator: the seconds its ``method`` takes, and the peak RSS after its last call."""

    def __init__(self, inner, method: str) -> None:
        self._inner = inner
        self._method = method
        self.seconds = 0.0
        self.peak_rss_mib: float | None = None

    def __getattr__(self, name):
        attribute = getattr(self._inner, name)
        if name != self._method:
            return attribute

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.peak_rss_mib = _peak_rss_mib()

        return timed


def _peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM of its memory since exec. ``ru_maxrss`` (KiB on Linux) keeps the
    parent's peak across the fork and exec that started the child, so it is the fallback only."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return _ru_maxrss_mib()


def _ru_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def plan_in_this_process(folder: Path) -> dict:
    """The child: plan the period from the export in ``folder`` (a ``billing_period=`` folder)."""
    root = folder.parent
    engine = DuckDbFocusEngine(
        lambda label: sorted((root / f"billing_period={label}").glob("*.parquet")), memory_limit=MEMORY_LIMIT
    )
    costs = _Timed(FocusCostSource(engine, cost_column="BilledCost", excluded=(FOCUS_TAX,)), "costs")
    run = BillingRun(
        accounts=FakeAccountRepository([Account(f"acct-{n:06d}", cost_scope=f"{n:012d}") for n in range(ACCOUNTS)]),
        costs=costs,
        leases=FakeLeases(),
        runs=FakeRunRecords(),
        billing_jobs=FakeQueue(),
        policy=POLICY,
        attribution=ATTRIBUTION,
    )
    before_plan = _peak_rss_mib()
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run.plan(PERIOD)
    plan_seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak, ru_maxrss = _peak_rss_mib(), _ru_maxrss_mib()
    with localcontext(prec=60):
        raw = sum((amount for plan in result.plans for amount in plan.aws_raw.values()), Decimal(0))
    return {
        "plans": len(result.plans),
        "skipped": len(result.skipped),
        "breakdown_sizes": sorted({len(plan.breakdown) for plan in result.plans}),
        "raw_sum": str(raw),
        "plan_seconds": round(plan_seconds, 2),
        "plan_cpu_seconds": round(cpu_seconds, 2),
        "costs_seconds": round(costs.seconds, 2),
        "peak_rss_mib": round(peak, 1),
        "ru_maxrss_mib": round(ru_maxrss, 1),
        "peak_rss_before_plan_mib": round(before_plan, 1),
        "peak_rss_after_costs_mib": round(costs.peak_rss_mib or 0, 1),
    }


def plan_in_a_fresh_process(folder: Path, workdir: Path) -> dict:
    """``plan_in_this_process`` in a child process (its peak memory is the planning's own)."""
    path = [str(REPO), str(REPO / "services"), str(REPO / "devtools"), os.environ.get("PYTHONPATH", "")]
    child = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_focus", str(folder)],
        cwd=workdir,  # where DuckDB spills beyond its memory limit (.tmp of the working directory)
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-4000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


def measure_focus_plan_scale(root: Path) -> dict:
    started = time.perf_counter()
    folder = generate_export(root)
    generate_seconds = time.perf_counter() - started
    export_bytes = sum(path.stat().st_size for path in folder.glob("*.parquet"))
    export = export_figures(folder)
    workdir = root / "work"
    workdir.mkdir()
    child = plan_in_a_fresh_process(folder, workdir)
    return {
        "benchmark": "focus_plan_scale",
        "rows": export["rows"],
        "accounts": ACCOUNTS,
        "services": SERVICES,
        "files": FILES,
        "generate_seconds": round(generate_seconds, 2),
        "export_mib": round(export_bytes / 2**20, 1),
        "plan_seconds": child["plan_seconds"],
        "plan_cpu_seconds": child["plan_cpu_seconds"],
        "costs_seconds": child["costs_seconds"],
        "duckdb_seconds": child["duckdb_seconds"],
        "peak_rss_mib": child["peak_rss_mib"],
        "peak_rss_gib": round(child["peak_rss_mib"] / 1024, 2),
        "ru_maxrss_mib": child["ru_maxrss_mib"],
        "peak_rss_after_costs_mib": child["peak_rss_after_costs_mib"],
        "peak_rss_before_plan_mib": child["peak_rss_before_plan_mib"],
        "goal_seconds": GOAL_SECONDS,
        "goal_mib": GOAL_MIB,
        "_check": {"export": export, "child": child},
    }


def test_planning_100_000_accounts_from_a_10_million_row_focus_export(tmp_path: Path) -> None:
    """`make bench`: plan time and peak memory of a 100,000-account period from a FOCUS export via DuckDB."""
    result = measure_focus_plan_scale(tmp_path)
    check = result.pop("_check")
    print(json.dumps(result))
    export, child = check["export"], check["child"]
    # DuckDB reads TIMESTAMP_MS back as TIMESTAMP; the files store milliseconds.
    assert export["types"] == {name: kind.replace("TIMESTAMP_MS", "TIMESTAMP") for name, kind in COLUMNS.items()}
    assert all(export["stored"][name] == "TIMESTAMP_MILLIS" for name, kind in COLUMNS.items() if kind == "TIMESTAMP_MS")
    assert result["rows"] >= 10_000_000
    assert export["accounts"] == ACCOUNTS and export["services"] == SERVICES
    assert child["plans"] == ACCOUNTS and child["skipped"] == 0
    assert child["breakdown_sizes"] == [SERVICES]
    assert Decimal(child["raw_sum"]) == Decimal(export["billed"])


if __name__ == "__main__":
    print(json.dumps(plan_in_this_process(Path(sys.argv[1]))))
