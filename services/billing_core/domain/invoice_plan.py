"""Invoice planning: from one period's cost report to each account's invoice amounts and lines.

Pure and fast: no I/O. The billing run fetches the costs once, calls ``BillingPolicy.check_can_convert``
before it starts, then ``plan_invoices`` for every account.

Money rules, in this order:
1. The raw costs of one account (Cost Explorer's USD, unrounded) are summed; credits and refunds
   arrive as negative service amounts and reduce the sum.
2. The sum is converted with the FX rate and the markup, still unrounded (an ECB rate, quoted as
   1 EUR = x USD, divides; a rate quoted per USD multiplies), clamped at 0 (an invoice line is never
   negative; unused credit is not carried over) and rounded half-up to cents, once: the AWS line.
3. Each service's raw cost is converted the same way, only to weigh the breakdown.
4. The AWS line is allocated over the services with a positive converted amount, in proportion to
   those amounts (largest remainder), so the breakdown sums exactly to the AWS line. Credits are thus
   netted in proportionally and never appear as breakdown entries; services whose share is 0.00
   (zero-cost ones such as "Tax" 0, or ones smaller than a cent) are left out.
5. Total = base fee line + AWS line, exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext

from billing_core.domain.corrections import NO_TRUE_UP, TrueUp
from billing_core.domain.costs import CostLine, CostReport, Period
from billing_core.domain.errors import ConfigurationError, CostReportMismatch, InvalidAmount
from billing_core.domain.fx import ECB_SOURCE, MANUAL_SOURCE, Conversion, FxQuote, FxRate
from billing_core.domain.money import (
    ZERO,
    allocate,
    minor_unit_exponent,
    normalize_currency,
    parse_amount,
    to_cents,
    to_minor_units,
)
from billing_core.domain.records import Account, valid_base_fee
from billing_core.domain.shared_costs import SHARED_COSTS, SHARED_COSTS_TEXT

DEFAULT_BASE_FEE = Decimal("20.00")
DEFAULT_CURRENCY = "EUR"
LANGUAGES = ("de", "en")

_MONTH_ABBREVIATIONS = {
    "de": ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}
_BASE_FEE_DESCRIPTION = {"de": "Monatliche Grundgebühr", "en": "Monthly base fee"}
_AWS_DESCRIPTION = {"de": "AWS Infrastruktur ({month} {year})", "en": "AWS infrastructure ({month} {year})"}

# Conversion and summing must not round before the one rounding at the line: 60 significant digits
# hold any product of a cost (< 10**15, Cost Explorer gives ~10 decimals), a rate and a markup exactly.
_UNROUNDED = Context(prec=60)
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class BillingPolicy:
    """How every account is billed unless the account overrides it."""

    base_fee: Decimal = DEFAULT_BASE_FEE
    currency: str = DEFAULT_CURRENCY
    fx: FxRate | None = None
    markup_percent: Decimal = Decimal(0)
    language: str = "de"

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_fee", valid_base_fee(self.base_fee, "base fee"))
        object.__setattr__(self, "currency", _currency(self.currency))
        markup = _parse_config_amount(self.markup_percent, "markup percent")
        if markup < 0:
            raise ConfigurationError(f"markup percent must not be negative, got {markup}")
        object.__setattr__(self, "markup_percent", markup)
        language = self.language.strip().lower() if isinstance(self.language, str) else self.language
        if language not in LANGUAGES:
            raise ConfigurationError(f"language must be one of {LANGUAGES}, got {self.language!r}")
        object.__setattr__(self, "language", language)
        if self.fx is not None and not isinstance(self.fx, FxRate):
            raise ConfigurationError(f"fx must be an FxRate or None, got {type(self.fx).__name__}")

    def check_can_convert(self, cost_currency: str) -> None:
        """Refuse (``ConfigurationError``) costs in a currency this policy has no FX rate for.

        The billing run calls this before it starts, so a missing rate stops the run instead of
        billing USD amounts as EUR.
        """
        if _currency(cost_currency) != self.currency and self.fx is None:
            raise ConfigurationError(
                f"costs are in {_currency(cost_currency)} but invoices are in {self.currency} and no FX rate "
                "is configured; set the FX rate, its source and its date"
            )

    def applied_fx(self, cost_currency: str) -> FxRate | None:
        """The FX rate that converts ``cost_currency`` into the invoice currency (None: same currency)."""
        self.check_can_convert(cost_currency)
        return None if _currency(cost_currency) == self.currency else self.fx


@dataclass(frozen=True)
class InvoiceLine:
    """One line of the Stripe invoice."""

    description: str
    amount: Decimal


@dataclass(frozen=True)
class InvoicePlan:
    """The amounts and texts of one account's invoice for one period, ready to send to Stripe."""

    account_id: str
    invoice_id: str
    period: Period
    currency: str
    base_fee: Decimal
    aws_costs: Decimal
    breakdown: dict[str, Decimal]  # service -> amount; sums exactly to aws_costs; largest first
    total: Decimal
    markup_percent: Decimal
    costs_estimated: bool
    base_fee_description: str
    aws_description: str
    cost_scope: str | None = None
    conversion: Conversion | None = None  # None: the costs were in the invoice currency
    # What Cost Explorer said per service, unrounded, in its currency (USD): kept for reconciliation.
    aws_raw: dict[str, Decimal] = field(default_factory=dict)
    cost_currency: str | None = None
    # True-up of earlier months, a credit carried in from the previous invoice, and what is carried on
    # when the total would be below zero.
    true_up: TrueUp = NO_TRUE_UP

    @property
    def fx(self) -> FxRate | None:
        """The rate the AWS costs were converted at (``None``: no conversion)."""
        return self.conversion.rate if self.conversion else None

    @property
    def lines(self) -> tuple[InvoiceLine, ...]:
        """Base fee, AWS (even at 0.00), each correction line, the credit carried in, the amount carried on."""
        true_up = self.true_up
        lines = [
            InvoiceLine(self.base_fee_description, self.base_fee),
            InvoiceLine(self.aws_description, self.aws_costs),
        ]
        lines += [InvoiceLine(correction.description, correction.amount) for correction in true_up.line_corrections]
        if true_up.credit_in:
            lines.append(InvoiceLine(true_up.credit_description or "", -true_up.credit_in))
        if true_up.carried_out:
            lines.append(InvoiceLine(true_up.carried_description or "", true_up.carried_out))
        return tuple(lines)


def invoice_id_for(period: Period, account_id: str, revision: int = 1) -> str:
    """The deterministic invoice id of an account and period, ``inv_<YYYY-MM>_<userId>``.

    A month billed again after its invoice was cancelled (``billing invoices reissue``) is revision 2,
    3, ...: ``inv_<YYYY-MM>r<revision>_<userId>``.
    """
    if revision < 1:
        raise ValueError(f"an invoice revision is 1 or more, got {revision}")
    suffix = f"r{revision}" if revision > 1 else ""
    return f"inv_{period.label}{suffix}_{account_id}"


def invoice_revision_of(invoice_id: str) -> tuple[str, int]:
    """The period label and revision of an invoice id (``inv_2026-10r2_u1`` -> ``("2026-10", 2)``)."""
    match = _INVOICE_ID.fullmatch(invoice_id)
    if match is None:
        raise ValueError(f"{invoice_id!r} is not an invoice id (inv_YYYY-MM_<account>)")
    return match["period"], int(match["revision"] or 1)


_INVOICE_ID = re.compile(r"inv_(?P<period>\d{4}-\d{2})(?:r(?P<revision>[2-9]|[1-9]\d+))?_.+", re.DOTALL)


def line_descriptions(period: Period, language: str) -> tuple[str, str]:
    """The base fee and AWS line texts in ``language`` ("de" or "en")."""
    if language not in LANGUAGES:
        raise ConfigurationError(f"language must be one of {LANGUAGES}, got {language!r}")
    month = _MONTH_ABBREVIATIONS[language][period.month - 1]
    return _BASE_FEE_DESCRIPTION[language], _AWS_DESCRIPTION[language].format(month=month, year=period.year)


_RATE_TEXT = {
    "de": "1 {base} = {rate} {quoted}, {source} vom {day}",
    "en": "1 {base} = {rate} {quoted}, {source} of {day}",
}
_SOURCE_TEXT = {
    "de": {ECB_SOURCE: "EZB-Referenzkurs", MANUAL_SOURCE: "Kurs manuell"},
    "en": {ECB_SOURCE: "ECB reference rate", MANUAL_SOURCE: "manual rate"},
}


def rate_text(fx: FxRate, cost_currency: str, invoice_currency: str, language: str) -> str:
    """Which rate converted the costs, for the invoice: "1 EUR = 1,0497 USD, EZB-Referenzkurs vom 25.02.2025"."""
    cost, invoice = _currency(cost_currency), _currency(invoice_currency)
    base, quoted = (invoice, cost) if fx.quote is FxQuote.COST_PER_INVOICE_UNIT else (cost, invoice)
    rate = format(fx.rate, "f")
    day = fx.as_of.isoformat()
    if language == "de":
        rate = rate.replace(".", ",")
        day = fx.as_of.strftime("%d.%m.%Y")
    source = _SOURCE_TEXT.get(language, {}).get(fx.source, fx.source)
    return _RATE_TEXT[language].format(base=base, rate=rate, quoted=quoted, source=source, day=day)


def plan_invoice(period: Period, costs: CostReport, account: Account, policy: BillingPolicy) -> InvoicePlan:
    """Plan one account's invoice for ``period`` from the period's cost report."""
    _check_report(period, costs, [account])
    with localcontext(_UNROUNDED):
        terms = _Terms.of(period, costs, policy)
        return _plan(period, costs, account, terms, costs.for_scope(account.cost_scope))


def plan_invoices(
    period: Period, costs: CostReport, accounts: Iterable[Account], policy: BillingPolicy
) -> list[InvoicePlan]:
    """Plan every account's invoice for ``period`` from the one cost report fetched for it."""
    accounts = list(accounts)
    _check_report(period, costs, accounts)
    seen: set[str] = set()
    for account in accounts:
        if account.account_id in seen:
            raise ConfigurationError(f"account {account.account_id} appears twice; it would be billed twice")
        seen.add(account.account_id)
    # Index the lines by scope once: scanning the report per account is quadratic at 10,000 accounts.
    by_scope: dict[str | None, list[CostLine]] = {}
    for line in costs.lines:
        by_scope.setdefault(line.scope, []).append(line)
    with localcontext(_UNROUNDED):
        terms = _Terms.of(period, costs, policy)
        return [
            _plan(
                period,
                costs,
                account,
                terms,
                costs.lines if account.cost_scope is None else by_scope.get(account.cost_scope, ()),
            )
            for account in accounts
        ]


@dataclass(frozen=True)
class _Terms:
    """What is the same for every account of one run: conversion factor, FX and texts."""

    policy: BillingPolicy
    fx: FxRate | None
    markup: Decimal  # 1 + markup percent / 100
    base_fee_description: str
    aws_description: str
    fx_note: str | None  # which rate converted the costs, as the invoice says it

    @classmethod
    def of(cls, period: Period, costs: CostReport, policy: BillingPolicy) -> _Terms:
        """The terms for billing ``period`` from ``costs`` under ``policy`` (refuses a missing FX rate)."""
        fx = policy.applied_fx(costs.currency)
        markup = 1 + policy.markup_percent / _HUNDRED
        fx_note = rate_text(fx, costs.currency, policy.currency, policy.language) if fx else None
        return cls(policy, fx, markup, *line_descriptions(period, policy.language), fx_note)

    def convert(self, cost: Decimal) -> Decimal:
        """A raw cost in the invoice currency with the markup, unrounded."""
        marked_up = cost * self.markup
        return self.fx.convert(marked_up) if self.fx else marked_up


def _plan(period: Period, costs: CostReport, account: Account, terms: _Terms, lines: Sequence[CostLine]) -> InvoicePlan:
    policy, fx = terms.policy, terms.fx
    raw_by_service: dict[str, Decimal] = {}
    for line in lines:
        amount = line.amount
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise InvalidAmount(f"cost of {line.service!r} must be a finite Decimal, got {amount!r}")
        raw_by_service[line.service] = raw_by_service.get(line.service, ZERO) + amount
    converted = {service: terms.convert(raw) for service, raw in raw_by_service.items()}

    # The raw sum is exact; converting it once keeps a division's one rounding out of the line.
    aws_costs = to_cents(max(terms.convert(sum(raw_by_service.values(), ZERO)), ZERO))
    breakdown = _breakdown(aws_costs, converted, policy.currency)
    if SHARED_COSTS in breakdown:  # a scope's share of the shared costs, in the invoice's words
        breakdown = {
            (SHARED_COSTS_TEXT[policy.language] if service == SHARED_COSTS else service): amount
            for service, amount in breakdown.items()
        }

    base_fee = policy.base_fee if account.base_fee_override is None else account.base_fee_override
    return InvoicePlan(
        account_id=account.account_id,
        invoice_id=invoice_id_for(period, account.account_id),
        period=period,
        currency=policy.currency,
        base_fee=base_fee,
        aws_costs=aws_costs,
        breakdown=breakdown,
        total=base_fee + aws_costs,
        conversion=Conversion(fx, terms.fx_note) if fx else None,
        aws_raw=raw_by_service,
        cost_currency=costs.currency,
        markup_percent=policy.markup_percent,
        costs_estimated=costs.estimated,
        base_fee_description=terms.base_fee_description,
        aws_description=terms.aws_description,
        cost_scope=account.cost_scope,
    )


def _breakdown(aws_costs: Decimal, converted: Mapping[str, Decimal], currency: str) -> dict[str, Decimal]:
    """Allocate the rounded AWS line over the services that cost something, largest first."""
    if aws_costs.is_zero():
        return {}
    positive = {service: amount for service, amount in converted.items() if amount > 0}
    cents = allocate(to_minor_units(aws_costs, currency), positive)
    ordered = sorted(((c, s) for s, c in cents.items() if c > 0), key=lambda item: (-item[0], item[1]))
    exponent = -minor_unit_exponent(currency)  # once per invoice, not per service
    return {service: Decimal(c).scaleb(exponent) for c, service in ordered}


def _check_report(period: Period, costs: CostReport, accounts: Sequence[Account]) -> None:
    if (costs.start, costs.end) != (period.start, period.end):
        raise CostReportMismatch(
            f"cost report covers {costs.start}..{costs.end} but the period billed is {period.label} "
            f"({period.start}..{period.end})"
        )
    if not costs.attribution.splits:
        scoped = [account.account_id for account in accounts if account.cost_scope is not None]
        if scoped:
            # A report by service only has no scopes: these accounts would be billed 0 AWS costs.
            raise CostReportMismatch(
                f"cost report is attributed by service only but {len(scoped)} account(s) have a cost scope "
                f"(first: {scoped[0]}); fetch it attributed by linked account or tag"
            )


def _parse_config_amount(value: Decimal | str | int, what: str) -> Decimal:
    try:
        return parse_amount(value)
    except InvalidAmount as error:
        raise ConfigurationError(f"{what}: {error}") from error


def _currency(code: str) -> str:
    try:
        return normalize_currency(code)
    except ValueError as error:
        raise ConfigurationError(str(error)) from error
