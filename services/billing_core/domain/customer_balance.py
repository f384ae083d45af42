"""The customer's balance at Stripe, as this system's books explain it.

Stripe keeps a balance per customer (``customer.balance``, minor units; negative: a credit the customer
has, positive: an amount the customer owes). Two things move it here:

- a credit note settled to the balance (``credit_amount``): a credit, taken off the next invoice;
- an invoice whose amount due is below Stripe's minimum charge (0.50 EUR): Stripe does not charge it,
  marks it paid and puts the amount on the balance ("invoice_too_small"); the next invoice collects it.

Stripe applies the balance when it finalizes an invoice (``starting_balance`` before, ``ending_balance``
after): a credit reduces the amount due, never below 0.00 (the rest stays on the balance), an amount
owed is added to it. The books therefore know the balance at any time:

    balance = sum of every invoice's (carried to the balance - balance applied) - balance credit notes

and an invoice is finalized only when Stripe's balance is that (it would otherwise collect an amount
nobody can explain).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from billing_core.domain.credit_notes import CreditNote, Settlement
from billing_core.domain.money import ZERO, from_minor_units
from billing_core.domain.records import Invoice

# Stripe's minimum charge per currency (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts:
# "The minimum amount is $0.50 US or equivalent in charge currency"; 0.50 EUR for the euro).
MINIMUM_CHARGE = {"EUR": Decimal("0.50"), "USD": Decimal("0.50")}


def balance_applied(total: int, starting_balance: int) -> int:
    """What Stripe takes of ``starting_balance`` into an invoice of ``total`` (minor units, signed).

    An amount owed (positive) is added in full; a credit (negative) reduces the total down to 0.
    """
    if starting_balance >= 0:
        return starting_balance
    return max(starting_balance, -max(total, 0))


@dataclass(frozen=True)
class BalanceUse:
    """How Stripe's finalization used the customer's balance for one invoice (invoice currency)."""

    applied: Decimal = ZERO  # taken from the balance into the invoice: > 0 collected with it, < 0 deducted
    carried: Decimal = ZERO  # the amount due below the minimum charge, moved to the balance uncollected

    @classmethod
    def of(cls, total: int, starting_balance: int, ending_balance: int | None, currency: str) -> BalanceUse:
        """From a finalized Stripe invoice's ``total``, ``starting_balance`` and ``ending_balance``."""
        applied = balance_applied(total, starting_balance)
        # ending = starting - applied + what was moved to the balance because it was too small to charge
        carried = (ending_balance if ending_balance is not None else starting_balance - applied) - (
            starting_balance - applied
        )
        return cls(from_minor_units(applied, currency), from_minor_units(carried, currency))


def books_balance(invoices: Iterable[Invoice], credit_notes: Iterable[CreditNote]) -> Decimal:
    """The customer's balance as the books explain it (negative: a credit), invoice currency."""
    moved_by_invoices = sum(
        (record.payment.carried_to_balance - record.payment.balance_applied for record in invoices), ZERO
    )
    credited = sum((note.gross for note in credit_notes if note.counts and note.settlement is Settlement.BALANCE), ZERO)
    return moved_by_invoices - credited
