"""The customer's balance the books explain, for the invoice job's check before it finalizes."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from billing_core.domain.customer_balance import books_balance
from billing_core.domain.records import Invoice
from billing_core.ports import CreditNoteRepository, InvoiceRepository
from billing_core.use_cases.true_up import account_invoices


def books_balance_before(
    invoices: InvoiceRepository, credit_notes: CreditNoteRepository
) -> Callable[[Invoice], Decimal]:
    """The balance the account's other invoices and their credit notes explain, before ``record``.

    One query of the account's invoices, and one read of the credit notes of each credited one.
    """

    def balance(record: Invoice) -> Decimal:
        others = [r for r in account_invoices(invoices, record.account_id) if r.invoice_id != record.invoice_id]
        notes = [note for r in others if r.payment.credited for note in credit_notes.list_for_invoice(r.invoice_id)]
        return books_balance(others, notes)

    return balance
