"""The payment gateway's contract, kept by the in-memory fake and by the Stripe adapter on the emulator.

Where the two disagreed, Stripe decided (its API reference and docs, and the pinned SDK's params and
resource declarations); the side that departed from Stripe was fixed. Only the port is asserted on;
the ``payments`` fixture supplies what lies outside it (Stripe.js confirming a SetupIntent, time
passing at Stripe, injected failures).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_core.domain.account_profile import PostalAddress
from billing_core.errors import (
    IdempotencyKeyReused,
    PaymentActionRequired,
    PaymentDeclined,
    StripeFailedAfterExecution,
    StripeObjectNotFound,
    StripeRequestRejected,
    StripeUnavailable,
)
from billing_core.ports import (
    CreditNoteLineRequest,
    CreditNoteRequest,
    InvoiceLine,
    StripeCreditNote,
    StripeCustomer,
    StripeInvoice,
)
from billing_core.ports.stripe import CustomerDetails, TaxRateSpec

VAT_19 = TaxRateSpec("USt. 19 %", Decimal(19))
VAT_19_INCLUSIVE = TaxRateSpec("USt. 19 % inkl.", Decimal(19), inclusive=True)
BERLIN = PostalAddress("Unter den Linden 1", "10117", "Berlin")
NOV_START, NOV_END = 1730419200, 1733011199


# --- helpers ---------------------------------------------------------------------------------------


def customer(payments, account_id: str = "user-1", **details) -> StripeCustomer:
    return payments.gateway.create_customer(
        account_id=account_id,
        email=f"{account_id}@example.com",
        details=CustomerDetails(**details) if details else None,
        idempotency_key=f"customer:{account_id}",
    )


def customer_paying_with(payments, test_payment_method: str = "pm_card_visa", account_id: str = "user-1"):
    """A customer whose default payment method was saved through a SetupIntent, as the admin page does."""
    cus = customer(payments, account_id)
    intent = payments.gateway.create_setup_intent(customer_id=cus.id, idempotency_key=f"setup:{account_id}")
    payment_method_id = payments.save_payment_method(intent, test_payment_method)
    cus = payments.gateway.set_default_payment_method(
        customer_id=cus.id, payment_method_id=payment_method_id, idempotency_key=f"default:{account_id}"
    )
    return cus, payment_method_id


def draft(payments, cus: StripeCustomer, key: str = "draft", **options) -> StripeInvoice:
    options.setdefault("currency", "eur")
    return payments.gateway.create_draft_invoice(customer_id=cus.id, idempotency_key=key, **options)


def lines(*amounts: int, **options) -> list[InvoiceLine]:
    return [InvoiceLine(amount, f"line {i}", {"line": f"l{i}"}, **options) for i, amount in enumerate(amounts)]


def with_lines(payments, cus: StripeCustomer, *amounts: int, key: str = "draft", **options) -> StripeInvoice:
    invoice = draft(payments, cus, key, **options)
    return payments.gateway.add_invoice_lines(
        invoice_id=invoice.id, lines=lines(*amounts), idempotency_key=f"{key}:lines"
    )


def open_invoice(payments, cus: StripeCustomer, *amounts: int, key: str = "draft", **options) -> StripeInvoice:
    invoice = with_lines(payments, cus, *(amounts or (2000, 1774)), key=key, **options)
    return payments.gateway.finalize_invoice(invoice.id, idempotency_key=f"{key}:finalize")


def events_of(payments, *types: str) -> set[tuple[str, str | None]]:
    """(type, object id) of the events of ``types`` so far."""
    return {(e.type, getattr(e.object, "id", None)) for e in payments.gateway.list_events(created_after=0, types=types)}


# --- customers --------------------------------------------------------------------------------------


def test_a_customer_carries_its_account_and_email(payments):
    created = customer(payments, "user-1")

    assert created.id.startswith("cus_")
    assert (created.email, dict(created.metadata), created.default_payment_method_id) == (
        "user-1@example.com",
        {"userId": "user-1"},
        None,
    )


def test_the_details_win_over_email_and_name(payments):
    created = payments.gateway.create_customer(
        account_id="user-1",
        email="old@example.com",
        name="Old",
        details=CustomerDetails(name="Beispiel GmbH", email="billing@example.com", address=BERLIN, country="DE"),
        idempotency_key="customer:user-1",
    )

    assert created.email == "billing@example.com"


def test_an_update_sets_the_details_given_and_leaves_the_rest(payments):
    created = customer(payments, "user-1")

    updated = payments.gateway.update_customer(
        created.id, details=CustomerDetails(name="Beispiel AG", language="de"), idempotency_key="update:1"
    )

    assert (updated.id, updated.email, dict(updated.metadata)) == (created.id, created.email, {"userId": "user-1"})


def test_updating_an_unknown_customer_is_not_found(payments):
    with pytest.raises(StripeObjectNotFound):
        payments.gateway.update_customer(
            "cus_doesnotexist", details=CustomerDetails(name="Nobody"), idempotency_key="update:x"
        )


def test_a_tax_exemption_stripe_does_not_know_is_refused(payments):
    with pytest.raises(StripeRequestRejected):
        customer(payments, "user-1", tax_exempt="sometimes")


# --- setup intents and payment methods ------------------------------------------------------------


def test_a_setup_intent_awaits_a_payment_method_for_its_customer(payments):
    cus = customer(payments)

    intent = payments.gateway.create_setup_intent(
        customer_id=cus.id, metadata={"accountId": "user-1"}, idempotency_key="setup:1"
    )

    assert intent.id.startswith("seti_")
    assert (intent.status, intent.customer_id, intent.payment_method_id) == ("requires_payment_method", cus.id, None)
    assert intent.client_secret and intent.client_secret.startswith(f"{intent.id}_secret_")
    assert dict(intent.metadata) == {"accountId": "user-1"}


def test_a_setup_intent_for_an_unknown_customer_is_not_found(payments):
    with pytest.raises(StripeObjectNotFound):
        payments.gateway.create_setup_intent(customer_id="cus_doesnotexist", idempotency_key="setup:x")


@pytest.mark.parametrize(
    ("test_payment_method", "kind", "brand", "last4"),
    [
        ("pm_card_visa", "card", "visa", "4242"),
        ("pm_card_mastercard", "card", "mastercard", "4444"),
        ("pm_sepaDebit", "sepa_debit", None, "3000"),
    ],
)
def test_a_confirmed_setup_saves_the_payment_method_on_the_customer(payments, test_payment_method, kind, brand, last4):
    cus = customer(payments)
    intent = payments.gateway.create_setup_intent(customer_id=cus.id, idempotency_key="setup:1")

    saved = payments.gateway.retrieve_payment_method(payments.save_payment_method(intent, test_payment_method))

    assert saved.id.startswith("pm_") and saved.id != test_payment_method  # Stripe makes a new one each time
    assert (saved.type, saved.brand, saved.last4, saved.customer_id) == (kind, brand, last4, cus.id)


def test_a_succeeded_setup_is_an_event_naming_the_saved_payment_method(payments):
    cus = customer(payments)
    intent = payments.gateway.create_setup_intent(customer_id=cus.id, idempotency_key="setup:1")
    payment_method_id = payments.save_payment_method(intent, "pm_card_visa")

    (event,) = payments.gateway.list_events(created_after=0, types=["setup_intent.succeeded"])

    assert (event.object.id, event.object.status, event.object.payment_method_id) == (
        intent.id,
        "succeeded",
        payment_method_id,
    )


def test_the_saved_payment_method_becomes_the_customers_default(payments):
    cus, payment_method_id = customer_paying_with(payments, "pm_card_visa")

    assert cus.default_payment_method_id == payment_method_id


def test_a_payment_method_of_another_customer_cannot_become_the_default(payments):
    _, theirs = customer_paying_with(payments, "pm_card_visa", "user-1")
    mine = customer(payments, "user-2")

    with pytest.raises(StripeObjectNotFound):
        payments.gateway.set_default_payment_method(
            customer_id=mine.id, payment_method_id=theirs, idempotency_key="default:user-2"
        )


def test_an_unknown_payment_method_is_not_found(payments):
    cus = customer(payments)

    with pytest.raises(StripeObjectNotFound):
        payments.gateway.retrieve_payment_method("pm_doesnotexist")
    with pytest.raises(StripeObjectNotFound):
        payments.gateway.set_default_payment_method(
            customer_id=cus.id, payment_method_id="pm_doesnotexist", idempotency_key="default:1"
        )


# --- drafts and their lines ------------------------------------------------------------------------


def test_a_draft_starts_empty_and_unnumbered(payments):
    cus = customer(payments)

    invoice = draft(
        payments,
        cus,
        description="AWS Kosten 2024-11",
        metadata={"userId": "user-1", "period": "2024-11"},
        custom_fields={"USt-IdNr.": "DE123456789", "Kundennummer": "991"},
        footer="Reverse Charge",
    )

    assert invoice.id.startswith("in_")
    assert (invoice.status, invoice.customer_id, invoice.currency, dict(invoice.metadata)) == (
        "draft",
        cus.id,
        "eur",
        {"userId": "user-1", "period": "2024-11"},
    )
    assert (invoice.total, invoice.total_excluding_tax, invoice.total_tax) == (0, 0, 0)
    assert (invoice.amount_due, invoice.amount_paid, invoice.attempt_count) == (0, 0, 0)
    assert (invoice.number, invoice.hosted_invoice_url, invoice.invoice_pdf, invoice.next_payment_attempt) == (
        None,
        None,
        None,
        None,
    )
    assert invoice.status_transitions.finalized_at is None and invoice.line_kinds == frozenset()
    assert invoice.created > 0


def test_a_currency_is_kept_in_lowercase(payments):
    assert draft(payments, customer(payments), currency="EUR").currency == "eur"


def test_a_draft_for_an_unknown_customer_is_not_found(payments):
    with pytest.raises(StripeObjectNotFound):
        payments.gateway.create_draft_invoice(customer_id="cus_doesnotexist", currency="eur", idempotency_key="d")


def test_more_than_four_custom_fields_are_refused(payments):
    with pytest.raises(StripeRequestRejected):
        draft(payments, customer(payments), custom_fields={f"Feld {i}": "x" for i in range(5)})


def test_lines_are_added_in_one_request_and_the_total_follows_to_the_cent(payments):
    invoice = draft(payments, customer(payments))

    first = payments.gateway.add_invoice_lines(
        invoice_id=invoice.id,
        lines=[
            InvoiceLine(2000, "Monatliche Grundgebühr", {"line": "base-fee"}, NOV_START, NOV_END),
            InvoiceLine(1774, "AWS Infrastruktur (Nov 2024)", {"line": "aws"}, NOV_START, NOV_END),
        ],
        idempotency_key="lines:1",
    )
    second = payments.gateway.add_invoice_lines(
        invoice_id=invoice.id, lines=[InvoiceLine(1, "Rundung", {"line": "rounding"})], idempotency_key="lines:2"
    )

    assert (first.status, first.total, first.total_excluding_tax, first.amount_due) == ("draft", 3774, 3774, 3774)
    assert first.line_kinds == {"base-fee", "aws"}
    assert (second.total, second.line_kinds) == (3775, {"base-fee", "aws", "rounding"})
    assert payments.gateway.retrieve_invoice(invoice.id).total == 3775


def test_a_credit_line_lowers_the_total_but_nothing_below_zero_is_due(payments):
    invoice = with_lines(payments, customer(payments), 500, -800)

    assert (invoice.total, invoice.total_excluding_tax, invoice.amount_due) == (-300, -300, 0)


def test_an_invoice_answer_lists_its_first_ten_lines_and_counts_them_all(payments):
    invoice = with_lines(payments, customer(payments), *range(100, 112))

    assert invoice.total == sum(range(100, 112))
    assert invoice.line_kinds == {f"l{i}" for i in range(10)}  # Stripe inlines ten lines, the rest is paged


def test_lines_on_an_unknown_invoice_are_not_found(payments):
    with pytest.raises(StripeObjectNotFound):
        payments.gateway.add_invoice_lines(invoice_id="in_doesnotexist", lines=lines(100), idempotency_key="l")


def test_lines_cannot_be_added_once_the_invoice_is_finalized(payments):
    invoice = open_invoice(payments, customer(payments))

    with pytest.raises(StripeRequestRejected) as rejected:
        payments.gateway.add_invoice_lines(invoice_id=invoice.id, lines=lines(1), idempotency_key="late")

    assert rejected.value.code == "invoice_not_editable"
    assert payments.gateway.retrieve_invoice(invoice.id).total == 3774


def test_adding_no_lines_is_refused_before_any_request(payments):
    invoice = draft(payments, customer(payments))

    with pytest.raises(ValueError):
        payments.gateway.add_invoice_lines(invoice_id=invoice.id, lines=[], idempotency_key="none")


# --- tax -------------------------------------------------------------------------------------------


def test_a_tax_rate_is_found_again_by_its_key(payments):
    rate_id = payments.gateway.create_tax_rate(VAT_19, idempotency_key="rate:19")

    assert rate_id.startswith("txr_")
    assert payments.gateway.find_tax_rate(VAT_19.key) == rate_id
    assert payments.gateway.find_tax_rate(VAT_19_INCLUSIVE.key) is None


def test_a_tax_rate_is_created_once_under_one_key(payments):
    first = payments.gateway.create_tax_rate(VAT_19, idempotency_key="rate:19")
    again = payments.gateway.create_tax_rate(VAT_19, idempotency_key="rate:19")

    assert again == first == payments.gateway.find_tax_rate(VAT_19.key)


@pytest.mark.parametrize("percentage", [Decimal("100.5"), Decimal("-1"), Decimal("7.12345")])
def test_a_percentage_stripe_cannot_hold_is_refused(payments, percentage):
    with pytest.raises(StripeRequestRejected):
        payments.gateway.create_tax_rate(TaxRateSpec("odd", percentage), idempotency_key="rate:odd")


def _taxed(payments, spec: TaxRateSpec, *amounts: int, cus: StripeCustomer | None = None) -> StripeInvoice:
    rate_id = payments.gateway.create_tax_rate(spec, idempotency_key=f"rate:{spec.key}")
    cus = cus or customer(payments)
    invoice = draft(payments, cus, f"draft:{cus.id}")
    return payments.gateway.add_invoice_lines(
        invoice_id=invoice.id,
        lines=[InvoiceLine(amount, f"line {i}", tax_rate_ids=(rate_id,)) for i, amount in enumerate(amounts)],
        idempotency_key=f"lines:{cus.id}",
    )


def test_exclusive_vat_comes_on_top_rounded_per_line(payments):
    invoice = _taxed(payments, VAT_19, 2000, 1774)
    tiny = _taxed(payments, VAT_19, 3, 3, cus=customer(payments, "user-2"))

    assert (invoice.total_excluding_tax, invoice.total_tax, invoice.total, invoice.amount_due) == (
        3774,
        717,  # 380 + 337.06
        4491,
        4491,
    )
    assert (tiny.total_excluding_tax, tiny.total_tax, tiny.total) == (6, 2, 8)  # 0.57 + 0.57, each rounded up


def test_an_inclusive_rate_is_part_of_the_amount(payments):
    invoice = _taxed(payments, VAT_19_INCLUSIVE, 1190, 1000)

    # 1190 holds 190; 1000 holds 159.66
    assert (invoice.total, invoice.total_tax, invoice.total_excluding_tax) == (2190, 350, 1840)


def test_a_reverse_charge_customer_pays_no_tax_on_tax_rates(payments):
    cus = customer(payments, "user-1", address=BERLIN, country="AT", vat_id="ATU13585627", tax_exempt="reverse")

    invoice = _taxed(payments, VAT_19, 2000, 1774, cus=cus)

    assert (invoice.total_excluding_tax, invoice.total_tax, invoice.total) == (3774, 0, 3774)


def test_manual_tax_amounts_are_taken_as_given(payments):
    invoice = draft(payments, customer(payments))

    answer = payments.gateway.add_invoice_lines(
        invoice_id=invoice.id,
        lines=[
            InvoiceLine(3, "Grundgebühr", tax_amount=1, tax_rate=VAT_19),
            InvoiceLine(3, "AWS", tax_amount=0, tax_rate=VAT_19),
        ],
        idempotency_key="lines",
    )

    assert (answer.total_excluding_tax, answer.total_tax, answer.total) == (6, 1, 7)


def test_tax_rates_and_manual_tax_amounts_do_not_mix_on_one_invoice(payments):
    rate_id = payments.gateway.create_tax_rate(VAT_19, idempotency_key="rate")
    invoice = draft(payments, customer(payments))

    with pytest.raises(StripeRequestRejected):
        payments.gateway.add_invoice_lines(
            invoice_id=invoice.id,
            lines=[
                InvoiceLine(2000, "Grundgebühr", tax_rate_ids=(rate_id,)),
                InvoiceLine(1774, "AWS", tax_amount=337, tax_rate=VAT_19),
            ],
            idempotency_key="lines",
        )

    assert payments.gateway.retrieve_invoice(invoice.id).total == 0  # none of the lines was added


def test_a_line_with_an_unknown_tax_rate_is_not_found_and_adds_nothing(payments):
    rate_id = payments.gateway.create_tax_rate(VAT_19, idempotency_key="rate")
    invoice = draft(payments, customer(payments))

    with pytest.raises(StripeObjectNotFound):
        payments.gateway.add_invoice_lines(
            invoice_id=invoice.id,
            lines=[
                InvoiceLine(2000, "Grundgebühr", tax_rate_ids=(rate_id,)),
                InvoiceLine(1774, "AWS", tax_rate_ids=("txr_doesnotexist",)),
            ],
            idempotency_key="lines",
        )

    kept = payments.gateway.retrieve_invoice(invoice.id)
    assert (kept.total, kept.line_kinds) == (0, frozenset())


@pytest.mark.parametrize(
    ("country", "exempt", "tax"),
    [
        ("DE", None, 381),  # 19 % of 10.03 + 10.03, summed and then rounded once (per line: 1.91 + 1.91)
        ("FR", None, 381),  # an EU consumer below the OSS threshold pays German VAT
        ("AT", "reverse", 0),
        ("US", None, 0),
    ],
)
def test_stripe_tax_computes_the_vat_over_the_whole_invoice(payments, country, exempt, tax):
    cus = customer(payments, "user-1", address=BERLIN, country=country, tax_exempt=exempt)

    answer = with_lines(payments, cus, 1003, 1003, automatic_tax=True)
    opened = payments.gateway.finalize_invoice(answer.id, idempotency_key="finalize")

    assert (answer.total_excluding_tax, answer.total_tax, answer.total) == (2006, tax, 2006 + tax)
    assert (opened.status, opened.total_tax, opened.amount_due) == ("open", tax, 2006 + tax)


def test_stripe_tax_cannot_finalize_an_invoice_without_the_customers_location(payments):
    invoice = with_lines(payments, customer(payments), 2000, 1774, automatic_tax=True)

    with pytest.raises(StripeRequestRejected) as refused:
        payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize")

    assert refused.value.code == "customer_tax_location_invalid"
    kept = payments.gateway.retrieve_invoice(invoice.id)
    assert kept.status == "draft" and kept.finalization_error
    assert events_of(payments, "invoice.finalization_failed") == {("invoice.finalization_failed", invoice.id)}


def test_a_location_given_before_finalizing_is_taxed(payments):
    cus = customer(payments)
    invoice = with_lines(payments, cus, 2000, 1774, automatic_tax=True)
    payments.gateway.update_customer(
        cus.id, details=CustomerDetails(address=BERLIN, country="DE"), idempotency_key="update"
    )

    opened = payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize")

    assert (opened.status, opened.total_excluding_tax, opened.total_tax, opened.total) == ("open", 3774, 717, 4491)


# --- finalizing ------------------------------------------------------------------------------------


def test_finalizing_opens_the_invoice_with_a_number_and_its_pages(payments):
    cus = customer(payments)
    invoice = with_lines(payments, cus, 2000, 1774)

    opened = payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize")

    assert (opened.id, opened.status, opened.total, opened.amount_due) == (invoice.id, "open", 3774, 3774)
    assert opened.number and opened.hosted_invoice_url and opened.invoice_pdf
    assert opened.status_transitions.finalized_at is not None and opened.status_transitions.paid_at is None
    assert opened.next_payment_attempt is None  # auto_advance off: Stripe waits for pay_invoice
    assert payments.gateway.retrieve_invoice(invoice.id) == opened


def test_an_invoice_is_finalized_only_once(payments):
    invoice = open_invoice(payments, customer(payments))

    with pytest.raises(StripeRequestRejected):
        payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize:again")


def test_an_invoice_with_nothing_due_is_paid_when_finalized(payments):
    cus = customer(payments)
    empty = draft(payments, cus, "empty")
    credit = with_lines(payments, cus, 500, -800, key="credit")

    paid = payments.gateway.finalize_invoice(empty.id, idempotency_key="finalize:empty")
    credited = payments.gateway.finalize_invoice(credit.id, idempotency_key="finalize:credit")

    assert (paid.status, paid.amount_paid, credited.status, credited.amount_due) == ("paid", 0, "paid", 0)
    assert paid.status_transitions.paid_at is not None
    assert events_of(payments, "invoice.paid") == {("invoice.paid", empty.id), ("invoice.paid", credit.id)}


@pytest.mark.parametrize(
    ("on_create", "on_finalize", "collected"),
    [(False, True, True), (True, None, True), (True, False, False), (False, None, False)],
)
def test_auto_advance_lets_stripe_charge_the_invoice_later(payments, on_create, on_finalize, collected):
    cus, _ = customer_paying_with(payments)
    invoice = with_lines(payments, cus, 2000, 1774, auto_advance=on_create)
    payments.collect_soon()

    opened = payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize", auto_advance=on_finalize)

    assert opened.status == "open"  # never charged in the answer to finalize
    assert (opened.next_payment_attempt is not None) is collected
    if collected:
        assert payments.await_collection(invoice.id).status == "paid"


def test_a_failed_finalization_keeps_the_draft_and_says_why(payments):
    invoice = with_lines(payments, customer(payments), 2000, 1774)
    payments.fail_next_finalization()

    with pytest.raises(StripeRequestRejected):
        payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize:1")
    kept = payments.gateway.retrieve_invoice(invoice.id)
    opened = payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize:2")

    assert kept.status == "draft" and kept.finalization_error
    assert (opened.status, opened.finalization_error) == ("open", None)
    assert events_of(payments, "invoice.finalization_failed") == {("invoice.finalization_failed", invoice.id)}


def test_finalizing_an_unknown_invoice_is_not_found(payments):
    with pytest.raises(StripeObjectNotFound):
        payments.gateway.finalize_invoice("in_doesnotexist", idempotency_key="finalize")


# --- paying ----------------------------------------------------------------------------------------


def test_paying_charges_the_default_card(payments):
    cus, _ = customer_paying_with(payments, "pm_card_visa")
    invoice = open_invoice(payments, cus)

    paid = payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")

    assert (paid.status, paid.amount_paid, paid.amount_due, paid.attempt_count) == ("paid", 3774, 3774, 1)
    assert paid.status_transitions.paid_at is not None and paid.next_payment_attempt is None
    assert payments.gateway.retrieve_invoice(invoice.id) == paid
    assert events_of(payments, "invoice.paid", "invoice.payment_failed") == {("invoice.paid", invoice.id)}


def test_a_declined_card_is_payment_declined_and_the_invoice_stays_open(payments):
    cus, _ = customer_paying_with(payments, "pm_card_chargeCustomerFail")
    invoice = open_invoice(payments, cus)

    with pytest.raises(PaymentDeclined) as declined:
        payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")

    assert not isinstance(declined.value, PaymentActionRequired)
    assert (declined.value.code, declined.value.decline_code) == ("card_declined", "generic_decline")
    after = payments.gateway.retrieve_invoice(invoice.id)
    assert (after.status, after.attempt_count, after.amount_paid, after.next_payment_attempt) == ("open", 1, 0, None)
    assert events_of(payments, "invoice.paid", "invoice.payment_failed") == {("invoice.payment_failed", invoice.id)}


def test_a_decline_of_an_auto_advancing_invoice_is_retried_later(payments):
    cus, _ = customer_paying_with(payments, "pm_card_chargeCustomerFail")
    invoice = open_invoice(payments, cus, auto_advance=True)

    with pytest.raises(PaymentDeclined):
        payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")

    after = payments.gateway.retrieve_invoice(invoice.id)
    assert after.status == "open" and after.next_payment_attempt is not None


def test_a_card_that_needs_authentication_is_payment_action_required(payments):
    cus, _ = customer_paying_with(payments, "pm_card_authenticationRequired")
    invoice = open_invoice(payments, cus)

    with pytest.raises(PaymentActionRequired) as raised:
        payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")

    assert raised.value.code == "invoice_payment_intent_requires_action"
    after = payments.gateway.retrieve_invoice(invoice.id)
    assert (after.status, after.attempt_count) == ("open", 1)
    assert events_of(payments, "invoice.payment_action_required") == {("invoice.payment_action_required", invoice.id)}


def test_paying_without_a_payment_method_is_refused_not_declined(payments):
    invoice = open_invoice(payments, customer(payments))

    with pytest.raises(StripeRequestRejected):
        payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")

    after = payments.gateway.retrieve_invoice(invoice.id)
    assert (after.status, after.attempt_count) == ("open", 0)


def test_a_sepa_debit_is_processing_until_it_settles(payments):
    cus, _ = customer_paying_with(payments, "pm_sepaDebit")
    invoice = open_invoice(payments, cus)

    processing = payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")
    settled = payments.await_settlement(invoice.id)

    assert (processing.status, processing.attempt_count, processing.amount_paid) == ("open", 1, 0)
    assert (settled.status, settled.amount_paid) == ("paid", 3774)
    assert events_of(payments, "invoice.paid") == {("invoice.paid", invoice.id)}


@pytest.mark.parametrize("state", ["draft", "paid", "void"])
def test_only_an_open_invoice_can_be_paid(payments, state):
    cus, _ = customer_paying_with(payments)
    invoice = with_lines(payments, cus, 2000)
    if state != "draft":
        payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize")
    if state == "paid":
        payments.gateway.pay_invoice(invoice.id, idempotency_key="pay:1")
    if state == "void":
        payments.gateway.void_invoice(invoice.id, idempotency_key="void")

    with pytest.raises(StripeRequestRejected):
        payments.gateway.pay_invoice(invoice.id, idempotency_key="pay:2")

    assert payments.gateway.retrieve_invoice(invoice.id).status == state


def test_paying_an_unknown_invoice_is_not_found(payments):
    with pytest.raises(StripeObjectNotFound):
        payments.gateway.pay_invoice("in_doesnotexist", idempotency_key="pay")


# --- voiding ---------------------------------------------------------------------------------------


def test_voiding_closes_an_open_invoice(payments):
    invoice = open_invoice(payments, customer(payments))

    voided = payments.gateway.void_invoice(invoice.id, idempotency_key="void")

    assert (voided.status, voided.total, voided.next_payment_attempt) == ("void", 3774, None)
    assert voided.status_transitions.voided_at is not None
    assert events_of(payments, "invoice.voided") == {("invoice.voided", invoice.id)}


@pytest.mark.parametrize("state", ["draft", "paid", "void"])
def test_only_an_open_invoice_can_be_voided(payments, state):
    cus, _ = customer_paying_with(payments)
    invoice = with_lines(payments, cus, 2000)
    if state != "draft":
        payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize")
    if state == "paid":
        payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")
    if state == "void":
        payments.gateway.void_invoice(invoice.id, idempotency_key="void:1")

    with pytest.raises(StripeRequestRejected):
        payments.gateway.void_invoice(invoice.id, idempotency_key="void:2")

    assert payments.gateway.retrieve_invoice(invoice.id).status == state


# --- reading and listing ---------------------------------------------------------------------------


def test_an_unknown_invoice_is_not_found(payments):
    with pytest.raises(StripeObjectNotFound):
        payments.gateway.retrieve_invoice("in_doesnotexist")


def test_a_customers_invoices_are_listed_newest_first_and_by_status(payments):
    cus, _ = customer_paying_with(payments)
    other = customer(payments, "user-2")
    first = open_invoice(payments, cus, key="first")
    second = with_lines(payments, cus, 100, key="second")
    third = open_invoice(payments, cus, key="third")
    payments.gateway.pay_invoice(third.id, idempotency_key="pay")
    draft(payments, other, "theirs")

    listed = payments.gateway.list_invoices(cus.id)

    assert [i.id for i in listed] == [third.id, second.id, first.id]
    assert [(i.status, i.total) for i in listed] == [("paid", 3774), ("draft", 100), ("open", 3774)]
    assert [i.id for i in payments.gateway.list_invoices(cus.id, status="draft")] == [second.id]
    assert payments.gateway.list_invoices(cus.id, status="void") == []


def test_listing_follows_every_page(payments):
    cus = customer(payments)
    created = [draft(payments, cus, f"draft:{n}", metadata={"n": str(n)}).id for n in range(105)]

    listed = payments.gateway.list_invoices(cus.id)

    assert [i.id for i in listed] == created[::-1]


def test_a_status_stripe_does_not_have_is_refused(payments):
    cus = customer(payments)

    with pytest.raises(StripeRequestRejected):
        payments.gateway.list_invoices(cus.id, status="overdue")


# --- events ----------------------------------------------------------------------------------------


def test_events_carry_the_invoice_as_it_was_then(payments):
    cus, _ = customer_paying_with(payments)
    invoice = open_invoice(payments, cus)
    payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")

    events = list(payments.gateway.list_events(created_after=0, types=["invoice.finalized", "invoice.paid"]))

    assert sorted((e.type, e.object.id, e.object.status) for e in events) == [
        ("invoice.finalized", invoice.id, "open"),
        ("invoice.paid", invoice.id, "paid"),
    ]
    assert all(e.id.startswith("evt_") and e.created > 0 for e in events)


def test_an_event_is_read_back_by_its_id(payments):
    invoice = open_invoice(payments, customer(payments))
    (listed,) = payments.gateway.list_events(created_after=0, types=["invoice.finalized"])

    event = payments.gateway.retrieve_event(listed.id)

    assert (event.id, event.type, event.created, event.object.id) == (
        listed.id,
        "invoice.finalized",
        listed.created,
        invoice.id,
    )


def test_an_unknown_event_is_not_found(payments):
    with pytest.raises(StripeObjectNotFound):
        payments.gateway.retrieve_event("evt_doesnotexist")


def test_events_are_those_created_after_the_given_second(payments):
    open_invoice(payments, customer(payments))
    (event,) = payments.gateway.list_events(created_after=0, types=["invoice.finalized"])

    def finalized_after(second: int) -> list[str]:
        return [e.id for e in payments.gateway.list_events(created_after=second, types=["invoice.finalized"])]

    assert (finalized_after(event.created), finalized_after(event.created - 1)) == ([], [event.id])


# --- credit notes ----------------------------------------------------------------------------------


def credit(
    invoice_id: str, *line_amounts: tuple[str, int], settlement: str = "pre_payment", **options
) -> CreditNoteRequest:
    """A credit note request of (invoice line id, amount) pairs."""
    options.setdefault("memo", None)
    options.setdefault("metadata", {"creditNoteId": "cn_1"})
    return CreditNoteRequest(
        invoice_id,
        tuple(CreditNoteLineRequest(line_id, amount) for line_id, amount in line_amounts),
        settlement,
        **options,
    )


def paid_invoice(payments, *amounts: int, key: str = "paid") -> StripeInvoice:
    cus, _ = customer_paying_with(payments)
    invoice = open_invoice(payments, cus, *amounts, key=key)
    return payments.gateway.pay_invoice(invoice.id, idempotency_key=f"{key}:pay")


def line_ids(payments, invoice: StripeInvoice) -> list[str]:
    return [line.id for line in payments.gateway.list_invoice_lines(invoice.id)]


def test_every_line_of_an_invoice_is_listed_with_its_id_and_kind(payments):
    invoice = with_lines(payments, customer(payments), *range(100, 112))

    listed = payments.gateway.list_invoice_lines(invoice.id)

    assert [(line.kind, line.amount, line.tax) for line in listed] == [(f"l{i}", 100 + i, 0) for i in range(12)]
    assert len({line.id for line in listed}) == 12 and all(line.id.startswith("il_") for line in listed)


def test_a_preview_has_the_totals_of_the_credit_note_then_issued_and_issues_nothing(payments):
    invoice = open_invoice(payments, customer(payments))
    first, second = line_ids(payments, invoice)
    request = credit(invoice.id, (first, 500), (second, 1774), memo="Korrektur")

    preview = payments.gateway.preview_credit_note(request)
    unchanged = payments.gateway.retrieve_invoice(invoice.id)
    issued = payments.gateway.create_credit_note(request, idempotency_key="credit")

    totals = ("total", "subtotal", "total_excluding_tax", "total_tax", "pre_payment_amount", "post_payment_amount")
    assert [getattr(preview, name) for name in totals] == [getattr(issued, name) for name in totals]
    assert [(line.invoice_line_id, line.amount) for line in preview.lines] == [(first, 500), (second, 1774)]
    assert [(line.invoice_line_id, line.amount) for line in issued.lines] == [(first, 500), (second, 1774)]
    assert (unchanged.amount_due, unchanged.pre_payment_credit_notes_amount) == (3774, 0)
    assert [note.id for note in payments.gateway.list_credit_notes(invoice.id)] == [issued.id]


def test_part_of_a_line_credited_on_an_open_invoice_reduces_what_is_due(payments):
    invoice = open_invoice(payments, customer(payments))
    first, _ = line_ids(payments, invoice)

    note = payments.gateway.create_credit_note(credit(invoice.id, (first, 500), memo="Kulanz"), idempotency_key="cn")

    assert note.id.startswith("cn_") and note.number
    assert (note.status, note.invoice_id, note.customer_id, note.currency) == (
        "issued",
        invoice.id,
        invoice.customer_id,
        "eur",
    )
    assert (note.total, note.pre_payment_amount, note.post_payment_amount, note.memo) == (500, 500, 0, "Kulanz")
    after = payments.gateway.retrieve_invoice(invoice.id)
    assert (after.status, after.total, after.amount_due, after.amount_remaining) == ("open", 3774, 3274, 3274)
    assert (after.pre_payment_credit_notes_amount, after.post_payment_credit_notes_amount) == (500, 0)


def test_crediting_all_that_is_left_to_pay_settles_the_open_invoice(payments):
    invoice = open_invoice(payments, customer(payments))
    first, second = line_ids(payments, invoice)

    payments.gateway.create_credit_note(credit(invoice.id, (first, 2000), (second, 1774)), idempotency_key="cn")

    settled = payments.gateway.retrieve_invoice(invoice.id)
    assert (settled.status, settled.amount_due, settled.amount_paid, settled.amount_remaining) == ("paid", 0, 0, 0)
    assert ("invoice.paid", invoice.id) in events_of(payments, "invoice.paid")


@pytest.mark.parametrize("settlement", ["refund", "balance", "out_of_band"])
def test_a_paid_invoice_is_credited_in_full_where_the_settlement_says(payments, settlement):
    invoice = paid_invoice(payments)
    first, second = line_ids(payments, invoice)

    note = payments.gateway.create_credit_note(
        credit(invoice.id, (first, 2000), (second, 1774), settlement=settlement, reason="order_change"),
        idempotency_key="cn",
    )

    assert (note.total, note.pre_payment_amount, note.post_payment_amount, note.type) == (3774, 0, 3774, "post_payment")
    assert note.reason == "order_change"
    assert (note.refund_amount, note.customer_balance_transaction_id is not None, note.out_of_band_amount) == {
        "refund": (3774, False, 0),
        "balance": (0, True, 0),
        "out_of_band": (0, False, 3774),
    }[settlement]
    if settlement == "refund":
        assert [refund.refund_id and refund.refund_id.startswith("re_") for refund in note.refunds] == [True]
    after = payments.gateway.retrieve_invoice(invoice.id)
    assert (after.status, after.amount_paid, after.post_payment_credit_notes_amount) == ("paid", 3774, 3774)


def test_credit_on_the_balance_is_the_next_invoices_starting_balance(payments):
    invoice = paid_invoice(payments)
    first, second = line_ids(payments, invoice)
    payments.gateway.create_credit_note(
        credit(invoice.id, (first, 2000), (second, 1774), settlement="balance"), idempotency_key="cn"
    )
    cus_id = invoice.customer_id
    assert cus_id is not None

    following = with_lines(payments, StripeCustomer(cus_id), 2000, key="next")
    finalized = payments.gateway.finalize_invoice(following.id, idempotency_key="next:finalize")

    assert (following.starting_balance, following.amount_due) == (-3774, 0)
    # The credit pays the whole 20.00 and what is left of it stays on the balance.
    assert (finalized.status, finalized.amount_due, finalized.ending_balance) == ("paid", 0, -1774)


def test_an_amount_due_below_the_minimum_charge_is_carried_to_the_balance_and_collected_next(payments):
    cus = customer(payments)
    small = with_lines(payments, cus, 30, key="small")

    finalized = payments.gateway.finalize_invoice(small.id, idempotency_key="small:finalize", auto_advance=True)

    # Not charged: marked paid, the 0.30 on the balance (a debit), the next invoice collects it.
    assert (finalized.status, finalized.total, finalized.amount_due) == ("paid", 30, 0)
    assert (finalized.starting_balance, finalized.ending_balance) == (0, 30)
    following = with_lines(payments, cus, 2000, key="next")
    assert (following.starting_balance, following.amount_due) == (30, 2030)
    collected = payments.gateway.finalize_invoice(following.id, idempotency_key="next:finalize")
    assert (collected.amount_due, collected.ending_balance) == (2030, 0)


def test_more_than_an_invoice_line_has_left_is_refused(payments):
    invoice = open_invoice(payments, customer(payments))
    first, _ = line_ids(payments, invoice)
    payments.gateway.create_credit_note(credit(invoice.id, (first, 1500)), idempotency_key="cn:1")

    with pytest.raises(StripeRequestRejected) as refused:
        payments.gateway.create_credit_note(credit(invoice.id, (first, 501)), idempotency_key="cn:2")

    assert refused.value.param == "lines[0][amount]"
    assert payments.gateway.retrieve_invoice(invoice.id).amount_due == 3774 - 1500
    assert payments.gateway.create_credit_note(credit(invoice.id, (first, 500)), idempotency_key="cn:3").total == 500


def test_more_than_the_invoice_still_asks_is_refused(payments):
    # The customer's balance paid 7.74 of the next invoice: only 12.26 of its 20.00 are left to credit.
    invoice = paid_invoice(payments)
    first, _ = line_ids(payments, invoice)
    payments.gateway.create_credit_note(credit(invoice.id, (first, 774), settlement="balance"), idempotency_key="cn")
    assert invoice.customer_id is not None
    following = open_invoice(payments, StripeCustomer(invoice.customer_id), 2000, key="next")
    (line_id,) = line_ids(payments, following)
    assert following.amount_due == 1226

    with pytest.raises(StripeRequestRejected):
        payments.gateway.create_credit_note(credit(following.id, (line_id, 2000)), idempotency_key="cn:next")

    assert payments.gateway.list_credit_notes(following.id) == []


@pytest.mark.parametrize(("paid", "settlement"), [(True, "pre_payment"), (False, "refund"), (False, "balance")])
def test_a_settlement_that_does_not_fit_the_invoice_is_refused(payments, paid, settlement):
    invoice = paid_invoice(payments) if paid else open_invoice(payments, customer(payments))
    first, _ = line_ids(payments, invoice)

    with pytest.raises(StripeRequestRejected):
        payments.gateway.create_credit_note(
            credit(invoice.id, (first, 100), settlement=settlement), idempotency_key="cn"
        )

    assert payments.gateway.list_credit_notes(invoice.id) == []


def test_a_draft_or_void_invoice_takes_no_credit_note(payments):
    cus = customer(payments)
    drafted = with_lines(payments, cus, 2000, key="draft")
    voided = payments.gateway.void_invoice(open_invoice(payments, cus, 2000, key="to-void").id, idempotency_key="void")

    for invoice in (drafted, voided):
        (line_id,) = line_ids(payments, invoice)
        with pytest.raises(StripeRequestRejected):
            payments.gateway.create_credit_note(credit(invoice.id, (line_id, 100)), idempotency_key=f"cn:{invoice.id}")


def test_the_same_key_twice_issues_one_credit_note(payments):
    invoice = open_invoice(payments, customer(payments))
    first, _ = line_ids(payments, invoice)
    request = credit(invoice.id, (first, 500))

    issued = payments.gateway.create_credit_note(request, idempotency_key="cn")
    again = payments.gateway.create_credit_note(request, idempotency_key="cn")

    assert again == issued
    assert [note.id for note in payments.gateway.list_credit_notes(invoice.id)] == [issued.id]
    assert payments.gateway.retrieve_invoice(invoice.id).amount_due == 3274
    with pytest.raises(IdempotencyKeyReused):
        payments.gateway.create_credit_note(credit(invoice.id, (first, 600)), idempotency_key="cn")


def test_a_credit_note_is_found_again_by_its_metadata(payments):
    invoice = open_invoice(payments, customer(payments))
    first, second = line_ids(payments, invoice)
    one = payments.gateway.create_credit_note(
        credit(invoice.id, (first, 100), metadata={"creditNoteId": "cn_2026-11_u1_1"}), idempotency_key="cn:1"
    )
    two = payments.gateway.create_credit_note(
        credit(invoice.id, (second, 100), metadata={"creditNoteId": "cn_2026-11_u1_2"}), idempotency_key="cn:2"
    )

    listed = payments.gateway.list_credit_notes(invoice.id)

    assert [note.id for note in listed] == [two.id, one.id]
    (found,) = [note for note in listed if note.metadata.get("creditNoteId") == "cn_2026-11_u1_1"]
    assert (found.id, found.lines[0].invoice_line_id, found.lines[0].amount) == (one.id, first, 100)
    assert (
        payments.gateway.list_credit_notes(open_invoice(payments, customer(payments, "user-2"), key="other").id) == []
    )


def test_an_issued_credit_note_is_a_credit_note_created_event(payments):
    invoice = open_invoice(payments, customer(payments))
    first, _ = line_ids(payments, invoice)
    note = payments.gateway.create_credit_note(credit(invoice.id, (first, 500)), idempotency_key="cn")

    (event,) = payments.gateway.list_events(created_after=0, types=["credit_note.created"])

    assert isinstance(event.object, StripeCreditNote)
    assert (event.object.id, event.object.invoice_id, event.object.total, event.object.status) == (
        note.id,
        invoice.id,
        500,
        "issued",
    )
    assert dict(event.object.metadata) == {"creditNoteId": "cn_1"}


def _manually_taxed(payments, *amounts_and_taxes: tuple[int, int]) -> StripeInvoice:
    invoice = draft(payments, customer(payments))
    payments.gateway.add_invoice_lines(
        invoice_id=invoice.id,
        lines=[
            InvoiceLine(amount, f"line {i}", {"line": f"l{i}"}, tax_amount=tax, tax_rate=VAT_19)
            for i, (amount, tax) in enumerate(amounts_and_taxes)
        ],
        idempotency_key="lines",
    )
    return payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize")


def test_an_invoice_line_names_the_rate_of_its_manual_tax(payments):
    invoice = _manually_taxed(payments, (2000, 380), (1774, 337))

    listed = payments.gateway.list_invoice_lines(invoice.id)

    assert [(line.kind, line.amount, line.tax) for line in listed] == [("l0", 2000, 380), ("l1", 1774, 337)]
    rates = {tax.tax_rate_id for line in listed for tax in line.taxes}
    assert len(rates) == 1 and None not in rates  # the one rate Stripe made for VAT_19's data
    assert [tax.taxable_amount for line in listed for tax in line.taxes] == [2000, 1774]


def test_a_credit_note_line_takes_back_exactly_the_tax_given(payments):
    invoice = _manually_taxed(payments, (2000, 380), (1774, 337))
    first, second = payments.gateway.list_invoice_lines(invoice.id)
    rate_id = first.taxes[0].tax_rate_id
    request = CreditNoteRequest(
        invoice.id,
        (
            CreditNoteLineRequest(first.id, 1001, tax_amount=190, tax_rate_id=rate_id),
            CreditNoteLineRequest(second.id, 1774, tax_amount=337, tax_rate_id=rate_id),
        ),
        "pre_payment",
        memo=None,
        metadata={},
    )

    preview = payments.gateway.preview_credit_note(request)
    note = payments.gateway.create_credit_note(request, idempotency_key="cn")

    assert [(line.amount, line.tax) for line in note.lines] == [(1001, 190), (1774, 337)]
    assert (note.total_excluding_tax, note.total_tax, note.total) == (2775, 527, 3302)
    assert preview.total == note.total == request.gross
    assert payments.gateway.retrieve_invoice(invoice.id).amount_due == 4491 - 3302


def test_tax_given_beyond_what_the_line_has_left_is_refused(payments):
    invoice = _manually_taxed(payments, (2000, 380))
    (line,) = payments.gateway.list_invoice_lines(invoice.id)
    rate_id = line.taxes[0].tax_rate_id

    def taking(tax: int) -> CreditNoteRequest:
        lines = (CreditNoteLineRequest(line.id, 1000, tax_amount=tax, tax_rate_id=rate_id),)
        return CreditNoteRequest(invoice.id, lines, "pre_payment", memo=None, metadata={})

    payments.gateway.create_credit_note(taking(300), idempotency_key="cn:1")
    with pytest.raises(StripeRequestRejected):
        payments.gateway.create_credit_note(taking(81), idempotency_key="cn:2")

    assert payments.gateway.create_credit_note(taking(80), idempotency_key="cn:3").total_tax == 80


def test_a_paid_invoice_with_tax_is_refunded_its_gross(payments):
    cus, _ = customer_paying_with(payments)
    invoice = draft(payments, cus)
    payments.gateway.add_invoice_lines(
        invoice_id=invoice.id,
        lines=[InvoiceLine(2000, "Grundgebühr", {"line": "base-fee"}, tax_amount=380, tax_rate=VAT_19)],
        idempotency_key="lines",
    )
    payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize")
    payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")
    (line,) = payments.gateway.list_invoice_lines(invoice.id)
    lines = (CreditNoteLineRequest(line.id, 500, tax_amount=95, tax_rate_id=line.taxes[0].tax_rate_id),)

    note = payments.gateway.create_credit_note(
        CreditNoteRequest(invoice.id, lines, "refund", memo=None, metadata={}), idempotency_key="cn"
    )

    assert (note.total, note.post_payment_amount, note.refund_amount) == (595, 595, 595)


def test_without_a_tax_amount_a_line_gives_back_its_tax_in_proportion(payments):
    invoice = _taxed(payments, VAT_19, 2000, 1774)
    opened = payments.gateway.finalize_invoice(invoice.id, idempotency_key="finalize")
    first, _ = payments.gateway.list_invoice_lines(opened.id)

    note = payments.gateway.create_credit_note(credit(opened.id, (first.id, 1000)), idempotency_key="cn")

    assert (first.tax, note.lines[0].tax, note.total_tax, note.total) == (380, 190, 190, 1190)
    assert payments.gateway.retrieve_invoice(opened.id).amount_due == 4491 - 1190


# --- idempotency -----------------------------------------------------------------------------------


def test_the_same_key_twice_creates_one_customer(payments):
    first = customer(payments, "user-1")
    again = customer(payments, "user-1")

    assert again == first


def test_the_same_key_twice_adds_the_lines_once(payments):
    invoice = draft(payments, customer(payments))
    add = dict(invoice_id=invoice.id, lines=lines(2000, 1774), idempotency_key="lines")

    first = payments.gateway.add_invoice_lines(**add)
    again = payments.gateway.add_invoice_lines(**add)

    assert first.total == again.total == payments.gateway.retrieve_invoice(invoice.id).total == 3774


def test_the_same_key_twice_charges_once(payments):
    cus, _ = customer_paying_with(payments)
    invoice = open_invoice(payments, cus)

    first = payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")
    again = payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")

    assert again == first and first.attempt_count == 1
    assert len(list(payments.gateway.list_events(created_after=0, types=["invoice.paid"]))) == 1


def test_a_replay_answers_what_the_first_request_answered(payments):
    cus = customer(payments)
    first = draft(payments, cus, "draft")
    payments.gateway.add_invoice_lines(invoice_id=first.id, lines=lines(2000), idempotency_key="lines")

    again = draft(payments, cus, "draft")

    assert (again.id, again.total) == (first.id, 0)
    assert payments.gateway.retrieve_invoice(first.id).total == 2000
    assert [i.id for i in payments.gateway.list_invoices(cus.id)] == [first.id]


def test_a_decline_is_replayed_under_its_key_without_a_second_attempt(payments):
    cus, _ = customer_paying_with(payments, "pm_card_chargeCustomerFail")
    invoice = open_invoice(payments, cus)

    for _ in range(2):
        with pytest.raises(PaymentDeclined):
            payments.gateway.pay_invoice(invoice.id, idempotency_key="pay")

    assert payments.gateway.retrieve_invoice(invoice.id).attempt_count == 1


def test_another_request_under_a_used_key_is_refused(payments):
    cus = customer(payments, "user-1")

    with pytest.raises(IdempotencyKeyReused):
        payments.gateway.create_customer(account_id="user-2", idempotency_key="customer:user-1")
    with pytest.raises(IdempotencyKeyReused):
        payments.gateway.create_setup_intent(customer_id=cus.id, idempotency_key="customer:user-1")


def test_a_request_refused_as_invalid_leaves_its_key_free(payments):
    cus = customer(payments)

    with pytest.raises(StripeRequestRejected) as refused:
        draft(payments, cus, "draft", metadata={"note": "x" * 501})  # Stripe: values up to 500 characters
    created = draft(payments, cus, "draft", metadata={"note": "x" * 500})

    assert not isinstance(refused.value, IdempotencyKeyReused)
    assert dict(created.metadata) == {"note": "x" * 500}


def test_an_idempotency_key_longer_than_stripe_keeps_is_refused(payments):
    with pytest.raises(StripeRequestRejected):
        payments.gateway.create_customer(account_id="user-1", idempotency_key="k" * 256)
    assert payments.gateway.create_customer(account_id="user-1", idempotency_key="k" * 255).id


def test_every_write_needs_an_idempotency_key(payments):
    with pytest.raises(ValueError):
        payments.gateway.create_customer(account_id="user-1", idempotency_key="")


def test_a_failure_before_execution_leaves_nothing_and_the_key_free(payments):
    cus = customer(payments)
    payments.fail_next_before_execution("create_draft_invoice")

    with pytest.raises(StripeUnavailable) as failed:
        draft(payments, cus, "draft")
    assert not isinstance(failed.value, StripeFailedAfterExecution)
    assert payments.gateway.list_invoices(cus.id) == []

    created = draft(payments, cus, "draft")
    assert [i.id for i in payments.gateway.list_invoices(cus.id)] == [created.id]


def test_a_failure_after_execution_took_effect_and_is_replayed_under_its_key(payments):
    cus = customer(payments)
    payments.fail_next_after_execution("create_draft_invoice")

    for _ in range(2):
        with pytest.raises(StripeFailedAfterExecution):
            draft(payments, cus, "draft")

    (created,) = payments.gateway.list_invoices(cus.id)
    assert created.status == "draft"
