"""The FOCUS 1.2 export as a cost source: AWS Data Exports' Parquet files in S3, aggregated by SQL.

The export lives under ``s3://<bucket>/<prefix>/<export-name>/``: each billing period's files under
``data/billing_period=YYYY-MM/`` and, once every file of a refresh is there, its
``metadata/billing_period=YYYY-MM/<export-name>-Manifest.json`` listing them (``dataFiles``). A period
without a manifest has not been delivered: it is missing from the answer, not a month of zero costs.

What the billing reads of each line:
- the cost column (``BilledCost``: what the AWS invoice charges; ``EffectiveCost``: amortized, a
  Savings Plan's fee spread over the usage it covered), a double in the export, taken as
  DECIMAL(38,10) line by line before anything is summed, so sums are exact decimals;
- ``ChargePeriodStart``: the month a line belongs to. A correction (``ChargeClass=Correction``) of an
  earlier month sits in a later billing period but counts for the month it corrects, so that month's
  total changes and the true-up bills the difference, as it does for Cost Explorer's revisions;
- ``InvoiceId``: a billing period is final when every line of it has one;
- ``ChargeCategory`` (Usage, Purchase, Tax, Credit, Adjustment): the kinds of charges left out
  (Tax by default) and the reconciliation's rows;
- ``InvoiceIssuerName``: a line not issued by Amazon Web Services is a Marketplace charge, passed on
  as its own line ("Marketplace: <service>") or left out;
- ``SubAccountId`` (linked account) or a key of ``Tags`` as the scope, as Cost Explorer's grouping.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_core.domain.costs import (
    PAYER,
    AttributionKind,
    ChargeCategory,
    ChargeType,
    CostAttribution,
    CostLine,
    CostReport,
    InvoicedCost,
    Period,
    currencies_of,
    merged_months,
    sorted_lines,
)
from billing_core.errors import CostSourceError, CostSourceUnavailable
from billing_core.ports import CostSource, FocusEngine

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

log = logging.getLogger(__name__)

COST_COLUMNS = ("BilledCost", "EffectiveCost")
# FOCUS's charge categories, in the billing's words; the name stays FOCUS's own.
CHARGE_CATEGORIES = {
    "Usage": ChargeCategory.USAGE,
    "Purchase": ChargeCategory.FEE,
    "Tax": ChargeCategory.TAX,
    "Credit": ChargeCategory.CREDIT,
    "Adjustment": ChargeCategory.OTHER,
}
MARKETPLACE = ChargeType(ChargeCategory.OTHER, "Marketplace")  # charges another issuer invoices through AWS
FOCUS_TAX = ChargeType(ChargeCategory.TAX, "Tax")
# Amazon Web Services, Inc., Amazon Web Services EMEA SARL, ...: AWS's own invoicing entities.
AWS_ISSUER_PREFIX = "Amazon Web Services"
MARKETPLACE_PREFIX = "Marketplace: "
_PARTITION_NAMES = ("billing_period", "BILLING_PERIOD")  # AWS's FOCUS folders are lower case, CUR 2.0's upper
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(.+?)/?$")
STALE_FILE_SECONDS = 3600
_SAFE_LITERAL = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")


class MarketplaceCharges(StrEnum):
    """What the billing does with Marketplace charges."""

    LINE = "line"  # passed on, each as its own line "Marketplace: <product>"
    EXCLUDE = "exclude"  # left out (like Tax), shown in the reconciliation


def charge_type(category: str) -> ChargeType:
    """The charge type of a FOCUS ChargeCategory value (an unknown one is OTHER, under its own name)."""
    return ChargeType(CHARGE_CATEGORIES.get(category, ChargeCategory.OTHER), category)


def parse_export_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix/export-name`` as (bucket, key prefix without the trailing slash)."""
    match = _S3_URI.match(uri or "")
    if not match:
        raise ValueError("must be s3://<bucket>/<prefix>/<export-name>, the folder holding data/ and metadata/")
    return match.group(1), match.group(2).rstrip("/")


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal; control characters and over-long values are refused."""
    if not _SAFE_LITERAL.match(text):
        raise CostSourceError("a value in a cost query must be 1-256 characters without control characters")
    return "'" + text.replace("'", "''") + "'"


class FocusExportFiles:
    """The export's Parquet files of a billing period, read through its manifest, cached on disk.

    A file is downloaded once per version (its S3 ETag is part of the cached name), so the preview's
    repeated questions about the current month download only what a refresh changed. Files a newer
    manifest no longer lists are removed from the cache an hour later.
    """

    def __init__(self, s3: S3Client, export_uri: str, cache_dir: Path) -> None:
        self._s3 = s3
        self.bucket, self.root = parse_export_uri(export_uri)
        self.export_name = self.root.rsplit("/", 1)[-1]
        self.cache_dir = cache_dir

    def paths(self, billing_period: str) -> list[Path]:
        """The local copies of the period's data files; empty while the period has no manifest."""
        manifest = self._manifest(billing_period)
        if manifest is None:
            return []
        folder = self.cache_dir / f"billing_period={billing_period}"
        folder.mkdir(parents=True, exist_ok=True)
        wanted: list[Path] = []
        for uri in manifest:
            bucket, key = self._object_of(uri)
            body = self._get(bucket, key)
            etag = str(body.get("ETag", "")).strip('"')
            local = folder / f"{hashlib.sha256(f'{bucket}/{key}@{etag}'.encode()).hexdigest()[:32]}.parquet"
            if not local.exists():
                partial = local.with_suffix(f".{os.getpid()}.part")
                with partial.open("wb") as out:
                    for chunk in body["Body"].iter_chunks(chunk_size=1 << 20):
                        out.write(chunk)
                partial.replace(local)  # atomic: a reader never sees half a file
            else:
                body["Body"].close()
            wanted.append(local)
        self._forget_stale(folder, wanted)
        return wanted

    def _forget_stale(self, folder: Path, wanted: list[Path]) -> None:
        # Another process (billing-api and the worker may share the cache) may still be reading a file an
        # older manifest listed: a replaced file is removed only an hour after it was downloaded.
        cutoff = time.time() - STALE_FILE_SECONDS
        for stale in folder.glob("*.parquet"):
            if stale not in wanted:
                try:
                    if stale.stat().st_mtime < cutoff:
                        stale.unlink(missing_ok=True)
                except FileNotFoundError:
                    continue

    def _manifest(self, billing_period: str) -> list[str] | None:
        for partition in _PARTITION_NAMES:
            key = f"{self.root}/metadata/{partition}={billing_period}/{self.export_name}-Manifest.json"
            try:
                response = self._s3.get_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    continue
                raise self._error("reading the export's manifest", error) from error
            except BotoCoreError as error:
                raise CostSourceUnavailable(f"S3 did not answer for the FOCUS export: {type(error).__name__}") from None
            try:
                files = json.loads(response["Body"].read())["dataFiles"]
            except (ValueError, KeyError, TypeError):
                raise CostSourceError(f"the FOCUS export's manifest {key} has no list of dataFiles") from None
            if not isinstance(files, list) or not all(isinstance(uri, str) for uri in files):
                raise CostSourceError(f"the FOCUS export's manifest {key} has no list of dataFiles")
            return [uri for uri in files if uri.endswith(".parquet")]
        return None

    def _object_of(self, uri: str) -> tuple[str, str]:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise CostSourceError(f"the FOCUS export's manifest lists a file that is not in S3: {uri[:200]!r}")
        bucket, key = uri[5:].split("/", 1)
        return bucket, key

    def _get(self, bucket: str, key: str) -> dict[str, Any]:
        try:
            response: dict[str, Any] = self._s3.get_object(Bucket=bucket, Key=key)
            return response
        except ClientError as error:
            raise self._error(f"reading {key}", error) from error
        except BotoCoreError as error:
            raise CostSourceUnavailable(f"S3 did not answer for the FOCUS export: {type(error).__name__}") from None

    @staticmethod
    def _error(what: str, error: ClientError) -> CostSourceError:
        code = error.response.get("Error", {}).get("Code", "error")
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            return CostSourceUnavailable(f"S3 {code} {what} of the FOCUS export")
        return CostSourceError(f"S3 {code} {what} of the FOCUS export")


@dataclass(frozen=True)
class _Month:
    currency: set[str]
    lines: int
    invoiced: int


class FocusCostSource(CostSource):
    """``CostSource`` over a FOCUS 1.2 export, through a ``FocusEngine`` (DuckDB or Athena).

    ``excluded`` charge types (FOCUS ChargeCategory names, Tax by default; ``MARKETPLACE`` for the
    Marketplace charges) are left out of every query but the one by charge type and the invoices.
    """

    def __init__(
        self,
        engine: FocusEngine,
        *,
        cost_column: str = "BilledCost",
        excluded: Iterable[ChargeType] = (FOCUS_TAX,),
        marketplace: MarketplaceCharges = MarketplaceCharges.LINE,
    ) -> None:
        if cost_column not in COST_COLUMNS:
            raise ValueError(f"the FOCUS cost column must be one of {', '.join(COST_COLUMNS)}")
        unknown = sorted(kind.name for kind in excluded if kind.name not in CHARGE_CATEGORIES)
        if unknown:
            raise ValueError(
                f"FOCUS has no charge category {', '.join(unknown)} to leave out "
                f"(it knows {', '.join(CHARGE_CATEGORIES)})"
            )
        self._engine = engine
        self.cost_column = cost_column
        self.marketplace = marketplace
        excluded = tuple(charge_type(kind.name) for kind in excluded)
        self._excluded = excluded + ((MARKETPLACE,) if marketplace is MarketplaceCharges.EXCLUDE else ())

    @property
    def excluded(self) -> tuple[ChargeType, ...]:
        return self._excluded

    # --- the port --------------------------------------------------------------------------------

    def costs_by_month(self, start: date, end: date, attribution: CostAttribution = PAYER) -> list[CostReport]:
        """One report per charge month of ``start``..``end`` whose billing period has been delivered."""
        periods = _periods(start, end)
        status = self._status(periods)
        scope = self._scope(attribution)
        # Ordered by DuckDB (or Athena), so the lines need no sort of their own (UTF-8 byte order is
        # Python's order of str), and each row is one line: (month, scope, service) is the group.
        sql = (
            f"SELECT CAST(year(ChargePeriodStart) AS VARCHAR), CAST(month(ChargePeriodStart) AS VARCHAR), "
            f"{scope}, {self._service()}, {self._sum(self.cost_column)} "
            f"FROM {{table}} WHERE {self._where(periods, start, end)} AND {self._included()} "
            f"GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        )
        lines: dict[str, list[CostLine]] = {label: [] for label in status}
        labels: dict[tuple[str | None, str | None], str] = {}
        scopes: dict[str, str] = {}  # one str object per scope: 100,000 scopes x 50 services stay small
        splits = attribution.splits
        for year, month, scope_value, service, amount in self._engine.query(sql, periods):
            label = labels.get((year, month))
            if label is None:
                label = labels.setdefault((year, month), f"{int(_text(year)):04d}-{int(_text(month)):02d}")
            bucket = lines.get(label)
            if bucket is None:
                continue  # a correction of a month whose own period is not in the answer
            text = scope_value or ""
            bucket.append(CostLine(_text(service), _decimal(amount), scopes.setdefault(text, text) if splits else None))
        currencies = {currency for month in status.values() for currency in month.currency}
        if len(currencies) > 1:
            raise CostSourceError(f"the FOCUS export bills in several currencies: {sorted(currencies)}")
        currency = currencies.pop() if currencies else "USD"
        return [
            CostReport(
                start=Period.parse(label).start,
                end=Period.parse(label).end,
                currency=currency,
                estimated=status[label].invoiced < status[label].lines,
                lines=sorted_lines(lines[label]),  # in order already: the sort only keeps the port's promise
                attribution=attribution,
            )
            for label in sorted(status)
        ]

    def costs(self, start: date, end: date, attribution: CostAttribution = PAYER) -> CostReport:
        """The months' reports merged per (scope, service); estimated if any month is."""
        months = self.costs_by_month(start, end, attribution)
        if len(months) == 1 and (months[0].start, months[0].end) == (start, end):
            return months[0]  # one whole month: nothing to merge (5 million lines at 100,000 accounts)
        if len(currencies_of(months)) > 1:  # pragma: no cover - costs_by_month refuses it first
            raise CostSourceError("the FOCUS export bills in several currencies")
        return merged_months(months, start, end, attribution)

    def costs_by_charge_type(self, start: date, end: date) -> dict[ChargeType, Decimal]:
        """The whole export's costs of ``start``..``end`` (charge months) by charge category, nothing left out."""
        periods = _periods(start, end)
        sql = (
            f"SELECT {self._kind()}, {self._sum(self.cost_column)} FROM {{table}} "
            f"WHERE {self._where(periods, start, end)} GROUP BY 1"
        )
        totals: dict[ChargeType, Decimal] = {}
        for kind, amount in self._engine.query(sql, periods):
            charge = MARKETPLACE if kind == MARKETPLACE.name else charge_type(_text(kind))
            totals[charge] = totals.get(charge, Decimal(0)) + _decimal(amount)
        return dict(sorted(totals.items()))

    def forecast(self, start: date, end: date) -> Decimal | None:
        """The export has no forecast (the preview projects the month linearly)."""
        return None

    def invoiced(self, period: Period, attribution: CostAttribution = PAYER) -> list[InvoicedCost]:
        """Every line of billing period ``period`` by invoice, scope, service and kind, nothing left out."""
        periods = [period.label]
        sql = (
            f"SELECT COALESCE(InvoiceId, ''), "
            f"CASE WHEN ChargePeriodStart < {_timestamp(period.start)} THEN 'earlier' ELSE 'period' END, "
            f"{self._scope(attribution)}, {self._service()}, {self._kind()}, "
            f"{self._sum('BilledCost')}, {self._sum(self.cost_column)} "
            f"FROM {{table}} WHERE billing_period IN ({_in_list(periods)}) GROUP BY 1, 2, 3, 4, 5"
        )
        parts = []
        for invoice, when, scope, service, kind, billed, cost in self._engine.query(sql, periods):
            parts.append(
                InvoicedCost(
                    invoice_id=_text(invoice),
                    scope=(scope or "") if attribution.splits else None,
                    service=_text(service),
                    charge_type=MARKETPLACE if kind == MARKETPLACE.name else charge_type(_text(kind)),
                    billed=_decimal(billed),
                    cost=_decimal(cost),
                    earlier=when == "earlier",
                )
            )
        return sorted(parts, key=lambda p: (p.invoice_id, p.earlier, p.scope or "", p.service, p.charge_type))

    # --- SQL, the same for DuckDB and Athena ----------------------------------------------------------

    def _status(self, periods: Sequence[str]) -> dict[str, _Month]:
        """Per delivered billing period: its currencies, its lines and how many are invoiced."""
        sql = (
            "SELECT billing_period, BillingCurrency, CAST(COUNT(*) AS VARCHAR), CAST(COUNT(InvoiceId) AS VARCHAR) "
            f"FROM {{table}} WHERE billing_period IN ({_in_list(periods)}) GROUP BY 1, 2"
        )
        months: dict[str, _Month] = {}
        for label, currency, lines, invoiced in self._engine.query(sql, periods):
            seen = months.get(_text(label), _Month(set(), 0, 0))
            months[_text(label)] = _Month(
                seen.currency | ({currency} if currency else set()),
                seen.lines + int(_text(lines)),
                seen.invoiced + int(_text(invoiced)),
            )
        return months

    def _scope(self, attribution: CostAttribution) -> str:
        if attribution.kind is AttributionKind.ACCOUNT:
            return "COALESCE(SubAccountId, '')"
        if attribution.kind is AttributionKind.TAG and attribution.tag_key:
            return f"COALESCE({self._engine.tag_value(sql_literal(attribution.tag_key))}, '')"
        return "CAST(NULL AS VARCHAR)"

    def _service(self) -> str:
        service = "COALESCE(ServiceName, ChargeCategory, '')"
        if self.marketplace is MarketplaceCharges.LINE:
            return f"CASE WHEN {_marketplace()} THEN concat('{MARKETPLACE_PREFIX}', {service}) ELSE {service} END"
        return service

    def _kind(self) -> str:
        """The charge type's name: FOCUS's ChargeCategory, or Marketplace when it is left out as such."""
        if MARKETPLACE in self._excluded:
            return f"CASE WHEN {_marketplace()} THEN '{MARKETPLACE.name}' ELSE ChargeCategory END"
        return "ChargeCategory"

    def _included(self) -> str:
        conditions = ["TRUE"]
        categories = [kind.name for kind in self._excluded if kind != MARKETPLACE]
        if categories:
            conditions.append(f"ChargeCategory NOT IN ({_in_list(categories)})")
        if MARKETPLACE in self._excluded:
            conditions.append(f"NOT ({_marketplace()})")
        return " AND ".join(conditions)

    @staticmethod
    def _sum(column: str) -> str:
        # The export's doubles, each taken to 10 decimals before the exact decimal sum.
        return f"CAST(SUM(CAST({column} AS DECIMAL(38, 10))) AS VARCHAR)"

    @staticmethod
    def _where(periods: Sequence[str], start: date, end: date) -> str:
        return (
            f"billing_period IN ({_in_list(periods)}) "
            f"AND ChargePeriodStart >= {_timestamp(start)} AND ChargePeriodStart < {_timestamp(end)}"
        )


def _marketplace() -> str:
    return f"(InvoiceIssuerName IS NOT NULL AND InvoiceIssuerName NOT LIKE '{AWS_ISSUER_PREFIX}%')"


def _periods(start: date, end: date) -> list[str]:
    """The billing periods (``YYYY-MM``) whose months ``start``..``end`` touches."""
    first, last = Period.containing(start), Period.containing(end)
    if end > last.start:
        last = last.shifted(1)
    labels = []
    while first < last:
        labels.append(first.label)
        first = first.shifted(1)
    return labels


def _in_list(values: Sequence[str]) -> str:
    return ", ".join(sql_literal(value) for value in values) if values else "NULL"


def _timestamp(day: date) -> str:
    return f"TIMESTAMP '{day.isoformat()} 00:00:00'"


def _text(value: str | None) -> str:
    return "" if value is None else value


def _decimal(value: str | None) -> Decimal:
    try:
        return Decimal(value) if value is not None else Decimal(0)
    except InvalidOperation:
        raise CostSourceError("the FOCUS export's sum is not a decimal number") from None
