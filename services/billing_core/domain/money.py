"""Money rules: Decimal amounts, rounding half-up to cents once, Stripe minor units, fair allocation.

The system bills only in currencies with two decimal places (EUR, USD, ...). Zero-decimal currencies
such as JPY and three-decimal ones such as KWD are refused with ``UnsupportedCurrency`` rather than
scaled wrongly by a factor of 100 or 10.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_UP, Context, Decimal

from billing_core.domain.errors import InvalidAmount, UnsupportedCurrency

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# ISO 4217 codes with two decimal places that Stripe also charges in plain minor units. HUF and CZK
# are two-decimal in ISO but Stripe treats them specially, so they are left out on purpose.
_MINOR_UNIT_EXPONENT: Mapping[str, int] = {code: 2 for code in ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN")}

# Plain decimal notation with an optional exponent ("5.23", "-0.5", "1.6E-7"); no "NaN", "Infinity",
# underscores or inner whitespace, all of which Decimal() would otherwise accept.
_AMOUNT_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

# No invoice or cost line comes near 10**15; anything that large is a unit or parsing error upstream.
_MAX_ADJUSTED_EXPONENT = 14


def normalize_currency(currency: str) -> str:
    """Upper-case ISO 4217 code of a supported currency; ``UnsupportedCurrency`` otherwise."""
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if code not in _MINOR_UNIT_EXPONENT:
        raise UnsupportedCurrency(
            f"currency {currency!r} is not supported; supported: {', '.join(sorted(_MINOR_UNIT_EXPONENT))}"
        )
    return code


def minor_unit_exponent(currency: str) -> int:
    """Number of decimal places of ``currency`` (2 for every supported currency)."""
    return _MINOR_UNIT_EXPONENT[normalize_currency(currency)]


def parse_amount(value: str | int | Decimal) -> Decimal:
    """An amount as ``Decimal`` from a string, int or Decimal; floats, NaN and infinities are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidAmount(f"amounts must not be {type(value).__name__}s, got {value!r}; pass a string or Decimal")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _AMOUNT_TEXT.fullmatch(text):
            raise InvalidAmount(f"not a decimal amount: {value!r}")
        amount = Decimal(text)
    else:
        raise InvalidAmount(f"amounts must be str, int or Decimal, got {type(value).__name__}")
    return _checked(amount)


def to_cents(amount: Decimal) -> Decimal:
    """``amount`` rounded half-up to two decimal places; call it once per invoice line."""
    cents = _checked(amount).quantize(CENT, rounding=ROUND_HALF_UP)
    return cents.copy_abs() if cents.is_zero() else cents  # never show "-0.00"


def is_whole_cents(amount: Decimal) -> bool:
    """Whether ``amount`` has no digits below the cent (so rounding it would change nothing)."""
    amount = _checked(amount)
    return amount == amount.quantize(CENT, rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Stripe's integer minor units for an amount that is already rounded to the currency's precision.

    A sub-cent amount is refused instead of rounded: rounding happens once, at the invoice line.
    """
    exponent = minor_unit_exponent(currency)
    amount = _checked(amount)
    if not is_whole_cents(amount):
        raise InvalidAmount(f"{amount} has digits below the cent; round the line with to_cents first")
    return int(amount.scaleb(exponent))


def from_minor_units(units: int, currency: str) -> Decimal:
    """The ``Decimal`` amount of Stripe's integer minor units (``3774`` EUR -> ``Decimal('37.74')``)."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise InvalidAmount(f"minor units must be an int, got {units!r}")
    return Decimal(units).scaleb(-minor_unit_exponent(currency))


def amount_text(amount: Decimal, currency: str, language: str) -> str:
    """An amount for a text: ``1.234,56 EUR`` in German, ``EUR 1,234.56`` in English."""
    digits = f"{to_cents(amount):,.2f}"
    if language == "en":
        return f"{currency.upper()} {digits}"
    return f"{digits.replace(',', ' ').replace('.', ',').replace(' ', '.')} {currency.upper()}"


def allocate(total_cents: int, weights: Mapping[str, Decimal | int]) -> dict[str, int]:
    """Split ``total_cents`` over ``weights`` by largest remainder so the parts sum exactly to it.

    Every part gets its exact share rounded down; the cents left over go one each to the largest
    remainders, ties broken by name (ascending), so the result does not depend on the input order.
    Weights must be non-negative and, unless the total is 0, not all zero.
    """
    if isinstance(total_cents, bool) or not isinstance(total_cents, int) or total_cents < 0:
        raise InvalidAmount(f"total to allocate must be a non-negative int of cents, got {total_cents!r}")
    names = list(weights)
    scaled = _common_integers(weights.values())
    weight_sum = sum(scaled)
    if weight_sum == 0:
        if total_cents == 0:
            return {name: 0 for name in names}
        raise InvalidAmount(f"cannot allocate {total_cents} cents over weights that are all zero")
    shares: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    for name, weight in zip(names, scaled, strict=True):
        share, remainder = divmod(total_cents * weight, weight_sum)
        shares[name] = share
        remainders.append((-remainder, name))
    leftover = total_cents - sum(shares.values())
    if leftover:
        for _, name in sorted(remainders)[:leftover]:
            shares[name] += 1
    return shares


def _checked(amount: Decimal | int) -> Decimal:
    """``amount`` as a finite, plausibly sized Decimal (ints are exact and accepted)."""
    if isinstance(amount, int) and not isinstance(amount, bool):
        amount = Decimal(amount)
    elif not isinstance(amount, Decimal):
        raise InvalidAmount(f"expected a Decimal amount, got {type(amount).__name__} {amount!r}")
    if not amount.is_finite():
        raise InvalidAmount(f"amount must be finite, got {amount}")
    if not amount.is_zero() and amount.adjusted() > _MAX_ADJUSTED_EXPONENT:
        raise InvalidAmount(f"amount {amount} is implausibly large")
    return amount


_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def _common_integers(weights: Iterable[Decimal | int]) -> list[int]:
    """The weights as exact integers on one common scale (so their ratios are unchanged)."""
    parts: list[tuple[int, int]] = []
    for weight in weights:
        weight = _checked(weight)
        if weight < 0:
            raise InvalidAmount(f"allocation weights must not be negative, got {weight}")
        exponent = weight.as_tuple().exponent
        assert isinstance(exponent, int)  # _checked refused NaN and infinity, the only non-int exponents
        # The coefficient as an int: shifting by the exponent in a context that never rounds is exact.
        parts.append((int(weight.scaleb(-exponent, _EXACT)), exponent))
    if not parts:
        return []
    lowest = min(exponent for _, exponent in parts)
    return [coefficient * 10 ** (exponent - lowest) for coefficient, exponent in parts]
