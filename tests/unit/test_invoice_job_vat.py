"""The invoice job under German VAT: net lines, the Tax Rate created once, Stripe's tax checked."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_core.domain.costs import CostLine, CostReport
from billing_core.domain.invoice_plan import plan_invoice
from billing_core.domain.tax import TaxMode, TaxPolicy
from billing_core.errors import StripeObjectNotFound
from billing_core.use_cases.invoice_job import InvoiceJob, InvoiceTotalMismatch
from tests.support.billing_world import PERIOD, POLICY, World


def test_a_german_customer_pays_19_percent_on_the_net_lines():
    world = World()
    record = world.bill(world.account(country="DE"))
    assert (record.net, record.tax, record.amount) == (Decimal("37.74"), Decimal("7.17"), Decimal("44.91"))
    assert record.vat.category == "S" and record.vat.rate == Decimal(19) and record.stripe.tax == 717
    lines = world.stripe.calls_to("add_invoice_lines")[0].kwargs["lines"]
    rate_id = next(iter(world.stripe.tax_rates))
    assert [line["tax_rate_ids"] for line in lines] == [(rate_id,), (rate_id,)]
    assert record.vat.note is None


def test_the_tax_rate_is_created_once_and_found_again():
    world = World()
    world.bill(world.account("u1"))
    world.bill(world.account("u2"))
    InvoiceJob(invoices=world.invoices, accounts=world.accounts, payments=world.stripe, tax=world.tax).run(
        plan_invoice(PERIOD, CostReport(PERIOD.start, PERIOD.end, "USD", False, ()), world.account("u3"), POLICY)
    )
    assert len(world.stripe.calls_to("create_tax_rate")) == 1
    assert len(world.stripe.tax_rates) == 1


def test_reverse_charge_has_no_tax_and_says_so_on_the_invoice():
    world = World()
    record = world.bill(world.account(country="AT", vat_id="ATU13585627"))
    assert (record.amount, record.tax, record.vat.category) == (Decimal("37.74"), Decimal(0), "AE")
    draft = world.stripe.calls_to("create_draft_invoice")[0].kwargs
    assert draft["footer"] == "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge)"
    lines = world.stripe.calls_to("add_invoice_lines")[0].kwargs["lines"]
    assert all(not line["tax_rate_ids"] and line["tax_amount"] is None for line in lines)
    assert not world.stripe.calls_to("create_tax_rate")


def test_small_business_charges_no_vat_with_its_legend():
    world = World(TaxPolicy(TaxMode.SMALL_BUSINESS))
    record = world.bill(world.account(country="DE"))
    assert (record.amount, record.vat.category) == (Decimal("37.74"), "E")
    assert "§ 19 UStG" in world.stripe.calls_to("create_draft_invoice")[0].kwargs["footer"]


def test_where_per_line_rounding_would_differ_the_lines_carry_manual_amounts():
    # 0.03 + 0.03 at 19 %: per line 0.01 + 0.01, EN 16931 round(0.0114) = 0.01.
    world = World()
    record = world.bill(world.account(country="DE"), aws="0.03", base_fee="0.03")
    assert (record.net, record.tax, record.amount) == (Decimal("0.06"), Decimal("0.01"), Decimal("0.07"))
    lines = world.stripe.calls_to("add_invoice_lines")[0].kwargs["lines"]
    assert sum(line["tax_amount"] for line in lines) == 1
    assert all(line["tax_rate"]["percentage"] == Decimal(19) and not line["tax_rate_ids"] for line in lines)
    assert record.stripe.tax == 1


def test_stripe_tax_mode_lets_stripe_compute_and_checks_its_answer():
    world = World(TaxPolicy(TaxMode.STRIPE_TAX))
    with pytest.raises(InvoiceTotalMismatch, match="tax 0"):
        # The fake computes no automatic tax: its answer disagrees with the 7.17 expected, so nothing finalizes.
        world.bill(world.account(country="DE"))
    assert world.stripe.calls_to("create_draft_invoice")[0].kwargs["automatic_tax"] is True
    assert not world.stripe.calls_to("finalize_invoice")


def test_a_tax_rate_that_vanished_at_stripe_is_looked_up_again_and_the_retry_bills_once():
    world = World()
    job = world.job()
    first = world.account("u1")
    report = CostReport(PERIOD.start, PERIOD.end, "USD", False, (CostLine("Amazon EC2", Decimal("17.74")),))
    job.run(plan_invoice(PERIOD, report, first, POLICY))
    world.stripe.tax_rates.clear()  # the rate this process remembers no longer exists
    second = plan_invoice(PERIOD, report, world.account("u2"), POLICY)

    with pytest.raises(StripeObjectNotFound):
        job.run(second)
    job.run(second)  # the message comes back: the same job, with a rate found or made anew

    record = world.invoices.get("u2", second.invoice_id)
    assert (record.amount, record.stripe.tax, record.status.value) == (Decimal("44.91"), 717, "open")
    assert len(world.stripe.tax_rates) == 1
    assert len([i for i in world.stripe.invoices.values() if i["metadata"].get("userId") == "u2"]) == 1
