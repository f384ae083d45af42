"""Reconciliation of a billed period against the operator's AWS bill (``billing report``).

Two cost queries: the payer account's total by charge type (nothing excluded), and the billing
query itself (the run's attribution, excluded charge types left out). In the cost currency (USD)
the parts add up exactly:

    payer total = excluded charge types (Tax) + allocated to accounts + shared + unallocated (+ grouping rounding)

where "unallocated" is every scope no account claims (the empty tag value: untagged costs), and the
shared costs (``SHARED_COST_SERVICES``, split over the scopes) are their own term. The last term is
the difference the source's two groupings may show in their last decimals; it is printed, never
hidden.

A source with invoice ids (the FOCUS export) also reconciles each AWS invoice of the billing period,
in its BilledCost, exactly:

    AWS invoice = excluded (Tax) + corrections of earlier months + shared + allocated + unallocated

and shows how far what the billing passed on for the period (its cost column, e.g. amortized) lies
from the invoices' own lines of the period.

In the invoice currency the report lists what each account was billed: base fee, AWS line,
corrections, total, the rate used, and the margin (base fees + markup).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from billing_core.domain.costs import ChargeType, CostAttribution, InvoicedCost, Period
from billing_core.domain.fx import FxRate
from billing_core.domain.money import ZERO, to_cents
from billing_core.domain.records import Account, Invoice
from billing_core.domain.shared_costs import NO_SHARING, SHARED_COSTS, SharedCostRule
from billing_core.errors import InvalidStoredRecord
from billing_core.ports import AccountRepository, CostSource, CreditNoteRepository, InvoiceRepository
from billing_core.use_cases.invoice_records import standing_invoice
from billing_core.use_cases.true_up import fetch_months


@dataclass(frozen=True)
class AccountBilled:
    """One account's part: its raw AWS costs (cost currency) and what its invoice billed."""

    account_id: str
    scope: str | None
    aws_raw: Decimal  # cost currency, unrounded
    invoice_id: str | None = None
    status: str | None = None
    base_fee: Decimal = ZERO
    aws_line: Decimal = ZERO
    corrections: Decimal = ZERO  # corrections of earlier months this invoice carries
    total: Decimal = ZERO
    markup: Decimal = ZERO  # the AWS line minus the converted raw costs, invoice currency
    # net the operator's issued credit notes took back (VAT is not revenue); a true-up's credit note is a
    # correction of the month's AWS costs, not a loss of margin, and is left out
    credited: Decimal = ZERO


@dataclass(frozen=True)
class AwsInvoiceReconciliation:
    """One AWS invoice of the billing period, in BilledCost, split into where each part went."""

    invoice_id: str  # "" for the lines AWS has not invoiced yet
    billed: Decimal
    excluded: Decimal  # charge types left out (Tax), Marketplace when excluded
    earlier: Decimal  # corrections of earlier months (the true-up bills them against those months)
    shared: Decimal
    allocated: Decimal  # to the scopes accounts claim
    unallocated: Decimal
    passed_on: Decimal  # the same lines of the period in the billing's cost column (amortized or not)

    @property
    def difference(self) -> Decimal:
        """billed - the parts: zero, or the reconciliation has a hole."""
        return self.billed - (self.excluded + self.earlier + self.shared + self.allocated + self.unallocated)

    @property
    def amortization(self) -> Decimal:
        """What the cost column passes on beyond the invoice for the period's lines (0 under BilledCost)."""
        return self.passed_on - (self.shared + self.allocated + self.unallocated)


@dataclass(frozen=True)
class PeriodReport:
    """The period's reconciliation, cost currency first, then what was billed."""

    period: Period
    cost_currency: str
    invoice_currency: str
    by_charge_type: dict[str, Decimal]  # the source's name of each kind of charge -> its raw cost
    excluded: dict[str, Decimal]
    allocated: Decimal
    unallocated: dict[str, Decimal]  # scope ("" for untagged) -> raw cost no account claims
    grouping_difference: Decimal  # payer total - (excluded + allocated + shared + unallocated)
    accounts: list[AccountBilled] = field(default_factory=list)
    shared: Decimal = ZERO  # the shared costs split over the scopes, whoever claims them
    aws_invoices: list[AwsInvoiceReconciliation] | None = None  # None: the source has no invoice ids
    rate: FxRate | None = None
    cost_requests: int = 0

    @property
    def payer_total(self) -> Decimal:
        """The cost source's total of the payer account for the period, every charge type."""
        return sum(self.by_charge_type.values(), ZERO)

    @property
    def base_fees(self) -> Decimal:
        return sum((a.base_fee for a in self.accounts), ZERO)

    @property
    def billed_total(self) -> Decimal:
        return sum((a.total for a in self.accounts), ZERO)

    @property
    def margin(self) -> Decimal:
        """Base fees plus markup: what the operator keeps beyond passing AWS on."""
        return self.base_fees + sum((a.markup for a in self.accounts), ZERO)

    @property
    def credited(self) -> Decimal:
        """The net the period's credit notes took back."""
        return sum((a.credited for a in self.accounts), ZERO)

    @property
    def margin_after_credits(self) -> Decimal:
        """The margin less what was credited: AWS is paid in full whatever the customer got back."""
        return self.margin - self.credited


def period_report(
    period: Period,
    *,
    costs: CostSource,
    accounts: AccountRepository,
    invoices: InvoiceRepository,
    attribution: CostAttribution,
    excluded: Iterable[ChargeType],
    invoice_currency: str,
    correction_months: int = 0,
    cost_requests: Callable[[], int] | None = None,
    credit_notes: CreditNoteRepository | None = None,
    shared: SharedCostRule = NO_SHARING,
) -> PeriodReport:
    """Reconcile ``period``: two cost queries, the accounts and their invoices of the period.

    ``excluded``: the charge types the cost source leaves out; ``cost_requests`` reads how many paid
    requests it has made so far, if it counts them."""
    count_requests = cost_requests or (lambda: 0)
    before = count_requests()
    totals = costs.costs_by_charge_type(period.start, period.end)
    # The run's own query (with the months it corrects), so the report sees exactly what was billed from.
    passed_on = (
        fetch_months(costs, period, correction_months, attribution).billed
        if correction_months
        else costs.costs(period.start, period.end, attribution)
    )
    made = count_requests() - before
    left_out_types = set(excluded)
    by_type = {kind.name: amount for kind, amount in totals.items()}
    left_out = {kind.name: amount for kind, amount in totals.items() if kind in left_out_types}

    raw_by_scope: dict[str | None, Decimal] = {}
    own_by_scope: dict[str | None, Decimal] = {}  # without the shares of the shared costs
    for line in passed_on.lines:
        raw_by_scope[line.scope] = raw_by_scope.get(line.scope, ZERO) + line.amount
        if line.service != SHARED_COSTS:
            own_by_scope[line.scope] = own_by_scope.get(line.scope, ZERO) + line.amount
    shared_total = sum((line.amount for line in passed_on.lines if line.service == SHARED_COSTS), ZERO)
    known = [entry for entry in accounts.list_accounts() if isinstance(entry, Account)]
    parts: list[AccountBilled] = []
    claimed: set[str | None] = set()
    rate: FxRate | None = None
    for account in sorted(known, key=lambda a: a.account_id):
        scope = account.cost_scope if attribution.splits else None
        claimed.add(scope)
        record = _invoice_of(invoices, account, period)
        raw = raw_by_scope.get(scope, ZERO)
        if record is None:
            parts.append(AccountBilled(account.account_id, scope, raw))
            continue
        record_rate = record.fx
        rate = rate or record_rate
        with localcontext() as context:
            context.prec = 60
            converted = record_rate.convert(raw) if record_rate else raw
        parts.append(
            AccountBilled(
                account.account_id,
                scope,
                raw,
                record.invoice_id,
                record.status.value,
                record.base_fee,
                record.aws_costs,
                sum((c.amount for c in record.true_up.corrections), ZERO),
                record.net,  # VAT is not revenue
                record.aws_costs - to_cents(max(converted, ZERO)),
                _credited_net(credit_notes, record),
            )
        )
    unallocated = {scope or "": amount for scope, amount in own_by_scope.items() if scope not in claimed}
    allocated = sum((own_by_scope.get(scope, ZERO) for scope in claimed), ZERO)
    payer_total = sum(by_type.values(), ZERO)
    difference = payer_total - (
        sum(left_out.values(), ZERO) + allocated + shared_total + sum(unallocated.values(), ZERO)
    )
    invoiced = costs.invoiced(period, attribution)
    return PeriodReport(
        period=period,
        cost_currency=passed_on.currency,
        invoice_currency=invoice_currency.upper(),
        by_charge_type=dict(sorted(by_type.items())),
        excluded=left_out,
        allocated=allocated,
        unallocated=dict(sorted(unallocated.items())),
        grouping_difference=difference,
        accounts=parts,
        rate=rate,
        cost_requests=made,
        shared=shared_total,
        aws_invoices=None if invoiced is None else reconcile_aws_invoices(invoiced, left_out_types, shared, claimed),
    )


def reconcile_aws_invoices(
    parts: Iterable[InvoicedCost], excluded: set[ChargeType], shared: SharedCostRule, claimed: set[str | None]
) -> list[AwsInvoiceReconciliation]:
    """Each AWS invoice's BilledCost split into excluded, earlier months, shared, allocated, unallocated."""
    sums: dict[str, dict[str, Decimal]] = {}
    for part in parts:
        invoice = sums.setdefault(part.invoice_id, {})
        if part.charge_type in excluded:
            where = "excluded"
        elif part.earlier:
            where = "earlier"
        elif shared.is_shared(part.scope, part.service):
            where = "shared"
        else:
            where = "allocated" if part.scope in claimed else "unallocated"
        invoice["billed"] = invoice.get("billed", ZERO) + part.billed
        invoice[where] = invoice.get(where, ZERO) + part.billed
        if where in ("shared", "allocated", "unallocated"):
            invoice["passed_on"] = invoice.get("passed_on", ZERO) + part.cost
    return [
        AwsInvoiceReconciliation(
            invoice_id=invoice_id,
            **{
                name: amounts.get(name, ZERO)
                for name in ("billed", "excluded", "earlier", "shared", "allocated", "unallocated", "passed_on")
            },
        )
        for invoice_id, amounts in sorted(sums.items())
    ]


def _credited_net(credit_notes: CreditNoteRepository | None, record: Invoice) -> Decimal:
    if credit_notes is None or not record.payment.credited:
        return ZERO
    return sum(
        (
            note.net
            for note in credit_notes.list_for_invoice(record.invoice_id)
            if note.counts and not note.from_true_up
        ),
        ZERO,
    )


def _invoice_of(invoices: InvoiceRepository, account: Account, period: Period) -> Invoice | None:
    # A cancelled invoice and its credit notes add up to nothing: the month's reissue stands for it.
    try:
        return standing_invoice(invoices, account.account_id, period)
    except InvalidStoredRecord:
        return None
