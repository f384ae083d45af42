"""The operator's invoice actions refuse what Stripe could not do, before any Stripe request."""

from __future__ import annotations

import pytest

from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.use_cases.operator_invoices import (
    InvoiceNotFound,
    InvoiceNotRetryable,
    OperatorInvoices,
    account_of_invoice_id,
)
from tests.support.fakes import FakeAuditLog, FakeInvoiceRepository, FakePaymentGateway
from tests.support.records import an_invoice


def test_the_account_is_read_from_the_invoice_id():
    assert account_of_invoice_id("inv_2026-10_kunde_42") == "kunde_42"
    for bad in ("in_123", "inv_2026-10_", "kunde"):
        with pytest.raises(InvoiceNotFound):
            account_of_invoice_id(bad)


@pytest.mark.parametrize("status", [InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.DRAFT, InvoiceStatus.PENDING])
def test_an_invoice_that_is_not_open_or_failed_is_not_retried_and_stripe_is_not_asked(status):
    payments = FakePaymentGateway()
    invoices = FakeInvoiceRepository([an_invoice(account_id="u1", status=status, stripe_invoice_id="in_1")])
    operator = OperatorInvoices(invoices, payments, FakeAuditLog())

    with pytest.raises(InvoiceNotRetryable, match=status.value):
        operator.retry("inv_2024-11_u1", actor="a")
    assert payments.calls == []


def test_voiding_needs_a_reason_and_a_finalized_unpaid_invoice():
    payments, audit = FakePaymentGateway(), FakeAuditLog()
    invoices = FakeInvoiceRepository([an_invoice(account_id="u1", status=InvoiceStatus.PAID, stripe_invoice_id="in_1")])
    operator = OperatorInvoices(invoices, payments, audit)

    with pytest.raises(InvoiceNotRetryable, match="why"):
        operator.void("inv_2024-11_u1", actor="a", reason="")
    with pytest.raises(InvoiceNotRetryable, match="paid"):
        operator.void("inv_2024-11_u1", actor="a", reason="duplicate")
    with pytest.raises(InvoiceNotFound):
        operator.void("inv_2024-11_nobody", actor="a", reason="duplicate")
    assert payments.calls == [] and audit.entries() == []


def test_an_invoice_whose_einvoice_was_issued_is_not_voided_but_cancelled():
    payments, audit = FakePaymentGateway(), FakeAuditLog()
    invoices = FakeInvoiceRepository(
        [an_invoice(account_id="u1", status=InvoiceStatus.OPEN, stripe_invoice_id="in_1", einvoice_xml="x.xml")]
    )
    operator = OperatorInvoices(invoices, payments, audit)

    with pytest.raises(InvoiceNotRetryable, match="billing invoices cancel"):
        operator.void("inv_2024-11_u1", actor="a", reason="duplicate")
    assert payments.calls == [] and invoices.get("u1", "inv_2024-11_u1").status is InvoiceStatus.OPEN
