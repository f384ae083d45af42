"""Money in equals money documented: over any months of invoices, true-ups and credit notes, to the cent.

One account is billed month after month by the real ``InvoiceJob`` against the fake Stripe, its earlier
months trued up through ``trued_up`` (``history_of`` + ``with_history``, the billing run's path), its
invoices collected automatically and credited by the real ``CreditNotes`` use case; Stripe's events reach
the records through ``process_event``. The e-invoices are built by ``einvoice_of`` and
``credit_note_einvoice_of`` and their totals read from the XRechnung XML.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, currently_in_test_context, event, given, note, settings
from hypothesis import strategies as st
from lxml import etree

from billing_core.adapters.einvoice_cii import xrechnung_xml
from billing_core.domain.account_profile import PostalAddress
from billing_core.domain.costs import CostLine, CostReport, Period
from billing_core.domain.credit_notes import (
    CreditNote,
    CreditNoteState,
    CreditRefused,
    CreditRequest,
    Settlement,
    credited_by_line,
)
from billing_core.domain.einvoice import EInvoice
from billing_core.domain.invoice_plan import plan_invoice
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.money import ZERO, to_cents, to_minor_units
from billing_core.domain.records import Invoice
from billing_core.domain.tax import TaxPolicy
from billing_core.ports import StripeEvent
from billing_core.use_cases.apply_event import EventPorts, process_event
from billing_core.use_cases.credit_notes import CreditNotes
from billing_core.use_cases.einvoices import credit_note_einvoice_of, einvoice_of
from billing_core.use_cases.invoice_records import record_line_items
from billing_core.use_cases.true_up import MonthsOfCosts, trued_up
from tests.support.billing_world import POLICY, World
from tests.support.fakes import FakeAuditLog, FakeCreditNotes, FakeProcessedEvents
from tests.unit.einvoice_fixtures import NS, SELLER_SETTINGS, SUMMATION

FIRST_MONTH = Period(2026, 1)
CORRECTION_MONTHS = 3
SERVICE = "Amazon EC2"
ACTOR = "operator:property"
BUYERS = {  # German VAT (S), reverse charge (AE), not taxable here (O)
    "DE": {"country": "DE", "vat_id": "DE811907980", "name": "Kunde AG"},
    "AT": {"country": "AT", "vat_id": "ATU13585627", "name": "Wiener Kunde GmbH"},
    "US": {"country": "US", "vat_id": None, "name": "Customer Inc."},
}

settings.register_profile(
    "money-property",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # No explain phase: on a failure it replays variations for minutes; the shrunk example says enough.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
MONEY_PROPERTY = settings.get_profile("money-property")


# --- what happens to the account ---------------------------------------------------------------------


@dataclass(frozen=True)
class Bill:
    """The next month is billed: its base fee and AWS costs (USD), and late final costs of earlier months."""

    base_fee: Decimal
    aws: Decimal
    revisions: tuple[tuple[int, Decimal], ...] = ()  # (months back, that month's final AWS costs)
    collected: bool = False  # Stripe's automatic collection comes due right after


@dataclass(frozen=True)
class Collect:
    """Stripe's automatic collection comes due: every open invoice is charged."""


@dataclass(frozen=True)
class Credit:
    """The operator credits one of the invoices: in full, or shares (percent) of what is left of some lines."""

    invoice: int  # index into the invoices billed so far (modulo their number)
    full: bool
    shares: tuple[tuple[int, int], ...]  # (line index modulo the positive lines, percent of what is left)
    after_payment: Settlement  # REFUND or BALANCE, for a paid invoice; an open one is credited pre-payment


def seen(what: str) -> None:
    """Count ``what`` in Hypothesis's statistics (``--hypothesis-show-statistics``): which paths ran."""
    if currently_in_test_context():
        event(what)


def cents(low: str, high: str) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=2)


# Small amounts (below Stripe's minimum charge of 0.50 and around it) as often as ordinary ones.
BASE_FEES = st.one_of(cents("0", "0.60"), cents("0.61", "60"))
AWS_COSTS = st.one_of(
    cents("0", "0.60"),
    st.decimals(min_value=Decimal("0.6"), max_value=Decimal("250"), places=4),
    cents("-3", "0"),  # a month of credits: its AWS line is 0.00
)
BILLS = st.builds(
    Bill,
    base_fee=BASE_FEES,
    aws=AWS_COSTS,
    revisions=st.lists(
        st.tuples(st.integers(1, CORRECTION_MONTHS), st.one_of(AWS_COSTS, cents("-60", "0"))), max_size=2
    ).map(tuple),
    collected=st.booleans(),
)
CREDITS = st.builds(
    Credit,
    invoice=st.integers(0, 20),
    full=st.booleans(),
    shares=st.lists(
        st.tuples(st.integers(0, 5), st.one_of(st.just(100), st.integers(1, 100))), min_size=1, max_size=3
    ).map(tuple),
    after_payment=st.sampled_from([Settlement.REFUND, Settlement.BALANCE]),
)
STEPS = st.lists(st.one_of(BILLS, CREDITS, st.just(Collect())), min_size=1, max_size=12)


# --- the books ---------------------------------------------------------------------------------------


class Books(World):
    """One account, its invoices, credit notes and Stripe's events applied to the records."""

    def __init__(self, buyer: str) -> None:
        super().__init__(tax=TaxPolicy())
        profile = BUYERS[buyer]
        self.customer = self.account(
            "u1",
            name=profile["name"],
            email="ap@kunde.example",
            country=profile["country"],
            vat_id=profile["vat_id"],
            address=PostalAddress("Kundenweg 5", "80331", "München"),
        )
        self.customer_id = self.customer.stripe_customer_id
        self.stripe.set_default_payment_method(
            customer_id=self.customer_id, payment_method_id="pm_card_visa", idempotency_key="pm:u1"
        )
        self.notes = FakeCreditNotes()
        self.credit_notes = CreditNotes(
            self.invoices, self.notes, self.stripe, FakeAuditLog(), clock=lambda: 1_764_600_000.0
        )
        self.ports = EventPorts(
            invoices=self.invoices,
            accounts=self.accounts,
            payments=self.stripe,
            events=FakeProcessedEvents(),
            clock=lambda: 1_764_600_000.0,
            credit_notes=self.notes,
        )
        self.billed: list[str] = []  # invoice ids, oldest first
        self.finals: dict[Period, Decimal] = {}  # each billed month's AWS costs as Cost Explorer says now
        self._delivered = 0
        self._xml_totals: dict[object, tuple[Decimal, ...]] = {}  # a document's summation, written once

    def next_month(self, bill: Bill) -> None:
        period = FIRST_MONTH.shifted(len(self.billed))
        for back, final in bill.revisions:
            month = period.shifted(-back)
            if month in self.finals:
                self.finals[month] = final
        account = dataclasses.replace(self.customer, base_fee_override=bill.base_fee)
        self.accounts.put(account)
        report = CostReport(period.start, period.end, "USD", False, (CostLine(SERVICE, bill.aws),))
        earlier = {
            month: {None: (CostLine(SERVICE, cost),)}
            for month, cost in self.finals.items()
            if period.shifted(-CORRECTION_MONTHS) <= month < period
        }
        (plan,) = trued_up(
            [plan_invoice(period, report, account, POLICY)],
            self.invoices,
            MonthsOfCosts(report, earlier),
            CORRECTION_MONTHS,
            "de",
        )
        self.job().run(plan)
        self.billed.append(plan.invoice_id)
        for correction in plan.true_up.corrections:
            seen("true-up: a month corrected " + ("up" if correction.amount > 0 else "down"))
        if plan.true_up.carried_out:
            seen("true-up: credit carried to the next invoice")
        if self.stripe.invoices[self.record(plan.invoice_id).stripe.invoice_id]["starting_balance"] < 0:
            seen("the customer's balance paid (part of) an invoice")
        if self.record(plan.invoice_id).payment.carried_to_balance:
            seen("below Stripe's minimum charge: carried to the balance")
        if self.record(plan.invoice_id).payment.balance_applied > 0:
            seen("an amount carried earlier collected with an invoice")
        self.finals[period] = bill.aws
        self.deliver()
        if bill.collected:
            self.collect()

    def collect(self) -> None:
        self.stripe.collect_automatically()
        self.deliver()

    def credit(self, credit: Credit) -> None:
        if not self.billed:
            return
        invoice_id = self.billed[credit.invoice % len(self.billed)]
        record = self.record(invoice_id)
        paid = record.status is InvoiceStatus.PAID
        settlement = credit.after_payment if paid else Settlement.PRE_PAYMENT
        if credit.full:
            request = CreditRequest(reason="Storno", full=True, settlement=settlement)
        else:
            lines = self._shares(record, credit.shares)
            if not lines:
                return
            request = CreditRequest(reason="Korrektur", lines=lines, settlement=settlement)
        try:
            issued = self.credit_notes.credit(invoice_id, request, actor=ACTOR)
        except CreditRefused:
            seen("credit note refused by the domain")  # nothing left, VAT rounding, ...: skipped
        else:
            seen(f"credit note issued: {'cancellation' if issued.full else 'partial'}, {issued.settlement}")
        self.deliver()

    def _shares(self, record: Invoice, shares: tuple[tuple[int, int], ...]) -> dict[str, Decimal]:
        """Net amounts of positive lines, each a share of what its credit notes left of it (whole cents)."""
        taken = credited_by_line(self.notes.list_for_invoice(record.invoice_id))
        left = {kind: net - taken.get(kind, (ZERO, ZERO))[0] for kind, net, _ in record_line_items(record) if net > 0}
        kinds = list(left)
        lines: dict[str, Decimal] = {}
        for index, percent in shares:
            if not kinds:
                break
            kind = kinds[index % len(kinds)]
            amount = left[kind] if percent == 100 else to_cents(left[kind] * percent / 100)
            if amount > 0:
                lines[kind] = amount
        return lines

    def deliver(self) -> None:
        """Stripe's new events, each applied to the records once, as the worker applies them."""
        for stripe_event in self.stripe.events[self._delivered :]:
            process_event(StripeEvent.from_json(stripe_event), self.ports)
        self._delivered = len(self.stripe.events)

    def record(self, invoice_id: str) -> Invoice:
        record = self.invoices.get("u1", invoice_id)
        assert record is not None
        return record

    # --- the three views of the money (minor units) ------------------------------------------------

    def paid_by_customer(self) -> int:
        """The customer's side: every successful charge (``invoice.paid``) less every refund Stripe made."""
        charged = sum(e["data"]["object"]["amount_paid"] for e in self.stripe.events if e["type"] == "invoice.paid")
        refunded = sum(
            refund["amount_refunded"]
            for e in self.stripe.events
            if e["type"] == "credit_note.created"
            for refund in e["data"]["object"]["refunds"]
        )
        return charged - refunded

    def collected_by_stripe(self) -> int:
        """Stripe's side as it keeps it: its invoices' amount paid less its credit notes' refunds."""
        paid = sum(invoice["amount_paid"] for invoice in self.stripe.invoices.values())
        refunded = sum(
            refund["amount_refunded"] for note in self.stripe.credit_notes.values() for refund in note["refunds"]
        )
        return paid - refunded

    def outstanding(self) -> int:
        """What Stripe still has to collect on open invoices."""
        return sum(i["amount_remaining"] for i in self.stripe.invoices.values() if i["status"] == "open")

    def balance(self) -> int:
        """The customer's balance at Stripe (negative: credit the customer has, positive: owed to the seller)."""
        return int(self.stripe.customers[self.customer_id]["balance"])

    def documented(self) -> int:
        """The e-invoices' side: each invoice's total (BT-112) less each credit note's, as their XML says."""
        account = self.accounts.get("u1")
        assert account is not None
        records = [self.record(invoice_id) for invoice_id in self.billed]
        total = 0
        for record in records:
            document = einvoice_of(record, account, SELLER_SETTINGS, "de", corrected=records)
            due, grand = self._totals(document, "DuePayableAmount", "GrandTotalAmount")
            # A credit on the balance Stripe deducted is prepaid (BT-113): what is due is the rest.
            assert grand == document.gross_total == record.amount and due == grand - document.prepaid
            total += to_minor_units(grand, record.currency)
            for issued in self._issued(record):
                credit = credit_note_einvoice_of(issued, record, account, SELLER_SETTINGS, "de")
                (grand,) = self._totals(credit, "GrandTotalAmount")
                assert grand == credit.gross_total == issued.gross
                total -= to_minor_units(grand, record.currency)
        return total

    def _totals(self, document: EInvoice, *names: str) -> tuple[Decimal, ...]:
        """The header's monetary summation amounts ``names`` of the document's XRechnung (BT-112, BT-115)."""
        key = (document, names)
        if key not in self._xml_totals:
            root = etree.fromstring(xrechnung_xml(document))
            self._xml_totals[key] = tuple(
                Decimal(str(root.xpath(f"{SUMMATION}{name}", namespaces=NS)[0].text)) for name in names
            )
        return self._xml_totals[key]

    def _issued(self, record: Invoice) -> list[CreditNote]:
        return [n for n in self.notes.list_for_invoice(record.invoice_id) if n.state is CreditNoteState.ISSUED]


def check_the_money(books: Books) -> None:
    """The identities, at any point: open invoices count with what they still ask for."""
    assert books.paid_by_customer() == books.collected_by_stripe()
    assert books.collected_by_stripe() + books.outstanding() == books.documented() - books.balance()


# --- the property ------------------------------------------------------------------------------------


@MONEY_PROPERTY
@given(buyer=st.sampled_from(sorted(BUYERS)), first=BILLS, steps=STEPS)
def test_what_the_customer_paid_is_what_the_einvoices_say_less_the_balance_left(buyer, first, steps):
    """Over any months billed, trued up, credited and collected, to the cent:

        paid by the customer (charges - refunds)
        == collected by Stripe (its invoices' amount_paid - its credit notes' refunds)
        == sum(invoice e-invoices' total, BT-112) - sum(credit note e-invoices' total, BT-112)
           - the customer's balance at Stripe

    The balance is signed as Stripe signs it. Negative, it is credit the customer still has (credit notes
    settled to the balance that no invoice has taken yet): paid, documented as taken back, not yet given back.
    Positive, it is an amount Stripe did not charge (below its minimum charge): documented, not yet paid.
    An invoice's amount due (BT-115) is its total less the credit Stripe deducted from the balance
    (BT-113). Before collection, the open invoices' amount remaining counts on the paid side. A true-up's
    credit carried to the next invoice is no money of anyone's: it is a line of the invoices, so their
    documents hold it. Out-of-band credit notes are not drawn (their amounts would count on the paid side).
    """
    note(f"buyer={buyer!r} first={first!r}")
    books = Books(buyer)
    books.next_month(first)
    check_the_money(books)
    for step in steps:
        note(repr(step))
        if isinstance(step, Bill):
            books.next_month(step)
        elif isinstance(step, Credit):
            books.credit(step)
        else:
            books.collect()
        check_the_money(books)

    books.collect()

    assert books.outstanding() == 0
    assert books.paid_by_customer() == books.collected_by_stripe() == books.documented() - books.balance()


# --- what the property found (fixed): Stripe's refusals never leave a credit note pending ---------------------


def _credited_to_the_balance_then_billed(next_base_fee: str) -> Books:
    """January's 20.00 paid and 10.00 of it credited to the balance; February billed, its base fee ``next_base_fee``."""
    books = Books("US")  # no VAT: the amounts are the nets
    books.next_month(Bill(Decimal("20.00"), Decimal("0")))
    books.collect()
    books.credit_notes.credit(
        books.billed[0],
        CreditRequest(reason="Kulanz", lines={"base-fee": Decimal("10.00")}, settlement=Settlement.BALANCE),
        actor=ACTOR,
    )
    books.deliver()
    books.next_month(Bill(Decimal(next_base_fee), Decimal("0")))
    return books


@pytest.mark.parametrize("after_payment", [Settlement.REFUND, Settlement.BALANCE])
def test_an_invoice_the_balance_paid_is_credited_or_refused_by_the_domain_never_left_pending(after_payment):
    books = _credited_to_the_balance_then_billed("5.00")  # paid from the balance: 0.00 charged
    february = books.billed[1]
    assert books.record(february).status is InvoiceStatus.PAID and books.balance() == -500

    try:
        books.credit_notes.credit(
            february,
            CreditRequest(reason="Korrektur", lines={"base-fee": Decimal("5.00")}, settlement=after_payment),
            actor=ACTOR,
        )
    except CreditRefused:
        pass  # what the domain should say: nothing was charged to take back
    books.deliver()

    assert [n.state for n in books.notes.list_for_invoice(february)] in ([], [CreditNoteState.ISSUED])
    check_the_money(books)


def test_an_open_invoice_the_balance_paid_in_part_is_cancelled_or_refused_and_stays_creditable():
    books = _credited_to_the_balance_then_billed("30.00")  # 10.00 paid from the balance, 20.00 due
    february = books.billed[1]
    assert books.record(february).status is InvoiceStatus.OPEN and books.outstanding() == 2000

    try:
        books.credit_notes.cancel(february, reason="Storno", actor=ACTOR)
    except CreditRefused:  # refused by the domain (the balance paid 10.00 of it): what is due stays creditable
        books.credit_notes.credit(
            february, CreditRequest(reason="Korrektur", lines={"base-fee": Decimal("20.00")}), actor=ACTOR
        )
    books.deliver()

    assert CreditNoteState.PENDING not in [n.state for n in books.notes.list_for_invoice(february)]

    check_the_money(books)


@pytest.mark.parametrize("after_payment", [Settlement.REFUND, Settlement.BALANCE])
def test_a_paid_invoices_part_whose_vat_rounds_otherwise_is_settled_with_the_share_stripe_takes(after_payment):
    books = Books("DE")
    books.next_month(Bill(Decimal("0.61"), Decimal("0"), collected=True))  # 0.61 + 0.12 VAT, paid
    (january,) = books.billed

    note = books.credit_notes.credit(
        january,
        CreditRequest(reason="Korrektur", lines={"base-fee": Decimal("0.23")}, settlement=after_payment),
        actor=ACTOR,
    )
    books.deliver()

    assert (note.state, note.gross) == (CreditNoteState.ISSUED, Decimal("0.28"))  # Stripe settles its own total
    check_the_money(books)


def test_an_open_invoices_part_whose_vat_rounds_otherwise_takes_the_share_stripe_takes():
    books = Books("DE")
    books.next_month(Bill(Decimal("0.61"), Decimal("0")))  # 0.61 + 0.12 VAT, open
    (january,) = books.billed

    # 0.23 x 19 % = 0.04, but the share of the line's tax is 0.12 x 23 / 61 = 0.045 -> 0.05, as Stripe's.
    note = books.credit_notes.credit(
        january, CreditRequest(reason="Korrektur", lines={"base-fee": Decimal("0.23")}), actor=ACTOR
    )
    books.deliver()

    assert (note.state, note.tax, note.gross) == (CreditNoteState.ISSUED, Decimal("0.05"), Decimal("0.28"))
    check_the_money(books)
