"""DuckDB as the FOCUS engine: in-process SQL over the export's Parquet files on local disk.

The files come from ``FocusExportFiles`` (downloaded from S3 through boto3: DuckDB's own S3
extension cannot be downloaded at run time). DuckDB streams Parquet, so memory stays bounded by
the groups of the answer, not by the rows of the export; ``memory_limit`` caps it further.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import duckdb

from billing_core.errors import CostSourceError
from billing_core.ports import FocusEngine

BATCH_ROWS = 100_000


class DuckDbFocusEngine(FocusEngine):
    """``FocusEngine`` over the local Parquet files ``files(billing_period)`` names."""

    def __init__(
        self, files: Callable[[str], list[Path]], *, memory_limit: str = "3GB", threads: int | None = None
    ) -> None:
        self._files = files
        self._memory_limit = memory_limit
        self._threads = threads

    def tag_value(self, key_literal: str) -> str:
        # DuckDB's element_at(map, key) returns a list; the subscript returns the value (or NULL).
        return f"Tags[{key_literal}]"

    def query(self, sql: str, billing_periods: Sequence[str]) -> Iterator[tuple[str | None, ...]]:
        """The rows in batches of ``BATCH_ROWS`` (5 million groups held as Python tuples at once would double
        the memory of a large run); the connection closes when the last one is read."""
        paths = [str(path) for period in billing_periods for path in self._files(period)]
        if not paths:
            return
        connection = duckdb.connect(config=self._config())
        try:
            # A view cannot take parameters: the paths (the cache's own) are quoted here.
            files = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
            connection.execute(
                f"CREATE TEMP VIEW focus AS SELECT * FROM read_parquet([{files}], hive_partitioning = true, "
                "hive_types = {'billing_period': VARCHAR}, union_by_name = true)"
            )
            result = connection.execute(sql.format(table="focus"))
            while batch := result.fetchmany(BATCH_ROWS):
                yield from batch
        except duckdb.Error as error:
            raise CostSourceError(f"the FOCUS query failed in DuckDB: {str(error).splitlines()[0][:300]}") from None
        finally:
            connection.close()

    def _config(self) -> dict[str, str | bool | int | float | list[str]]:
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": self._memory_limit,
            "enable_external_access": True,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        if self._threads:
            config["threads"] = self._threads
        return config
