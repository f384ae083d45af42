"""Athena as the FOCUS engine, for exports too big for one task: the same SQL over a Glue table.

Terraform defines the table over the export's ``data/`` folder (Parquet, ``billing_period`` a
projected partition) and a workgroup that enforces its result location and a per-query scan limit.
A query is started, polled until it ends, and its rows read back page by page; every value comes
back as text, which is what the FOCUS cost source expects of every engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_core.errors import CostSourceError, CostSourceUnavailable
from billing_core.ports import FocusEngine

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_athena import AthenaClient
else:
    AthenaClient = Any

log = logging.getLogger(__name__)

_RUNNING = ("QUEUED", "RUNNING")


class AthenaFocusEngine(FocusEngine):
    """``FocusEngine`` over Athena: ``database.table`` in ``workgroup``."""

    def __init__(
        self,
        client: AthenaClient,
        *,
        workgroup: str,
        database: str,
        table: str,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.workgroup = workgroup
        self.database = database
        self.table = table
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._sleep = sleep
        self._clock = clock

    def tag_value(self, key_literal: str) -> str:
        # Trino's element_at(map, key) is NULL for a missing key (the subscript would fail the query).
        return f"element_at(Tags, {key_literal})"

    def query(self, sql: str, billing_periods: Sequence[str]) -> list[tuple[str | None, ...]]:
        statement = sql.format(table=f'"{self.database}"."{self.table}"')
        try:
            started = self._client.start_query_execution(
                QueryString=statement,
                QueryExecutionContext={"Database": self.database},
                WorkGroup=self.workgroup,
            )
            execution_id = started["QueryExecutionId"]
            self._wait(execution_id)
            return self._rows(execution_id)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500 or code in (
                "TooManyRequestsException",
                "ThrottlingException",
            ):
                raise CostSourceUnavailable(f"Athena {code} on the FOCUS query") from error
            raise CostSourceError(f"Athena {code} on the FOCUS query") from error
        except BotoCoreError as error:
            raise CostSourceUnavailable(f"Athena did not answer: {type(error).__name__}") from None

    def _wait(self, execution_id: str) -> None:
        deadline = self._clock() + self._timeout
        while True:
            status = self._client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
            state = status.get("State", "")
            if state == "SUCCEEDED":
                return
            if state not in _RUNNING:
                reason = str(status.get("StateChangeReason", ""))[:300]
                raise CostSourceError(f"the FOCUS query {state.lower() or 'ended'} in Athena: {reason}")
            if self._clock() >= deadline:
                raise CostSourceUnavailable(f"the FOCUS query ran longer than {self._timeout:.0f} s in Athena")
            self._sleep(self._poll)

    def _rows(self, execution_id: str) -> list[tuple[str | None, ...]]:
        rows: list[tuple[str | None, ...]] = []
        token: str | None = None
        header = True
        while True:
            request: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": 1000}
            if token:
                request["NextToken"] = token
            page = self._client.get_query_results(**request)
            for row in page.get("ResultSet", {}).get("Rows", []):
                if header:  # the first row of a SELECT's results holds the column names
                    header = False
                    continue
                rows.append(tuple(cell.get("VarCharValue") for cell in row.get("Data", [])))
            token = page.get("NextToken")
            if not token:
                return rows
