"""Cost Explorer adapter: one grouped query, every page, Decimal amounts, Estimated, back-off."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from billing_core.adapters.cost_explorer import CostExplorerCostSource, charge_type, group_by_definitions
from billing_core.bootstrap import cost_requests_of
from billing_core.domain.costs import PAYER, ChargeCategory, ChargeType, CostAttribution, CostLine, Period
from billing_core.errors import CostSourceError, CostSourceThrottled, CostSourceUnavailable
from tests.support.fakes import FakeCostSource

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "aws" / "ce_get_cost_and_usage_by_service.json"
NOVEMBER = Period(2024, 11)


def seed_response() -> dict:
    return json.loads(SEED.read_text())


# AWS's own VAT is kept out by default: every query filters record type Tax away.
WITHOUT_TAX = {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Tax"]}}}


def expected_query(group_by: list[dict], token: str | None = None, *, excluded: dict | None = WITHOUT_TAX) -> dict:
    query = {
        "TimePeriod": {"Start": "2024-11-01", "End": "2024-12-01"},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": group_by,
    }
    if excluded is not None:
        query["Filter"] = excluded
    if token:
        query["NextPageToken"] = token
    return query


BY_SERVICE = [{"Type": "DIMENSION", "Key": "SERVICE"}]


def group(keys: list[str], amount: str) -> dict:
    return {"Keys": keys, "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}


def result(groups: list[dict], *, estimated: bool = False, start="2024-11-01", end="2024-12-01") -> dict:
    return {"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": groups, "Estimated": estimated}


@pytest.fixture
def client():
    return boto3.client("ce", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleep():
    return RecordingSleep()


def source_for(client, sleep, **kwargs) -> CostExplorerCostSource:
    return CostExplorerCostSource(client, sleep=sleep, jitter=lambda: 1.0, **kwargs)


def test_seed_month_is_read_with_one_request_as_decimal_amounts_per_service(client, sleep):
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", seed_response(), expected_query(BY_SERVICE))
        report = source.costs(NOVEMBER.start, NOVEMBER.end)
        stub.assert_no_pending_responses()

    amounts = {line.service: line.amount for line in report.lines}
    assert amounts == {
        "AWS Lambda": Decimal("5.2312345678"),
        "Amazon Simple Storage Service": Decimal("2.1487654321"),
        "Amazon CloudFront": Decimal("8.4700000001"),
        "Amazon DynamoDB": Decimal("1.8899999999"),
        "Tax": Decimal("0"),
    }
    assert all(isinstance(a, Decimal) for a in amounts.values())
    assert all(line.scope is None for line in report.lines)
    assert (report.start, report.end, report.currency, report.estimated, report.attribution) == (
        date(2024, 11, 1),
        date(2024, 12, 1),
        "USD",
        False,
        PAYER,
    )
    assert source.requests_made == 1


def test_seed_services_rounded_half_up_to_cents_sum_to_17_74(client, sleep):
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", seed_response(), expected_query(BY_SERVICE))
        report = source.costs(NOVEMBER.start, NOVEMBER.end)

    cents = Decimal("0.01")
    assert sum(line.amount.quantize(cents, ROUND_HALF_UP) for line in report.lines) == Decimal("17.74")


def test_every_page_is_followed_through_next_page_token(client, sleep):
    groups = seed_response()["ResultsByTime"][0]["Groups"]
    first_page = {"ResultsByTime": [result(groups[:2])], "NextPageToken": "page-2", "DimensionValueAttributes": []}
    second_page = {"ResultsByTime": [result(groups[2:])], "DimensionValueAttributes": []}
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", first_page, expected_query(BY_SERVICE))
        stub.add_response("get_cost_and_usage", second_page, expected_query(BY_SERVICE, token="page-2"))
        report = source.costs(NOVEMBER.start, NOVEMBER.end)
        stub.assert_no_pending_responses()

    assert {(line.service, line.amount) for line in report.lines} == {
        (g["Keys"][0], Decimal(g["Metrics"]["UnblendedCost"]["Amount"])) for g in groups
    }
    assert source.requests_made == 2


def test_amounts_of_several_months_in_the_range_are_summed_per_service(client, sleep):
    response = {
        "ResultsByTime": [
            result([group(["AWS Lambda"], "1.10")], start="2024-10-01", end="2024-11-01"),
            result([group(["AWS Lambda"], "2.25")], estimated=True),
        ]
    }
    query = expected_query(BY_SERVICE)
    query["TimePeriod"]["Start"] = "2024-10-01"
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", response, query)
        report = source.costs(date(2024, 10, 1), NOVEMBER.end)

    assert report.lines == (CostLine("AWS Lambda", Decimal("3.35")),)
    assert report.estimated is True


def test_the_estimated_flag_is_kept(client, sleep):
    estimated = seed_response()
    estimated["ResultsByTime"][0]["Estimated"] = True
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", estimated, expected_query(BY_SERVICE))
        assert source.costs(NOVEMBER.start, NOVEMBER.end).estimated is True


def test_linked_accounts_group_by_account_then_service(client, sleep):
    response = {
        "GroupDefinitions": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
        "ResultsByTime": [
            result(
                [
                    group(["111111111111", "AWS Lambda"], "5.2312345678"),
                    group(["111111111111", "Amazon CloudFront"], "8.47"),
                    group(["222222222222", "AWS Lambda"], "0.50"),
                ]
            )
        ],
    }
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response(
            "get_cost_and_usage",
            response,
            expected_query([{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}]),
        )
        report = source.costs(NOVEMBER.start, NOVEMBER.end, CostAttribution.by_account())

    assert report.attribution == CostAttribution.by_account()
    assert report.for_scope("111111111111") == (
        CostLine("AWS Lambda", Decimal("5.2312345678"), "111111111111"),
        CostLine("Amazon CloudFront", Decimal("8.47"), "111111111111"),
    )
    assert report.for_scope("222222222222") == (CostLine("AWS Lambda", Decimal("0.50"), "222222222222"),)
    assert source.requests_made == 1


def test_tag_groups_strip_the_key_prefix_and_keep_untagged_costs_as_empty_scope(client, sleep):
    response = {
        "ResultsByTime": [
            result(
                [
                    group(["customer$acme", "AWS Lambda"], "4.00"),
                    group(["customer$globex", "AWS Lambda"], "1.00"),
                    group(["customer$", "Amazon S3"], "0.75"),
                ]
            )
        ]
    }
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response(
            "get_cost_and_usage",
            response,
            expected_query([{"Type": "TAG", "Key": "customer"}, {"Type": "DIMENSION", "Key": "SERVICE"}]),
        )
        report = source.costs(NOVEMBER.start, NOVEMBER.end, CostAttribution.by_tag("customer"))

    assert report.for_scope("acme") == (CostLine("AWS Lambda", Decimal("4.00"), "acme"),)
    assert report.for_scope("globex") == (CostLine("AWS Lambda", Decimal("1.00"), "globex"),)
    assert report.for_scope("") == (CostLine("Amazon S3", Decimal("0.75"), ""),)


def test_the_query_is_the_same_for_the_same_inputs(client, sleep):
    source = source_for(client, sleep)
    assert source.query(NOVEMBER.start, NOVEMBER.end, CostAttribution.by_tag("customer")) == source.query(
        NOVEMBER.start, NOVEMBER.end, CostAttribution.by_tag("customer")
    )
    assert json.dumps(source.query(NOVEMBER.start, NOVEMBER.end)) == json.dumps(expected_query(BY_SERVICE))


def test_throttling_is_retried_with_growing_backoff(client, sleep):
    source = source_for(client, sleep, base_delay_seconds=1.0, max_delay_seconds=20.0)
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_and_usage", "LimitExceededException", http_status_code=400)
        stub.add_client_error("get_cost_and_usage", "ThrottlingException", http_status_code=400)
        stub.add_response("get_cost_and_usage", seed_response(), expected_query(BY_SERVICE))
        report = source.costs(NOVEMBER.start, NOVEMBER.end)

    assert len(report.lines) == 5
    assert sleep.delays == [1.0, 2.0]  # jitter fixed at its maximum
    assert source.requests_made == 3


def test_backoff_uses_full_jitter_below_a_cap(client):
    delays = []
    source = CostExplorerCostSource(
        client, sleep=delays.append, jitter=lambda: 0.5, max_attempts=7, base_delay_seconds=1.0, max_delay_seconds=10.0
    )
    with Stubber(client) as stub:
        for _ in range(6):
            stub.add_client_error("get_cost_and_usage", "LimitExceededException", http_status_code=400)
        stub.add_response("get_cost_and_usage", seed_response(), expected_query(BY_SERVICE))
        source.costs(NOVEMBER.start, NOVEMBER.end)

    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_throttling_that_never_stops_gives_up_after_the_bounded_attempts(client, sleep):
    source = source_for(client, sleep, max_attempts=3)
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_client_error("get_cost_and_usage", "LimitExceededException", http_status_code=400)
        with pytest.raises(CostSourceThrottled):
            source.costs(NOVEMBER.start, NOVEMBER.end)

    assert len(sleep.delays) == 2
    assert source.requests_made == 3


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("DataUnavailableException", 400, CostSourceError),  # a refusal: retrying later changes nothing
        ("InternalServerException", 500, CostSourceUnavailable),  # Cost Explorer's side: the caller tries later
    ],
)
def test_other_errors_are_not_retried_here(client, sleep, code, status, error):
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_and_usage", code, http_status_code=status)
        with pytest.raises(error, match=code) as raised:
            source.costs(NOVEMBER.start, NOVEMBER.end)

    assert sleep.delays == []
    assert isinstance(raised.value, CostSourceUnavailable) is (status >= 500)


@pytest.mark.parametrize(
    "failure",
    [
        EndpointConnectionError(endpoint_url="https://ce.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://ce.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://ce.us-east-1.amazonaws.com"),
    ],
)
def test_an_endpoint_that_cannot_be_reached_or_does_not_answer_is_unavailable(sleep, failure):
    class Unreachable:
        def get_cost_and_usage(self, **_: object) -> dict:
            raise failure

    with pytest.raises(CostSourceUnavailable, match=type(failure).__name__):
        source_for(Unreachable(), sleep).costs(NOVEMBER.start, NOVEMBER.end)


def test_a_non_numeric_amount_is_an_error_not_a_guess(client, sleep):
    broken = copy.deepcopy(seed_response())
    broken["ResultsByTime"][0]["Groups"][0]["Metrics"]["UnblendedCost"]["Amount"] = "n/a"
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", broken, expected_query(BY_SERVICE))
        with pytest.raises(CostSourceError):
            source.costs(NOVEMBER.start, NOVEMBER.end)


def test_the_configured_metric_is_queried_and_read(client, sleep):
    amortized_group = {"Keys": ["AWS Lambda"], "Metrics": {"AmortizedCost": {"Amount": "1.5", "Unit": "USD"}}}
    response = {"ResultsByTime": [result([amortized_group])]}
    query = expected_query(BY_SERVICE)
    query["Metrics"] = ["AmortizedCost"]
    source = source_for(client, sleep, metric="AmortizedCost")
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", response, query)
        assert source.costs(NOVEMBER.start, NOVEMBER.end).lines == (CostLine("AWS Lambda", Decimal("1.5")),)


def test_forecast_is_a_decimal_when_available(client, sleep):
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response(
            "get_cost_forecast",
            {"Total": {"Amount": "21.3456", "Unit": "USD"}, "ForecastResultsByTime": []},
            {
                "TimePeriod": {"Start": "2024-11-15", "End": "2024-12-01"},
                "Metric": "UNBLENDED_COST",
                "Granularity": "MONTHLY",
                "Filter": WITHOUT_TAX,
            },
        )
        assert source.forecast(date(2024, 11, 15), NOVEMBER.end) == Decimal("21.3456")


def test_no_forecast_when_the_api_is_unavailable(client, sleep):
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_forecast", "NotImplemented", http_status_code=501)
        assert source.forecast(date(2024, 11, 15), NOVEMBER.end) is None


def test_the_excluded_charge_types_are_filtered_away_by_record_type_and_none_means_every_record(client, sleep):
    response = {"ResultsByTime": [result([group(["AWS Lambda"], "1.5")])]}
    kept_out = source_for(client, sleep, excluded=(charge_type("Tax"), charge_type("Support")))
    everything = source_for(client, sleep, excluded=())
    with Stubber(client) as stub:
        stub.add_response(
            "get_cost_and_usage",
            response,
            expected_query(
                BY_SERVICE, excluded={"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Tax", "Support"]}}}
            ),
        )
        stub.add_response("get_cost_and_usage", response, expected_query(BY_SERVICE, excluded=None))

        kept_out.costs(NOVEMBER.start, NOVEMBER.end)
        everything.costs(NOVEMBER.start, NOVEMBER.end)
        stub.assert_no_pending_responses()


def test_the_payers_bill_by_charge_type_is_one_query_by_record_type_with_nothing_left_out(client, sleep):
    response = {
        "ResultsByTime": [
            result([group(["Usage"], "17.74"), group(["Tax"], "3.37"), group(["Credit"], "-1.00")]),
            result([group(["Usage"], "0.26"), group(["SomethingNew"], "0.10")], start="2024-10-01", end="2024-11-01"),
        ]
    }
    query = {
        "TimePeriod": {"Start": "2024-11-01", "End": "2024-12-01"},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "RECORD_TYPE"}],
    }
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", response, query)
        totals = source.costs_by_charge_type(NOVEMBER.start, NOVEMBER.end)

    assert totals == {
        ChargeType(ChargeCategory.CREDIT, "Credit"): Decimal("-1.00"),
        ChargeType(ChargeCategory.OTHER, "SomethingNew"): Decimal("0.10"),
        ChargeType(ChargeCategory.TAX, "Tax"): Decimal("3.37"),
        ChargeType(ChargeCategory.USAGE, "Usage"): Decimal("18.00"),
    }
    assert [kind.name for kind in totals] == ["Credit", "SomethingNew", "Tax", "Usage"]
    assert source.requests_made == 1


def test_record_types_map_onto_the_domains_charge_categories():
    assert charge_type("Tax") == ChargeType(ChargeCategory.TAX, "Tax")
    assert {charge_type(kind).category for kind in ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")} == {
        ChargeCategory.USAGE
    }
    assert {charge_type(kind).category for kind in ("Fee", "RIFee", "SavingsPlanUpfrontFee")} == {ChargeCategory.FEE}
    assert charge_type("RIFee") != charge_type("Fee")  # excluding one kind of fee leaves the others in
    assert charge_type("tax").category is ChargeCategory.OTHER  # record types are matched exactly


def test_an_attribution_is_grouped_by_service_after_its_scope():
    service = {"Type": "DIMENSION", "Key": "SERVICE"}
    assert group_by_definitions(PAYER) == [service]
    assert group_by_definitions(CostAttribution.by_account()) == [
        {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
        service,
    ]
    assert group_by_definitions(CostAttribution.by_tag("customer")) == [{"Type": "TAG", "Key": "customer"}, service]


def test_the_use_cases_read_the_request_count_of_cost_explorer_only(client, sleep):
    source = source_for(client, sleep)
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", seed_response(), expected_query(BY_SERVICE))
        count = cost_requests_of(source)
        assert count is not None and count() == 0
        source.costs(NOVEMBER.start, NOVEMBER.end)

    assert count() == 1
    assert cost_requests_of(FakeCostSource()) is None
