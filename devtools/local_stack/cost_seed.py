"""Seed the local Cost Explorer (moto) with the seed month and a month-to-date; revise answers later.

Moto answers ``GetCostAndUsage`` from a queue of canned results: the first request with a given
exact body takes the next queued result, and moto answers that same body with it from then on; any
other body takes the next one (or gets an empty answer). So each result is queued and then at once
claimed with the exact query the system makes, through the system's own Cost Explorer adapter:

    queue(previous month) -> adapter.costs(previous month)    # moto binds it to that query
    queue(month-to-date)  -> adapter.costs(month-to-date)     # and this one to that query

AWS's answer for a month changes until the month is final, and a credit can land after it was
billed. ``revise_billing_query`` makes the local Cost Explorer change its answer to the billing
run's query (through ``local_stack.moto_server.CostExplorerRevisions``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from billing_core.domain.costs import PAYER, CostAttribution, CostReport, Period
from billing_core.settings import Settings
from local_stack.worker_settings import COST_EXPLORER_REVISIONS_PATH

# A copy of ../shared/aws/ce_get_cost_and_usage_by_service.json, the seed example month (17.74 USD
# across four services), kept in the package so a clone without ../shared still starts.
SEED_FILE = Path(__file__).with_name("seed_cost_and_usage.json")
ATTRIBUTION = PAYER  # the local stack bills the whole payer account (COST_GROUP_BY=SERVICE)


@dataclass(frozen=True)
class SeededCosts:
    """What the local Cost Explorer now answers for the two ranges the system asks about."""

    previous_month: CostReport
    month_to_date: CostReport


def month_to_date(today: date) -> tuple[date, date]:
    """Start of this month to ``today`` (exclusive); on the 1st, the 1st alone (an empty range is invalid)."""
    start = today.replace(day=1)
    return start, max(today, start + timedelta(days=1))


def seed_cost_explorer(aws_endpoint: str, cost_explorer: Any, today: date, seed_file: Path = SEED_FILE) -> SeededCosts:
    """Make the previous month answer with the seed month and this month with a prorated estimate."""
    from billing_core.adapters.cost_explorer import CostExplorerCostSource

    seed = json.loads(seed_file.read_text())
    source = CostExplorerCostSource(cost_explorer)
    previous = Period.previous(today)
    mtd_start, mtd_end = month_to_date(today)
    this_month = Period.containing(today)
    share = Decimal((mtd_end - mtd_start).days) / Decimal(this_month.days)

    _queue_result(aws_endpoint, _for_range(seed, previous.start, previous.end))
    # Claimed with the run's own query: the billed month and the months it may correct, in one.
    months_back = Settings.from_env({}).correction_months
    (previous_report,) = source.costs_by_month(previous.shifted(-months_back).start, previous.end, ATTRIBUTION)
    # The payer's bill by record type (what `billing report` reconciles against): the usage, and the 19%
    # VAT AWS charges a German payer, which the billing query leaves out.
    _queue_result(aws_endpoint, _by_record_type(seed, previous.start, previous.end))
    source.costs_by_charge_type(previous.start, previous.end)
    _queue_result(aws_endpoint, _prorated(_for_range(seed, mtd_start, mtd_end), share))
    mtd_report = source.costs(mtd_start, mtd_end, ATTRIBUTION)
    return SeededCosts(previous_month=previous_report, month_to_date=mtd_report)


def _queue_result(aws_endpoint: str, result: dict[str, Any]) -> None:
    response = requests.post(
        f"{aws_endpoint}/moto-api/static/ce/cost-and-usage-results", json={"results": [result]}, timeout=10
    )
    response.raise_for_status()


def _for_range(seed: dict[str, Any], start: date, end: date) -> dict[str, Any]:
    """The seed response with its single period moved to ``start``..``end``."""
    result = copy.deepcopy(seed)
    (period,) = result["ResultsByTime"]
    period["TimePeriod"] = {"Start": start.isoformat(), "End": end.isoformat()}
    return result


AWS_VAT = Decimal("0.19")


def _by_record_type(seed: dict[str, Any], start: date, end: date) -> dict[str, Any]:
    """The seed month as Cost Explorer groups it by RECORD_TYPE: Usage, and AWS's VAT on it as Tax."""
    (period,) = seed["ResultsByTime"]
    usage = sum(
        (Decimal(metric["Amount"]) for group in period["Groups"] for metric in group["Metrics"].values()), Decimal(0)
    )
    groups = {"Usage": usage, "Tax": (usage * AWS_VAT).quantize(Decimal("1E-10"))}
    return {
        "GroupDefinitions": [{"Type": "DIMENSION", "Key": "RECORD_TYPE"}],
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
                "Total": {},
                "Estimated": False,
                "Groups": [
                    {"Keys": [kind], "Metrics": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}}
                    for kind, amount in groups.items()
                ],
            }
        ],
        "DimensionValueAttributes": [],
    }


def _prorated(result: dict[str, Any], share: Decimal) -> dict[str, Any]:
    """Every amount times ``share``, marked as an estimate (Cost Explorer's month-to-date looks so)."""
    for period in result["ResultsByTime"]:
        period["Estimated"] = True
        for group in period["Groups"]:
            for metric in group["Metrics"].values():
                metric["Amount"] = str((Decimal(metric["Amount"]) * share).quantize(Decimal("1E-10")))
    return result


def cost_explorer_result(
    months: Mapping[Period, Mapping[str, str]],
    *,
    estimated: Collection[Period] = (),
    attribution: CostAttribution = ATTRIBUTION,
) -> dict[str, Any]:
    """Cost Explorer's MONTHLY answer, grouped as ``attribution`` asks: per month, each service's amount (USD)."""
    from billing_core.adapters.cost_explorer import group_by_definitions

    return {
        "GroupDefinitions": group_by_definitions(attribution),
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": month.start.isoformat(), "End": month.end.isoformat()},
                "Total": {},
                "Groups": [
                    {"Keys": [service], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}
                    for service, amount in amounts.items()
                ],
                "Estimated": month in estimated,
            }
            for month, amounts in sorted(months.items())
        ],
        "DimensionValueAttributes": [],
    }


def revise_billing_query(
    aws_endpoint: str,
    period: Period,
    months: Mapping[Period, Mapping[str, str]],
    *,
    estimated: Collection[Period] = (),
    correction_months: int | None = None,
) -> None:
    """From now on the billing run's query for ``period`` (it and the correction months before it) answers ``months``.

    ``estimated`` months are marked as Cost Explorer marks a month that is not final yet.
    """
    from billing_core.adapters.cost_explorer import group_by_definitions

    months_back = Settings.from_env({}).correction_months if correction_months is None else correction_months
    revision = {
        "TimePeriod": {"Start": period.shifted(-months_back).start.isoformat(), "End": period.end.isoformat()},
        "GroupBy": group_by_definitions(ATTRIBUTION),
        "Result": cost_explorer_result(months, estimated=estimated),
    }
    response = requests.post(f"{aws_endpoint}{COST_EXPLORER_REVISIONS_PATH}", json=revision, timeout=10)
    response.raise_for_status()
