"""A FOCUS 1.2 Data Export in the local S3, as AWS Data Exports delivers it, for ``COST_SOURCE=focus``.

Each billing period is one Parquet file under ``data/billing_period=YYYY-MM/`` and its manifest under
``metadata/billing_period=YYYY-MM/<export-name>-Manifest.json`` (AWS writes the manifest last). The
columns are the FOCUS 1.2 columns the billing reads, with AWS's types: costs as doubles, timestamps
in milliseconds, ``Tags`` as a map.

The seed month is the Cost Explorer seed (17.74 USD over four services) with a Savings Plan in it,
shaped like the FOCUS specification's ``aws_savings_plan_no_upfront_100pct.csv`` scenario: the plan's
recurring fee is a Purchase line (BilledCost = fee, EffectiveCost 0) and the Lambda usage it covered
is Usage with BilledCost 0 and EffectiveCost its amortized share. The plan is fully used, so both
cost columns sum to the same 17.74; AWS's VAT on it is a Tax line. Every line carries the month's
InvoiceId: the month is final. The current month is a prorated estimate without invoice ids.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from billing_core.adapters.focus_export import parse_export_uri
from billing_core.domain.costs import Period
from local_stack.cost_seed import AWS_VAT, SEED_FILE, month_to_date

EXPORT_BUCKET = "billing-focus-export"
EXPORT_ROOT = "focus/billing-focus"  # <prefix>/<export-name>
EXPORT_URI = f"s3://{EXPORT_BUCKET}/{EXPORT_ROOT}"
PAYER_ACCOUNT = "999999999999"
LINKED_ACCOUNT = "111111111111"
AWS_ISSUER = "Amazon Web Services EMEA SARL"
SAVINGS_PLAN = f"arn:aws:savingsplans::{PAYER_ACCOUNT}:savingsplan/sp-0local0seed0plan"
SAVINGS_PLAN_SERVICE = "Savings Plans for AWS Compute usage"
SAVINGS_PLAN_COVERED = {"AWS Lambda": Decimal("3.0000000000")}  # of the seed's 5.2312345678 USD

# The columns written, with AWS's types (FOCUS 1.2 with AWS columns).
COLUMNS = {
    "BilledCost": "DOUBLE",
    "EffectiveCost": "DOUBLE",
    "BillingAccountId": "VARCHAR",
    "BillingCurrency": "VARCHAR",
    "BillingPeriodStart": "TIMESTAMP_MS",
    "BillingPeriodEnd": "TIMESTAMP_MS",
    "ChargeCategory": "VARCHAR",
    "ChargeClass": "VARCHAR",
    "ChargeDescription": "VARCHAR",
    "ChargePeriodStart": "TIMESTAMP_MS",
    "ChargePeriodEnd": "TIMESTAMP_MS",
    "CommitmentDiscountId": "VARCHAR",
    "CommitmentDiscountStatus": "VARCHAR",
    "InvoiceId": "VARCHAR",
    "InvoiceIssuerName": "VARCHAR",
    "ProviderName": "VARCHAR",
    "PublisherName": "VARCHAR",
    "ServiceName": "VARCHAR",
    "SubAccountId": "VARCHAR",
    "Tags": "MAP(VARCHAR, VARCHAR)",
}


@dataclass(frozen=True)
class FocusLine:
    """One line of the export (amounts as decimal text, written as AWS writes them: doubles)."""

    service: str
    billed: str
    charge_month: Period
    effective: str | None = None  # None: the same as billed
    category: str = "Usage"
    charge_class: str | None = None
    invoice_id: str | None = None
    sub_account: str | None = LINKED_ACCOUNT
    tags: dict[str, str] = field(default_factory=dict)
    issuer: str = AWS_ISSUER
    commitment_id: str | None = None
    commitment_status: str | None = None
    currency: str = "USD"

    def row(self, billing_period: Period) -> tuple[Any, ...]:
        return (
            float(self.billed),  # the export's type: a double
            float(self.billed if self.effective is None else self.effective),
            PAYER_ACCOUNT,
            self.currency,
            billing_period.start,
            billing_period.end,
            self.category,
            self.charge_class,
            f"{self.service} {self.category.lower()}",
            self.charge_month.start,
            self.charge_month.end,
            self.commitment_id,
            self.commitment_status,
            self.invoice_id,
            self.issuer,
            "Amazon Web Services",
            "Amazon Web Services" if self.issuer.startswith("Amazon Web Services") else self.issuer,
            self.service,
            self.sub_account,
            self.tags,
        )


def write_parquet(path: Path, billing_period: Period, lines: Iterable[FocusLine]) -> Path:
    """The lines as one Parquet file with the export's column types."""
    connection = duckdb.connect()
    try:
        columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS.items())
        connection.execute(f"CREATE TABLE focus ({columns})")
        placeholders = ", ".join("?" for _ in COLUMNS)
        rows = [line.row(billing_period) for line in lines]
        if rows:
            connection.executemany(f"INSERT INTO focus VALUES ({placeholders})", rows)
        connection.execute("COPY focus TO $path (FORMAT parquet, COMPRESSION snappy)", {"path": str(path)})
    finally:
        connection.close()
    return path


def publish_files(s3: Any, export_uri: str, billing_period: Period, files: Sequence[Path]) -> list[str]:
    """Upload ``files`` as the period's data, then its manifest (last, as AWS does); the data files' URIs."""
    bucket, root = parse_export_uri(export_uri)
    export_name = root.rsplit("/", 1)[-1]
    partition = f"billing_period={billing_period.label}"
    uris = []
    for number, path in enumerate(files, start=1):
        key = f"{root}/data/{partition}/{export_name}-{number:05d}.snappy.parquet"
        s3.upload_file(str(path), bucket, key)
        uris.append(f"s3://{bucket}/{key}")
    manifest = {
        "executionId": str(uuid.uuid4()),
        "exportArn": f"arn:aws:bcm-data-exports:us-east-1:{PAYER_ACCOUNT}:export/{export_name}-{uuid.uuid4()}",
        "columns": [{"name": name, "type": kind.lower()} for name, kind in COLUMNS.items()],
        "dataFiles": uris,
        "additionalOutputFiles": [],
    }
    s3.put_object(
        Bucket=bucket,
        Key=f"{root}/metadata/{partition}/{export_name}-Manifest.json",
        Body=json.dumps(manifest).encode(),
        ContentType="application/json",
    )
    return uris


def publish(s3: Any, export_uri: str, billing_period: Period, lines: Iterable[FocusLine]) -> list[str]:
    """Write ``lines`` as the period's export (one file) and publish it."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_parquet(Path(folder) / "part.parquet", billing_period, lines)
        return publish_files(s3, export_uri, billing_period, [path])


def invoice_id(period: Period) -> str:
    """The seed's AWS invoice id of ``period`` (AWS EMEA numbers look like EUINDE24-...)."""
    return f"EUINDE{period.year % 100:02d}-{period.month:02d}0001"


def seed_month_lines(period: Period, *, seed_file: Path = SEED_FILE, share: Decimal = Decimal(1)) -> list[FocusLine]:
    """The seed month as FOCUS lines (a prorated estimate without invoice ids when ``share`` < 1)."""
    seed = json.loads(seed_file.read_text())
    (result,) = seed["ResultsByTime"]
    final = share == 1
    invoice = invoice_id(period) if final else None
    lines: list[FocusLine] = []
    usage = Decimal(0)
    for group in result["Groups"]:
        (service,) = group["Keys"]
        (metric,) = group["Metrics"].values()
        amount = (Decimal(metric["Amount"]) * share).quantize(Decimal("1E-10"))
        if service == "Tax" or not amount:
            continue
        usage += amount
        covered = (SAVINGS_PLAN_COVERED.get(service, Decimal(0)) * share).quantize(Decimal("1E-10"))
        lines.append(FocusLine(service, str(amount - covered), period, invoice_id=invoice))
        if covered:
            lines.append(
                FocusLine(
                    service,
                    "0",
                    period,
                    effective=str(covered),
                    invoice_id=invoice,
                    commitment_id=SAVINGS_PLAN,
                    commitment_status="Used",
                )
            )
            lines.append(
                FocusLine(
                    SAVINGS_PLAN_SERVICE,
                    str(covered),
                    period,
                    effective="0",
                    category="Purchase",
                    invoice_id=invoice,
                    commitment_id=SAVINGS_PLAN,
                )
            )
    tax = (usage * AWS_VAT).quantize(Decimal("1E-10"))
    lines.append(FocusLine("Tax", str(tax), period, category="Tax", invoice_id=invoice))
    return lines


def seed_focus_export(s3: Any, today: date, *, export_uri: str = EXPORT_URI) -> str:
    """Create the export's bucket and publish last month (final) and this month so far; the export's URI."""
    bucket, _ = parse_export_uri(export_uri)
    try:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    previous = Period.previous(today)
    publish(s3, export_uri, previous, seed_month_lines(previous))
    start, end = month_to_date(today)
    this_month = Period.containing(today)
    share = Decimal((end - start).days) / Decimal(this_month.days)
    publish(s3, export_uri, this_month, seed_month_lines(this_month, share=share))
    return export_uri
