"""The Athena engine: the FOCUS source's SQL sent to Athena (moto), its rows read back as DuckDB gives them.

Moto runs no SQL: its answer to each query is queued through its API. Moto 5.2.5 also speaks only
Athena's earlier JSON 1.1 protocol, while the pinned botocore's Athena model is rest-json: the test's
client reads the same model with its protocol set back to JSON 1.1 (``AmazonAthena`` target), so
everything but the wire format is the production client's. The answers queued here are the
rows DuckDB computed for the same SQL over the same export, so the test shows that the Athena engine
sends each query to the workgroup and table it was given and that the cost source builds the same
report from Athena's text rows (header row skipped, NULLs kept) as from DuckDB's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import boto3
import botocore.session
import pytest
import requests

from billing_core.adapters.focus_athena import AthenaFocusEngine
from billing_core.adapters.focus_duckdb import DuckDbFocusEngine
from billing_core.adapters.focus_export import FocusCostSource
from billing_core.domain.costs import CostAttribution, Period
from billing_core.errors import CostSourceError, CostSourceUnavailable
from billing_core.ports import FocusEngine
from local_stack.focus_seed import FocusLine, seed_month_lines, write_parquet
from tests.support.aws import LocalAws, running_aws

NOVEMBER = Period(2024, 11)
WORKGROUP, DATABASE, TABLE = "billing-focus", "billing_focus", "focus_export"


class RecordingEngine(FocusEngine):
    """DuckDB, keeping every query's SQL and rows."""

    def __init__(self, engine: FocusEngine) -> None:
        self.engine = engine
        self.answers: list[tuple[str, list[tuple[str | None, ...]]]] = []

    def tag_value(self, key_literal: str) -> str:
        return self.engine.tag_value(key_literal)

    def query(self, sql: str, billing_periods: Sequence[str]) -> list[tuple[str | None, ...]]:
        rows = list(self.engine.query(sql, billing_periods))
        self.answers.append((sql, rows))
        return rows


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    yield from running_aws()


@pytest.fixture(scope="module")
def athena(aws, tmp_path_factory):
    """A boto3 Athena client on moto: the pinned model, spoken in the JSON 1.1 protocol moto understands."""
    model = botocore.session.get_session().get_component("data_loader").load_service_model("athena", "service-2")
    model["metadata"].update(protocol="json", protocols=["json"], jsonVersion="1.1", targetPrefix="AmazonAthena")
    data = tmp_path_factory.mktemp("botocore-data")
    folder = data / "athena" / model["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(data))
    client = boto3.Session(botocore_session=session, region_name=aws.info["region"]).client(
        "athena", endpoint_url=aws.info["aws_endpoint"], aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    client.create_work_group(Name=WORKGROUP)
    return client


@pytest.fixture
def duckdb_engine(tmp_path) -> RecordingEngine:
    folder = tmp_path / f"billing_period={NOVEMBER.label}"
    folder.mkdir()
    lines = seed_month_lines(NOVEMBER) + [
        FocusLine("Amazon EC2", "4.5", NOVEMBER, invoice_id=None, tags={"user:customer": "acme"}),
    ]
    write_parquet(folder / "part-00001.parquet", NOVEMBER, lines)
    return RecordingEngine(DuckDbFocusEngine(lambda label: sorted((tmp_path / f"billing_period={label}").glob("*"))))


def queue_athena_answers(aws: LocalAws, answers: list[tuple[str, list[tuple[str | None, ...]]]]) -> None:
    results = []
    for _sql, rows in answers:
        width = len(rows[0]) if rows else 1
        header = {"Data": [{"VarCharValue": f"_col{i}"} for i in range(width)]}
        data = [{"Data": [{} if value is None else {"VarCharValue": value} for value in row]} for row in rows]
        results.append({"rows": [header, *data], "column_info": []})
    requests.post(
        f"{aws.info['aws_endpoint']}/moto-api/static/athena/query-results",
        json={"region": aws.info["region"], "results": results},
        timeout=10,
    ).raise_for_status()


@pytest.mark.parametrize("attribution", [CostAttribution(), CostAttribution.by_tag("user:customer")])
def test_athena_answers_build_the_same_report_as_duckdb(aws, athena, duckdb_engine, attribution):
    expected = FocusCostSource(duckdb_engine).costs(NOVEMBER.start, NOVEMBER.end, attribution)
    queue_athena_answers(aws, duckdb_engine.answers)
    engine = AthenaFocusEngine(athena, workgroup=WORKGROUP, database=DATABASE, table=TABLE, poll_seconds=0)

    report = FocusCostSource(engine).costs(NOVEMBER.start, NOVEMBER.end, attribution)

    assert report == expected
    assert report.estimated  # the EC2 line has no invoice id yet
    executions = athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    sent = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in executions]
    queries = [execution["Query"] for execution in sent]
    assert all(f'"{DATABASE}"."{TABLE}"' in query for query in queries[-2:])
    if attribution.splits:
        assert any("element_at(Tags, 'user:customer')" in query for query in queries[-2:])


class StubAthena:
    """An Athena client whose query ends in ``state`` (after ``running`` polls)."""

    def __init__(self, state: str, running: int = 0) -> None:
        self.state, self.running = state, running

    def start_query_execution(self, **_request) -> dict:
        return {"QueryExecutionId": "q-1"}

    def get_query_execution(self, QueryExecutionId: str) -> dict:  # noqa: N803 - boto3's argument name
        if self.running:
            self.running -= 1
            return {"QueryExecution": {"Status": {"State": "RUNNING"}}}
        return {"QueryExecution": {"Status": {"State": self.state, "StateChangeReason": "Bytes scanned limit"}}}


def test_a_failed_query_says_why_and_one_that_runs_too_long_is_a_source_that_is_not_available():
    failed = AthenaFocusEngine(StubAthena("FAILED"), workgroup=WORKGROUP, database=DATABASE, table=TABLE)
    with pytest.raises(CostSourceError, match="failed in Athena: Bytes scanned limit"):
        failed.query("SELECT 1 FROM {table}", [NOVEMBER.label])

    ticks = iter(range(100))
    slow = AthenaFocusEngine(
        StubAthena("SUCCEEDED", running=50),
        workgroup=WORKGROUP,
        database=DATABASE,
        table=TABLE,
        timeout_seconds=5,
        sleep=lambda _: None,
        clock=lambda: float(next(ticks)),
    )
    with pytest.raises(CostSourceUnavailable, match="longer than 5 s"):
        slow.query("SELECT 1 FROM {table}", [NOVEMBER.label])


def test_the_duckdb_engine_reads_nothing_for_a_period_without_files(tmp_path: Path):
    engine = DuckDbFocusEngine(lambda label: [])
    assert list(engine.query("SELECT 1 FROM {table}", [NOVEMBER.label])) == []
