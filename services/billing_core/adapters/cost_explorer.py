"""Cost Explorer adapter: one grouped ``GetCostAndUsage`` query per billing run.

The domain's words are mapped onto Cost Explorer's here, and only here: a ``CostAttribution`` is a
``GroupBy`` (SERVICE, with LINKED_ACCOUNT or a TAG first), a ``ChargeType`` is a RECORD_TYPE.

The query for a given range and grouping is always built the same way (the local stack seeds moto's
canned answers per exact request). Pages are followed through ``NextPageToken``; throttling is
retried with capped exponential back-off and full jitter, a bounded number of times. An endpoint
that cannot be reached, times out or fails on its side is ``CostSourceUnavailable`` (try later).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_core.domain.costs import (
    PAYER,
    AttributionKind,
    ChargeCategory,
    ChargeType,
    CostAttribution,
    CostReport,
    currencies_of,
    merged_months,
    summed_lines,
)
from billing_core.errors import CostSourceError, CostSourceThrottled, CostSourceUnavailable
from billing_core.ports import CostSource

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_ce import CostExplorerClient
else:
    CostExplorerClient = Any

log = logging.getLogger(__name__)

THROTTLING_CODES = frozenset(
    {"LimitExceededException", "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
_FORECAST_METRICS = {
    "UnblendedCost": "UNBLENDED_COST",
    "BlendedCost": "BLENDED_COST",
    "AmortizedCost": "AMORTIZED_COST",
    "NetUnblendedCost": "NET_UNBLENDED_COST",
    "NetAmortizedCost": "NET_AMORTIZED_COST",
}


# Cost Explorer's record types (RECORD_TYPE) by the category of charge they are; any other is OTHER.
RECORD_TYPE_CATEGORIES = {
    "Usage": ChargeCategory.USAGE,
    "DiscountedUsage": ChargeCategory.USAGE,
    "SavingsPlanCoveredUsage": ChargeCategory.USAGE,
    "Tax": ChargeCategory.TAX,
    "Credit": ChargeCategory.CREDIT,
    "Refund": ChargeCategory.REFUND,
    "Support": ChargeCategory.SUPPORT,
    "Fee": ChargeCategory.FEE,
    "RIFee": ChargeCategory.FEE,
    "SavingsPlanRecurringFee": ChargeCategory.FEE,
    "SavingsPlanUpfrontFee": ChargeCategory.FEE,
    "SavingsPlanNegation": ChargeCategory.DISCOUNT,
    "BundledDiscount": ChargeCategory.DISCOUNT,
    "EdpDiscount": ChargeCategory.DISCOUNT,
    "PrivateRateDiscount": ChargeCategory.DISCOUNT,
    "DistributorDiscount": ChargeCategory.DISCOUNT,
}


def charge_type(record_type: str) -> ChargeType:
    """The charge type of a Cost Explorer record type: its category, and the record type as its name."""
    return ChargeType(RECORD_TYPE_CATEGORIES.get(record_type, ChargeCategory.OTHER), record_type)


TAX = charge_type("Tax")


def group_by_definitions(attribution: CostAttribution) -> list[dict[str, str]]:
    """Cost Explorer ``GroupBy`` for an attribution: SERVICE, after LINKED_ACCOUNT or the tag when it splits."""
    service = {"Type": "DIMENSION", "Key": "SERVICE"}
    if attribution.kind is AttributionKind.ACCOUNT:
        return [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, service]
    if attribution.kind is AttributionKind.TAG and attribution.tag_key:
        return [{"Type": "TAG", "Key": attribution.tag_key}, service]
    return [service]


class CostExplorerCostSource(CostSource):
    """``CostSource`` over a boto3 Cost Explorer client.

    ``excluded`` charge types are left out of every query but the one by charge type; a charge type's
    name is its record type (see ``charge_type``). ``requests_made`` counts every API call (each costs
    0.01 USD), for the run record and the reconciliation report.
    """

    def __init__(
        self,
        client: CostExplorerClient,
        *,
        metric: str = "UnblendedCost",
        excluded: Iterable[ChargeType] = (TAX,),
        max_attempts: int = 6,
        base_delay_seconds: float = 1.0,
        max_delay_seconds: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self.metric = metric
        self._excluded = tuple(excluded)
        self._max_attempts = max_attempts
        self._base_delay = base_delay_seconds
        self._max_delay = max_delay_seconds
        self._sleep = sleep
        self._jitter = jitter
        self.requests_made: int = 0

    @property
    def excluded(self) -> tuple[ChargeType, ...]:
        return self._excluded

    def query(self, start: date, end: date, attribution: CostAttribution = PAYER) -> dict[str, Any]:
        """The first page's ``GetCostAndUsage`` arguments (deterministic for the same inputs)."""
        request: dict[str, Any] = {
            "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
            "Granularity": "MONTHLY",
            "Metrics": [self.metric],
            "GroupBy": group_by_definitions(attribution),
        }
        if self.excluded:
            # AWS's own VAT (record type Tax) is input tax the operator reclaims: passing it on would
            # charge VAT on VAT. Credits and refunds stay in and reduce the AWS line.
            request["Filter"] = self._exclusion()
        return request

    def _exclusion(self) -> dict[str, Any]:
        return {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": [kind.name for kind in self.excluded]}}}

    def costs_by_month(self, start: date, end: date, attribution: CostAttribution = PAYER) -> list[CostReport]:
        """Every page of the one grouped MONTHLY query, one report per month in the answer, oldest first."""
        request = self.query(start, end, attribution)
        scoped = attribution.splits
        months: dict[tuple[date, date], tuple[dict[tuple[str | None, str], Decimal], set[str], bool]] = {}
        token: str | None = None
        while True:
            page = self._call("get_cost_and_usage", {**request, "NextPageToken": token} if token else request)
            for result in page.get("ResultsByTime", []):
                try:
                    span = (
                        date.fromisoformat(result["TimePeriod"]["Start"]),
                        date.fromisoformat(result["TimePeriod"]["End"]),
                    )
                except (KeyError, TypeError, ValueError):
                    raise CostSourceError("Cost Explorer answered a period without its dates") from None
                totals, units, estimated = months.get(span, ({}, set(), False))
                estimated = estimated or bool(result.get("Estimated", False))
                for group in result.get("Groups", []):
                    scope, service = self._scope_and_service(group.get("Keys", []), scoped)
                    amount, unit = self._amount(group)
                    units.add(unit)
                    totals[(scope, service)] = totals.get((scope, service), Decimal(0)) + amount
                months[span] = (totals, units, estimated)
            token = page.get("NextPageToken")
            if not token:
                break
        reports = []
        for (month_start, month_end), (totals, units, estimated) in sorted(months.items()):
            if len(units) > 1:
                raise CostSourceError(f"Cost Explorer answered in several currencies: {sorted(units)}")
            reports.append(
                CostReport(
                    start=month_start,
                    end=month_end,
                    currency=units.pop() if units else "USD",
                    estimated=estimated,
                    lines=summed_lines(totals),
                    attribution=attribution,
                )
            )
        return reports

    def costs_by_charge_type(self, start: date, end: date) -> dict[ChargeType, Decimal]:
        """One query grouped by RECORD_TYPE, without the exclusion filter: the payer account's whole bill."""
        request: dict[str, Any] = {
            "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
            "Granularity": "MONTHLY",
            "Metrics": [self.metric],
            "GroupBy": [{"Type": "DIMENSION", "Key": "RECORD_TYPE"}],
        }
        totals: dict[str, Decimal] = {}
        token: str | None = None
        while True:
            page = self._call("get_cost_and_usage", {**request, "NextPageToken": token} if token else request)
            for result in page.get("ResultsByTime", []):
                for group in result.get("Groups", []):
                    _, kind = self._scope_and_service(group.get("Keys", []), scoped=False)
                    amount, _unit = self._amount(group)
                    totals[kind] = totals.get(kind, Decimal(0)) + amount
            token = page.get("NextPageToken")
            if not token:
                return {charge_type(kind): amount for kind, amount in sorted(totals.items())}

    def costs(self, start: date, end: date, attribution: CostAttribution = PAYER) -> CostReport:
        """Every page of the grouped query, summed per (scope, service) across the months returned."""
        months = self.costs_by_month(start, end, attribution)
        currencies = currencies_of(months)
        if len(currencies) > 1:
            raise CostSourceError(f"Cost Explorer answered in several currencies: {sorted(currencies)}")
        return merged_months(months, start, end, attribution)

    def forecast(self, start: date, end: date) -> Decimal | None:
        """``GetCostForecast`` total, or ``None`` if the API refuses or is not implemented (moto)."""
        request: dict[str, Any] = {
            "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
            "Metric": _FORECAST_METRICS.get(self.metric, "UNBLENDED_COST"),
            "Granularity": "MONTHLY",
        }
        if self.excluded:
            request["Filter"] = self._exclusion()
        try:
            response = self._call("get_cost_forecast", request)
            return Decimal(str(response["Total"]["Amount"]))
        except (CostSourceError, ClientError, NotImplementedError, KeyError, InvalidOperation) as error:
            log.info("no cost forecast available", extra={"reason": type(error).__name__})
            return None

    def _scope_and_service(self, keys: list[str], scoped: bool) -> tuple[str | None, str]:
        if not scoped:
            if len(keys) != 1:
                raise CostSourceError(f"expected one group key, got {len(keys)}")
            return None, keys[0]
        if len(keys) != 2:
            raise CostSourceError(f"expected two group keys, got {len(keys)}")
        scope, service = keys
        # Tag groups come back as "<key>$<value>"; an empty value is the untagged remainder.
        if "$" in scope:
            scope = scope.split("$", 1)[1]
        return scope, service

    @staticmethod
    def _amount(group: dict[str, Any]) -> tuple[Decimal, str]:
        metrics = group.get("Metrics", {})
        if len(metrics) != 1:
            raise CostSourceError("expected exactly one metric per group")
        (value,) = metrics.values()
        try:
            return Decimal(str(value["Amount"])), str(value.get("Unit", "USD"))
        except (KeyError, InvalidOperation):
            raise CostSourceError("Cost Explorer amount is not a decimal number") from None

    def _call(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(1, self._max_attempts + 1):
            self.requests_made += 1
            try:
                response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
                return response
            except BotoCoreError as error:
                # Unreachable or timed out, after botocore's own retries: a dependency that is down.
                raise CostSourceUnavailable(
                    f"Cost Explorer did not answer {operation}: {type(error).__name__}"
                ) from None
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in THROTTLING_CODES:
                    if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
                        raise CostSourceUnavailable(f"Cost Explorer {code or 'error'} on {operation}") from error
                    raise CostSourceError(f"Cost Explorer {code or 'error'} on {operation}") from error
                if attempt == self._max_attempts:
                    raise CostSourceThrottled(f"Cost Explorer still throttling after {attempt} attempts") from error
                delay = self._jitter() * min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
                log.warning(
                    "Cost Explorer throttled; backing off",
                    extra={"operation": operation, "attempt": attempt, "delaySeconds": round(delay, 3)},
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
