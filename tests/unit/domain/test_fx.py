"""The ECB rate of a period, from the real ECB feed files in ../shared/fx (with their holiday gaps)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from billing_core.adapters.ecb_feed import parse_ecb_feed
from billing_core.domain.costs import Period
from billing_core.domain.fx import (
    FxRule,
    RateNotPublished,
    easter_sunday,
    is_target_working_day,
    last_target_working_day,
    period_rate,
)
from billing_core.errors import ExchangeRateUnavailable

FX = Path(__file__).resolve().parents[4] / "shared" / "fx"
# Real ECB USD rates of 2026, the local stack's feed (kept in the project).
LOCAL_STACK_FEED = Path(__file__).resolve().parents[3] / "devtools" / "local_stack" / "ecb_usd_2026.xml"
needs_feed = pytest.mark.skipif(not (FX / "eurofxref-hist-90d.xml").exists(), reason="needs ../shared/fx")


@pytest.fixture(scope="module")
def ninety_days() -> dict[date, Decimal]:
    return parse_ecb_feed((FX / "eurofxref-hist-90d.xml").read_bytes())


@needs_feed
def test_the_90_day_feed_reads_61_target_days_without_the_holidays(ninety_days):
    assert len(ninety_days) == 61
    assert (min(ninety_days), max(ninety_days)) == (date(2024, 11, 28), date(2025, 2, 25))
    assert {date(2024, 12, 25), date(2024, 12, 26), date(2025, 1, 1)}.isdisjoint(ninety_days)
    assert ninety_days[date(2025, 2, 25)] == Decimal("1.0497")


@needs_feed
def test_the_daily_feed_with_single_quotes_reads_its_one_day():
    assert parse_ecb_feed((FX / "eurofxref-daily.xml").read_bytes()) == {date(2025, 5, 9): Decimal("1.1252")}


@needs_feed
def test_a_month_ending_on_a_working_day_takes_that_days_rate(ninety_days):
    rate = period_rate(ninety_days, Period(2024, 12), FxRule.LAST_WORKING_DAY)

    assert (rate.rate_date, rate.per_euro) == (date(2024, 12, 31), ninety_days[date(2024, 12, 31)])


@needs_feed
def test_a_month_ending_on_a_weekend_takes_the_last_published_day(ninety_days):
    # 2025-01-31 is a Friday; November 2024 ends on a Saturday (30th): its rate is Friday the 29th's.
    rate = period_rate(ninety_days, Period(2024, 11), FxRule.LAST_WORKING_DAY)

    assert rate.rate_date == date(2024, 11, 29)


@needs_feed
def test_the_month_average_is_the_mean_of_the_published_days_only(ninety_days):
    january = [rate for day, rate in ninety_days.items() if day.year == 2025 and day.month == 1]

    rate = period_rate(ninety_days, Period(2025, 1), FxRule.MONTH_AVERAGE)

    assert len(january) == 22  # 1 January is a TARGET holiday
    assert rate.per_euro == (sum(january) / len(january)).quantize(Decimal("0.000001"))
    assert rate.rate_date == date(2025, 1, 31)


@needs_feed
def test_a_period_whose_end_is_not_published_yet_is_refused(ninety_days):
    # The feed ends on 2025-02-25: February's last working day (the 28th) is still to come.
    with pytest.raises(RateNotPublished, match="2025-02"):
        period_rate(ninety_days, Period(2025, 2), FxRule.LAST_WORKING_DAY)


@needs_feed
def test_the_target_calendar_names_exactly_the_days_the_ecb_published(ninety_days):
    first, last = min(ninety_days), max(ninety_days)
    every_day = [first + timedelta(days=n) for n in range((last - first).days + 1)]

    assert {day for day in every_day if is_target_working_day(day)} == set(ninety_days)


@needs_feed
def test_a_month_is_complete_once_its_last_working_day_is_out_even_before_the_weekend_after_it(ninety_days):
    # November 2024 ends on Saturday the 30th: a feed read on Friday the 29th already has its last rate.
    up_to_friday = {day: rate for day, rate in ninety_days.items() if day <= date(2024, 11, 29)}

    rate = period_rate(up_to_friday, Period(2024, 11), FxRule.LAST_WORKING_DAY)

    assert rate.rate_date == date(2024, 11, 29) == last_target_working_day(Period(2024, 11))


@needs_feed
def test_a_month_is_not_complete_while_its_last_working_day_is_still_to_come(ninety_days):
    up_to_monday = {day: rate for day, rate in ninety_days.items() if day <= date(2024, 12, 30)}

    with pytest.raises(RateNotPublished, match="2024-12"):
        period_rate(up_to_monday, Period(2024, 12), FxRule.LAST_WORKING_DAY)


def test_the_target_calendar_matches_the_ecbs_2026_days_with_good_friday_easter_monday_and_may_day():
    published = parse_ecb_feed(LOCAL_STACK_FEED.read_bytes())
    every_day = [date(2026, 1, 1) + timedelta(days=n) for n in range((max(published) - date(2026, 1, 1)).days + 1)]

    assert {day for day in every_day if is_target_working_day(day)} == set(published)
    assert {date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 1)}.isdisjoint(published)
    # October 2026 ends on a Saturday: Friday the 30th's rate is October's, and the feed has it.
    assert period_rate(published, Period(2026, 10), FxRule.LAST_WORKING_DAY).rate_date == date(2026, 10, 30)


@pytest.mark.parametrize("year", range(1990, 2100))
def test_easter_sunday_is_a_sunday_between_22_march_and_25_april(year):
    easter = easter_sunday(year)

    assert easter.weekday() == 6 and date(year, 3, 22) <= easter <= date(year, 4, 25)
    assert not is_target_working_day(easter - timedelta(days=2))  # Good Friday
    assert not is_target_working_day(easter + timedelta(days=1))  # Easter Monday


@needs_feed
def test_a_period_before_the_feed_is_refused(ninety_days):
    with pytest.raises(RateNotPublished, match="no USD rate"):
        period_rate(ninety_days, Period(2024, 10), FxRule.LAST_WORKING_DAY)


def test_an_empty_feed_is_refused():
    with pytest.raises(RateNotPublished):
        period_rate({}, Period(2024, 10), FxRule.LAST_WORKING_DAY)


@pytest.mark.parametrize("document", [b"", b"<html>down</html>", b"not xml <"])
def test_a_document_that_is_not_the_feed_is_refused(document):
    with pytest.raises(ExchangeRateUnavailable):
        parse_ecb_feed(document)


def test_a_missing_currency_leaves_its_days_out():
    document = (
        b'<Envelope xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref"><Cube>'
        b'<Cube time="2025-01-03"><Cube currency="JPY" rate="160.1"/></Cube>'
        b'<Cube time="2025-01-02"><Cube currency="USD" rate="1.0321"/></Cube></Cube></Envelope>'
    )

    assert parse_ecb_feed(document) == {date(2025, 1, 2): Decimal("1.0321")}
