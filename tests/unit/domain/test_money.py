"""Money rules: parsing, rounding half-up once, Stripe minor units, largest-remainder allocation."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.domain.errors import InvalidAmount, UnsupportedCurrency
from billing_core.domain.money import (
    allocate,
    from_minor_units,
    minor_unit_exponent,
    normalize_currency,
    parse_amount,
    to_cents,
    to_minor_units,
)


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        ("0.005", "0.01"),
        ("0.015", "0.02"),
        ("0.025", "0.03"),  # banker's rounding would give 0.02
        ("2.1487654321", "2.15"),
        ("8.4700000001", "8.47"),
        ("0.0049999999", "0.00"),
        ("-0.005", "-0.01"),
    ],
)
def test_to_cents_rounds_half_up(amount, cents):
    assert to_cents(Decimal(amount)) == Decimal(cents)
    assert str(to_cents(Decimal(amount))) == cents


def test_to_cents_never_returns_negative_zero():
    assert str(to_cents(Decimal("-0.001"))) == "0.00"


def test_to_cents_refuses_floats():
    with pytest.raises(InvalidAmount):
        to_cents(0.1)


@pytest.mark.parametrize(
    ("text", "amount"),
    [("5.2312345678", "5.2312345678"), (" 17.74 ", "17.74"), ("-3.5", "-3.5"), ("1.6E-7", "0.00000016"), ("0", "0")],
)
def test_parse_amount_reads_decimal_strings_exactly(text, amount):
    assert parse_amount(text) == Decimal(amount)


def test_parse_amount_accepts_ints_and_decimals():
    assert parse_amount(20) == Decimal("20")
    assert parse_amount(Decimal("20.00")) == Decimal("20.00")


@pytest.mark.parametrize(
    "value",
    [
        0.1,
        1.0,
        True,
        None,
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-inf",
        "",
        "  ",
        "1,50",
        "1_000",
        "1 000",
        "12abc",
        "0x10",
        Decimal("NaN"),
        Decimal("Infinity"),
        "1e30",
        [1],
    ],
)
def test_parse_amount_refuses_floats_nan_infinity_and_garbage(value):
    with pytest.raises(InvalidAmount):
        parse_amount(value)


def test_stripe_minor_units_for_eur_and_usd():
    assert to_minor_units(Decimal("37.74"), "EUR") == 3774
    assert to_minor_units(Decimal("20"), "usd") == 2000
    assert to_minor_units(Decimal("-1.50"), "EUR") == -150
    assert from_minor_units(3774, "eur") == Decimal("37.74")
    assert str(from_minor_units(0, "EUR")) == "0.00"


def test_sub_cent_amount_is_refused_at_the_stripe_boundary_not_rounded_again():
    with pytest.raises(InvalidAmount):
        to_minor_units(Decimal("1.005"), "EUR")


@pytest.mark.parametrize("currency", ["JPY", "KWD", "XYZ", "", "euro"])
def test_only_two_decimal_currencies_are_supported(currency):
    with pytest.raises(UnsupportedCurrency):
        minor_unit_exponent(currency)
    with pytest.raises(UnsupportedCurrency):
        to_minor_units(Decimal("1"), currency)


def test_currency_codes_are_normalised_to_upper_case():
    assert normalize_currency(" eur ") == "EUR"
    assert minor_unit_exponent("usd") == 2


def test_from_minor_units_refuses_non_integers():
    with pytest.raises(InvalidAmount):
        from_minor_units(12.5, "EUR")


def test_allocate_gives_leftover_cents_to_largest_remainders():
    # exact shares of 7: c 4.2, b 2.1, a 0.7 -> floors 4, 2, 0; the one cent left goes to a (remainder 0.7)
    assert allocate(7, {"c": Decimal(6), "b": Decimal(3), "a": Decimal(1)}) == {"c": 4, "b": 2, "a": 1}


def test_allocate_breaks_ties_by_name():
    assert allocate(1, {"zeta": Decimal(1), "alpha": Decimal(1)}) == {"zeta": 0, "alpha": 1}
    assert allocate(2, {"c": 1, "b": 1, "a": 1}) == {"c": 0, "b": 1, "a": 1}


def test_allocate_zero_total_over_anything_is_all_zero():
    assert allocate(0, {"a": Decimal(0), "b": Decimal("2.5")}) == {"a": 0, "b": 0}
    assert allocate(0, {}) == {}


@pytest.mark.parametrize(
    ("total", "weights"),
    [
        (5, {}),
        (5, {"a": Decimal(0)}),
        (5, {"a": Decimal(-1), "b": Decimal(2)}),
        (-1, {"a": Decimal(1)}),
        (1.0, {"a": Decimal(1)}),
        (5, {"a": 1.5}),
    ],
)
def test_allocate_refuses_impossible_input(total, weights):
    with pytest.raises(InvalidAmount):
        allocate(total, weights)


amounts = st.decimals(
    min_value=Decimal("-1000"), max_value=Decimal("1000"), places=10, allow_nan=False, allow_infinity=False
)
weights = st.dictionaries(
    st.text(alphabet="abcdefgh", min_size=1, max_size=3),
    st.decimals(min_value=Decimal(0), max_value=Decimal("100000"), places=10, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=12,
).filter(lambda w: any(v > 0 for v in w.values()))


@given(amounts)
def test_rounding_is_half_up_at_cents(amount):
    exact = Fraction(amount)
    magnitude = abs(exact) * 100
    rounded = int(magnitude) + (1 if magnitude - int(magnitude) >= Fraction(1, 2) else 0)
    expected = Fraction(rounded if exact >= 0 else -rounded, 100)
    assert Fraction(to_cents(amount)) == expected


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_minor_units_round_trip(units):
    assert to_minor_units(from_minor_units(units, "EUR"), "EUR") == units


@given(st.integers(min_value=0, max_value=10**9), weights)
def test_allocation_sums_exactly_and_each_part_is_within_a_cent_of_its_share(total, weights):
    parts = allocate(total, weights)
    assert sum(parts.values()) == total
    assert set(parts) == set(weights)
    weight_sum = sum(Fraction(w) for w in weights.values())
    for name, part in parts.items():
        share = total * Fraction(weights[name]) / weight_sum
        assert part >= 0
        assert abs(part - share) < 1


@given(st.integers(min_value=0, max_value=10**6), weights, st.randoms(use_true_random=False))
def test_allocation_is_deterministic_whatever_the_input_order(total, weights, random):
    items = list(weights.items())
    random.shuffle(items)
    assert allocate(total, dict(items)) == allocate(total, weights)
