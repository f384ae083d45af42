"""A small in-memory world that bills invoices through the real invoice job (fake Stripe, fake tables)."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

from billing_core.domain.costs import CostLine, CostReport, Period
from billing_core.domain.invoice_plan import BillingPolicy, FxRate, plan_invoice
from billing_core.domain.records import Account, SavedPaymentMethod
from billing_core.domain.tax import TaxPolicy
from billing_core.use_cases.invoice_job import InvoiceJob
from tests.support.fakes import FakeAccountRepository, FakeInvoiceRepository, FakePaymentGateway

PERIOD = Period(2026, 11)
POLICY = BillingPolicy(fx=FxRate(Decimal("1.0"), "test", date(2026, 11, 30)))


class World:
    """Stripe, the invoices and the accounts of one test; ``bill`` runs the invoice job for a month."""

    def __init__(self, tax: TaxPolicy | None = None) -> None:
        self.stripe = FakePaymentGateway()
        self.invoices = FakeInvoiceRepository()
        self.accounts = FakeAccountRepository()
        self.tax = tax or TaxPolicy()

    def account(self, account_id: str = "u1", **profile) -> Account:
        customer = self.stripe.create_customer(account_id=account_id, idempotency_key=f"setup:{account_id}")
        account = Account(
            account_id,
            stripe_customer_id=customer.id,
            payment_method=SavedPaymentMethod("pm_card_visa", "card"),
            **profile,
        )
        self.accounts.put(account)
        return account

    def job(self, **options) -> InvoiceJob:
        return InvoiceJob(
            invoices=self.invoices,
            accounts=self.accounts,
            payments=self.stripe,
            clock=lambda: 1_764_547_200.0,
            tax=self.tax,
            **options,
        )

    def bill(self, account: Account, aws: str = "17.74", base_fee: str | None = None):
        if base_fee is not None:
            account = dataclasses.replace(account, base_fee_override=Decimal(base_fee))
            self.accounts.put(account)
        report = CostReport(PERIOD.start, PERIOD.end, "USD", False, (CostLine("Amazon EC2", Decimal(aws)),))
        plan = plan_invoice(PERIOD, report, account, POLICY)
        self.job().run(plan)
        return self.invoices.get(account.account_id, plan.invoice_id)
