"""Applying Stripe events to the records, with in-memory fakes: exactly once, forward only, any order."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_core.domain.records import Account, Invoice, SavedPaymentMethod, SetupFailure
from billing_core.errors import InvalidStripeEvent
from billing_core.ports import EventClaim, StripeEvent
from billing_core.use_cases.apply_event import (
    CLAIM_LEASE_SECONDS,
    EventOutcome,
    EventPorts,
    apply_event,
    process_event,
)
from tests.support.fakes import FakeAccountRepository, FakeInvoiceRepository, FakePaymentGateway, FakeProcessedEvents
from tests.support.observe import event_applications
from tests.support.records import an_invoice

T0 = 1_700_000_000
_ids = itertools.count(1)


def invoice_object(
    status: str,
    *,
    attempt_count: int = 0,
    next_attempt: int | None = None,
    paid_at: int | None = None,
    number: str | None = "ABC-0001",
    stripe_id: str = "in_1",
    account_id: str = "user-1",
    invoice_id: str = "inv_2024-11_user-1",
) -> dict[str, Any]:
    """A Stripe invoice as events carry it (the fields the rules read)."""
    return {
        "id": stripe_id,
        "object": "invoice",
        "status": status,
        "customer": "cus_1",
        "number": number,
        "attempt_count": attempt_count,
        "next_payment_attempt": next_attempt,
        "hosted_invoice_url": f"https://invoice.example/{stripe_id}" if number else None,
        "invoice_pdf": f"https://invoice.example/{stripe_id}/pdf" if number else None,
        "status_transitions": {"paid_at": paid_at, "finalized_at": T0 if number else None},
        "metadata": {"userId": account_id, "invoiceId": invoice_id},
    }


def event(event_type: str, obj: dict[str, Any], created: int = T0, previous: dict | None = None) -> StripeEvent:
    """A Stripe event, read from its JSON envelope as the consumer reads a queued webhook."""
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return StripeEvent.from_json(
        {"id": f"evt_{next(_ids)}", "object": "event", "type": event_type, "created": created, "data": data}
    )


def billing_record(status: str = "draft", **extra: Any) -> Invoice:
    """The billing run's record of the invoice, before any webhook."""
    return an_invoice(status=status, **{"stripe_invoice_id": "in_1", **extra})


def make_ports(*records: Invoice, accounts: tuple[Account, ...] = ()) -> EventPorts:
    gateway = FakePaymentGateway()
    gateway.customers["cus_1"] = {
        "id": "cus_1",
        "object": "customer",
        "email": "old@example.com",
        "invoice_settings": {"default_payment_method": None},
        "metadata": {"userId": "user-1"},
    }
    return EventPorts(
        invoices=FakeInvoiceRepository(records),
        accounts=FakeAccountRepository(accounts),
        payments=gateway,
        events=FakeProcessedEvents(clock=lambda: T0 + 10),
        clock=lambda: T0 + 10,
    )


def stored(ports: EventPorts) -> Invoice:
    record = ports.invoices.get("user-1", "inv_2024-11_user-1")
    assert record is not None
    return record


def comparable(record: Invoice) -> Invoice:
    """A record without the wall-clock time of the write."""
    return dataclasses.replace(record, updated_at=0)


# --- invoice lifecycle --------------------------------------------------------------------------


def test_a_finalization_failure_is_recorded_with_stripes_reason_and_cleared_by_the_finalization():
    ports = make_ports(billing_record("pending"))
    failed = invoice_object("draft", number=None)
    failed["last_finalization_error"] = {"type": "invalid_request_error", "message": "Tax location missing."}

    assert process_event(event("invoice.finalization_failed", failed), ports) is EventOutcome.APPLIED
    assert (stored(ports).status, stored(ports).stripe.finalization_error) == ("draft", "Tax location missing.")

    process_event(event("invoice.finalized", invoice_object("open"), created=T0 + 60), ports)
    assert stored(ports).status == "open" and stored(ports).stripe.finalization_error is None


def test_paid_event_sets_status_paid_at_number_and_links():
    ports = make_ports(billing_record("open"))
    paid = event("invoice.paid", invoice_object("paid", attempt_count=1, paid_at=T0 + 5), created=T0 + 5)

    assert process_event(paid, ports) is EventOutcome.APPLIED

    record = stored(ports)
    assert record.status == "paid"
    assert record.payment.paid_at == (T0 + 5) * 1000
    assert record.stripe.number == "ABC-0001"
    assert record.stripe.hosted_invoice_url == "https://invoice.example/in_1"
    assert record.stripe.invoice_pdf == "https://invoice.example/in_1/pdf"
    assert record.payment.attempt_count == 1
    assert record.payment.last_event_at == (T0 + 5) * 1000
    assert record.payment.next_payment_attempt is None


def test_late_payment_failed_after_paid_changes_nothing():
    ports = make_ports(billing_record("open"))
    process_event(event("invoice.paid", invoice_object("paid", attempt_count=1, paid_at=T0 + 5), T0 + 5), ports)
    before = stored(ports)

    late = event("invoice.payment_failed", invoice_object("open", attempt_count=1, next_attempt=T0 + 86400), T0 + 1)
    assert process_event(late, ports) is EventOutcome.UNCHANGED

    assert stored(ports) == before


def test_payment_failed_records_attempt_and_next_attempt_then_a_later_attempt_replaces_it():
    ports = make_ports(billing_record("open"))
    first = event("invoice.payment_failed", invoice_object("open", attempt_count=1, next_attempt=T0 + 100), T0 + 1)
    second = event("invoice.payment_failed", invoice_object("open", attempt_count=2, next_attempt=T0 + 200), T0 + 2)

    process_event(second, ports)
    assert process_event(first, ports) is EventOutcome.UNCHANGED

    record = stored(ports)
    assert (record.status, record.payment.attempt_count, record.payment.next_payment_attempt) == (
        "payment_failed",
        2,
        (T0 + 200) * 1000,
    )


def test_record_is_found_by_stripe_invoice_id_when_metadata_is_missing():
    ports = make_ports(billing_record("open"))
    obj = invoice_object("void", number="ABC-0001")
    obj["metadata"] = {}

    assert process_event(event("invoice.voided", obj), ports) is EventOutcome.APPLIED
    assert stored(ports).status == "void"


def test_event_for_an_invoice_of_someone_else_is_acknowledged_and_marked_done():
    ports = make_ports()
    foreign = invoice_object("paid", stripe_id="in_other")
    foreign["metadata"] = {}
    unknown = event("invoice.paid", foreign)

    assert process_event(unknown, ports) is EventOutcome.UNKNOWN
    assert event_applications(ports.events, unknown.id) == 1


def test_event_naming_an_account_billing_lacks_is_not_applied_and_waits_for_the_account():
    ports = make_ports()
    paid = event("invoice.paid", invoice_object("paid", paid_at=T0))

    assert process_event(paid, ports) is EventOutcome.UNKNOWN_ACCOUNT
    # Not marked done: the claim is free for the next delivery.
    assert event_applications(ports.events, paid.id) == 0
    assert ports.events.claim_event(paid.id, owner="t", lease_seconds=60, retention_seconds=60) is EventClaim.CLAIMED
    ports.events.release_event(paid.id, owner="t")

    # The account and its record arrive (e.g. the operator restored them); the same event now applies.
    ports.accounts.put(account())
    ports.invoices.create_if_absent(billing_record("open"))
    assert process_event(paid, ports) is EventOutcome.APPLIED
    assert stored(ports).status == "paid"


def test_record_billed_by_another_stripe_invoice_is_left_alone():
    ports = make_ports(billing_record("open", stripe_invoice_id="in_replacement"))

    outcome = process_event(event("invoice.paid", invoice_object("paid", stripe_id="in_1", paid_at=T0)), ports)

    assert outcome is EventOutcome.UNKNOWN
    assert stored(ports).status == "open"


def test_invoice_of_another_customer_carrying_our_metadata_leaves_the_record_unchanged():
    # The job has not recorded its draft yet.
    record = billing_record("pending", stripe_customer_id="cus_1", stripe_invoice_id=None)
    ports = make_ports(record)
    before = stored(ports)
    foreign = invoice_object("paid", stripe_id="in_foreign", paid_at=T0)
    foreign["customer"] = "cus_other"

    outcome = process_event(event("invoice.paid", foreign), ports)

    assert outcome is EventOutcome.UNKNOWN
    assert stored(ports) == before


class JobRecordsItsDraftFirst(FakeInvoiceRepository):
    """The invoice job saves its own draft's id just before the event's write arrives."""

    def update(self, account_id, invoice_id, changes, *, conditions=()):
        if not getattr(self, "raced", False):
            self.raced = True
            super().update(account_id, invoice_id, {"stripe_invoice_id": "in_1"})
        return super().update(account_id, invoice_id, changes, conditions=conditions)


def test_an_event_never_overwrites_the_stripe_invoice_id_the_job_recorded_meanwhile():
    record = billing_record("pending", stripe_customer_id="cus_1", stripe_invoice_id=None)
    ports = make_ports()
    ports.invoices = JobRecordsItsDraftFirst([record])

    outcome = process_event(event("invoice.finalized", invoice_object("open", stripe_id="in_2")), ports)

    assert outcome is EventOutcome.UNKNOWN
    assert (stored(ports).stripe.invoice_id, stored(ports).status) == ("in_1", "pending")


def test_billing_run_status_further_along_than_the_event_is_kept():
    # The run recorded "paid" from Stripe's pay response (no order key); a late finalized event must not reopen it.
    ports = make_ports(billing_record("paid"))

    assert process_event(event("invoice.finalized", invoice_object("open")), ports) is EventOutcome.UNCHANGED
    assert stored(ports).status == "paid"


# --- exactly once --------------------------------------------------------------------------------


def test_second_delivery_of_an_event_is_a_duplicate_and_applied_once():
    ports = make_ports(billing_record("draft"))
    finalized = event("invoice.finalized", invoice_object("open"))

    assert process_event(finalized, ports) is EventOutcome.APPLIED
    assert process_event(dataclasses.replace(finalized), ports) is EventOutcome.DUPLICATE
    assert event_applications(ports.events, finalized.id) == 1


def test_event_claimed_by_another_worker_is_left_for_redelivery_until_its_lease_runs_out():
    now = [T0]
    ports = make_ports(billing_record("draft"))
    ports.events = FakeProcessedEvents(clock=lambda: now[0])
    finalized = event("invoice.finalized", invoice_object("open"))
    claim = ports.events.claim_event(
        finalized.id, owner="other", lease_seconds=CLAIM_LEASE_SECONDS, retention_seconds=99
    )
    assert claim is EventClaim.CLAIMED

    assert process_event(finalized, ports) is EventOutcome.IN_PROGRESS
    assert stored(ports).status == "draft"

    now[0] += CLAIM_LEASE_SECONDS + 1  # the other worker died holding the claim
    assert process_event(finalized, ports) is EventOutcome.APPLIED
    assert event_applications(ports.events, finalized.id) == 1


def test_a_slow_application_keeps_its_claim_renewed_so_no_other_worker_applies_it_too(monkeypatch):
    from billing_core.use_cases import apply_event as module

    now = [T0]
    ports = make_ports(billing_record("draft"))
    ports.events = FakeProcessedEvents(clock=lambda: now[0])
    finalized = event("invoice.finalized", invoice_object("open"))
    seen_by_another: list[EventClaim] = []
    renewed = threading.Event()
    renew = ports.events.renew_event_claim

    def renew_and_tell(*args, **kwargs):
        renewed.set()
        return renew(*args, **kwargs)

    def slow(event_, ports_):  # a stalled Stripe: two minutes in the handler
        for _ in range(4):
            now[0] += 30
            renewed.clear()
            assert renewed.wait(5)
        seen_by_another.append(
            ports_.events.claim_event(event_.id, owner="other", lease_seconds=60, retention_seconds=99)
        )
        return EventOutcome.APPLIED

    monkeypatch.setattr(module, "CLAIM_RENEW_EVERY_SECONDS", 0.01)
    monkeypatch.setattr(module, "apply_event", slow)
    monkeypatch.setattr(ports.events, "renew_event_claim", renew_and_tell)

    assert process_event(finalized, ports) is EventOutcome.APPLIED
    assert seen_by_another == [EventClaim.IN_PROGRESS]  # 120 s after the claim, still this worker's
    assert event_applications(ports.events, finalized.id) == 1


def test_a_worker_that_stalled_past_its_claim_does_not_count_the_event_another_worker_applied(monkeypatch, caplog):
    """Worker A freezes (its renewals with it) while applying; B claims after the lease, applies, completes."""
    from billing_core.use_cases import apply_event as module

    now = [T0]
    ports = make_ports(billing_record("draft"))
    ports.events = FakeProcessedEvents(clock=lambda: now[0])
    finalized = event("invoice.finalized", invoice_object("open"))

    calls = itertools.count()

    def frozen_then_wakes(event_, ports_):
        if next(calls) == 0:  # worker A, frozen here past its lease while B does the whole job
            now[0] += CLAIM_LEASE_SECONDS + 1
            assert process_event(event_, ports_) is EventOutcome.APPLIED
        return apply_event(event_, ports_)

    monkeypatch.setattr(module, "apply_event", frozen_then_wakes)
    caplog.set_level("WARNING")

    assert process_event(finalized, ports) is EventOutcome.DUPLICATE
    assert event_applications(ports.events, finalized.id) == 1
    assert stored(ports).status == "open"
    assert "taken over by another worker" in caplog.text


def test_a_failed_application_releases_the_claim_so_the_redelivery_applies_it():
    ports = make_ports(accounts=(Account("user-1", stripe_customer_id="cus_1"),))
    intent = {
        "id": "seti_1",
        "object": "setup_intent",
        "customer": "cus_1",
        "payment_method": "pm_card_visa",
        "metadata": {},
    }
    succeeded = event("setup_intent.succeeded", intent)
    ports.payments.fail_next("set_default_payment_method", RuntimeError("network"))

    with pytest.raises(RuntimeError):
        process_event(succeeded, ports)
    assert process_event(succeeded, ports) is EventOutcome.APPLIED
    assert event_applications(ports.events, succeeded.id) == 1


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"id": "evt_1"},
        {"id": "evt_1", "type": "invoice.paid"},
        {"id": "", "type": "invoice.paid", "data": {"object": {}}},
        {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"object": "invoice"}}},
    ],
)
def test_payload_that_is_not_a_stripe_event_is_rejected(body):
    with pytest.raises(InvalidStripeEvent):
        StripeEvent.from_json(body)


def test_event_whose_object_is_not_what_its_type_says_is_rejected_and_not_marked_done():
    ports = make_ports(billing_record("draft"))
    paid = event("invoice.paid", {"id": "cus_1", "object": "customer"})

    with pytest.raises(InvalidStripeEvent, match="StripeInvoice"):
        process_event(paid, ports)
    assert event_applications(ports.events, paid.id) == 0
    assert stored(ports).status == "draft"


def test_unused_event_type_is_ignored_without_a_claim():
    ports = make_ports()
    created = event("customer.created", {"id": "cus_1", "object": "customer"})

    assert process_event(created, ports) is EventOutcome.IGNORED
    assert ports.events.claims == {}


# --- any order, any duplicates ------------------------------------------------------------------

# One invoice's life: finalized, two failed attempts (the second needing authentication), then paid.
LIFE = [
    event("invoice.finalized", invoice_object("open", next_attempt=T0 + 10), T0),
    event("invoice.payment_failed", invoice_object("open", attempt_count=1, next_attempt=T0 + 100), T0 + 10),
    event("invoice.payment_action_required", invoice_object("open", attempt_count=2), T0 + 100),
    event("invoice.payment_failed", invoice_object("open", attempt_count=2, next_attempt=T0 + 300), T0 + 100),
    event("invoice.paid", invoice_object("paid", attempt_count=3, paid_at=T0 + 300), T0 + 300),
]


def _final_record(sequence: list[StripeEvent], *, deduplicate: bool) -> Invoice:
    ports = make_ports(billing_record("draft"))
    for delivered in sequence:
        (process_event if deduplicate else apply_event)(delivered, ports)
    return comparable(stored(ports))


IN_ORDER = _final_record(LIFE, deduplicate=True)

deliveries = st.lists(st.sampled_from(range(len(LIFE))), min_size=len(LIFE), max_size=3 * len(LIFE)).filter(
    lambda picks: set(picks) == set(range(len(LIFE)))
)


@settings(max_examples=200, deadline=None)
@given(deliveries)
def test_any_permutation_with_duplicates_ends_in_the_same_record(picks):
    sequence = [LIFE[i] for i in picks]

    assert _final_record(sequence, deduplicate=True) == IN_ORDER
    # The forward-only rule alone (no ledger) gives the same answer: duplicates are harmless either way.
    assert _final_record(sequence, deduplicate=False) == IN_ORDER


def test_the_record_in_order_is_the_paid_one():
    assert (
        IN_ORDER.status == "paid"
        and IN_ORDER.payment.attempt_count == 3
        and IN_ORDER.payment.paid_at == (T0 + 300) * 1000
    )


@settings(max_examples=100, deadline=None)
@given(st.permutations(range(4)))
def test_retrying_events_without_paid_end_in_the_latest_attempt(order):
    sequence = [LIFE[i] for i in order]

    record = _final_record(sequence, deduplicate=True)

    # Attempt 2 reported both "failed" and "needs authentication": the customer must act, so that wins.
    assert (record.status, record.payment.attempt_count) == ("action_required", 2)
    assert record == _final_record(LIFE[:4], deduplicate=True)


# --- payment methods and customers -----------------------------------------------------------------


def account(**extra: Any) -> Account:
    return Account("user-1", stripe_customer_id="cus_1", email="old@example.com", **extra)


def setup_intent(pm: str = "pm_card_visa", intent_id: str = "seti_1") -> dict[str, Any]:
    return {
        "id": intent_id,
        "object": "setup_intent",
        "customer": "cus_1",
        "payment_method": pm,
        "metadata": {"userId": "user-1"},
        "status": "succeeded",
    }


def test_setup_intent_succeeded_makes_it_the_default_in_stripe_and_stores_display_fields():
    ports = make_ports(accounts=(account(),))

    assert process_event(event("setup_intent.succeeded", setup_intent()), ports) is EventOutcome.APPLIED

    stored_account = ports.accounts.get("user-1")
    assert stored_account.payment_method == SavedPaymentMethod("pm_card_visa", "card", "visa", "4242")
    assert ports.payments.customers["cus_1"]["invoice_settings"]["default_payment_method"] == "pm_card_visa"
    [call] = ports.payments.calls_to("set_default_payment_method")
    assert call.idempotency_key == "default-payment-method:seti_1"


def test_sepa_payment_method_replaces_card_display_fields():
    ports = make_ports(accounts=(account(),))
    process_event(event("setup_intent.succeeded", setup_intent(), T0), ports)

    process_event(event("setup_intent.succeeded", setup_intent("pm_sepa_debit", "seti_2"), T0 + 5), ports)

    stored_account = ports.accounts.get("user-1")
    assert (stored_account.payment_method.type, stored_account.payment_method.last4) == ("sepa_debit", "3000")
    assert stored_account.payment_method.brand is None


def test_older_setup_intent_arriving_late_does_not_replace_the_newer_default():
    ports = make_ports(accounts=(account(),))
    process_event(event("setup_intent.succeeded", setup_intent("pm_card_mastercard", "seti_2"), T0 + 5), ports)

    late = event("setup_intent.succeeded", setup_intent("pm_card_visa", "seti_1"), T0)
    assert process_event(late, ports) is EventOutcome.UNCHANGED
    assert ports.accounts.get("user-1").payment_method.id == "pm_card_mastercard"


def test_setup_failure_is_recorded_with_codes_only():
    ports = make_ports(accounts=(account(),))
    intent = dict(
        setup_intent(),
        status="requires_payment_method",
        last_setup_error={
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
        },
    )

    assert process_event(event("setup_intent.setup_failed", intent), ports) is EventOutcome.APPLIED
    assert ports.accounts.get("user-1").last_setup_error == SetupFailure("seti_1", "card_declined", "generic_decline")


def test_detaching_the_default_payment_method_clears_it():
    ports = make_ports(accounts=(account(),))
    process_event(event("setup_intent.succeeded", setup_intent(), T0), ports)

    detached = event(
        "payment_method.detached",
        {"id": "pm_card_visa", "object": "payment_method", "customer": None},
        T0 + 5,
        previous={"customer": "cus_1"},
    )
    assert process_event(detached, ports) is EventOutcome.APPLIED

    stored_account = ports.accounts.get("user-1")
    assert stored_account.payment_method is None


def test_detaching_another_payment_method_keeps_the_default():
    ports = make_ports(accounts=(account(),))
    process_event(event("setup_intent.succeeded", setup_intent(), T0), ports)

    detached = event(
        "payment_method.detached",
        {"id": "pm_other", "object": "payment_method", "customer": None},
        T0 + 5,
        previous={"customer": "cus_1"},
    )
    assert process_event(detached, ports) is EventOutcome.UNCHANGED
    assert ports.accounts.get("user-1").payment_method.id == "pm_card_visa"


def test_customer_updated_syncs_email_and_default_payment_method():
    ports = make_ports(accounts=(account(),))
    customer = {
        "id": "cus_1",
        "object": "customer",
        "email": "new@example.com",
        "metadata": {"userId": "user-1"},
        "invoice_settings": {"default_payment_method": "pm_card_mastercard"},
    }

    assert process_event(event("customer.updated", customer), ports) is EventOutcome.APPLIED

    stored_account = ports.accounts.get("user-1")
    assert stored_account.email == "new@example.com"
    method = stored_account.payment_method
    assert (method.id, method.brand, method.last4) == ("pm_card_mastercard", "mastercard", "4444")


def test_events_of_an_unknown_customer_are_acknowledged():
    ports = make_ports(accounts=(account(),))
    customer = {
        "id": "cus_unknown",
        "object": "customer",
        "email": "x@example.com",
        "metadata": {},
        "invoice_settings": {"default_payment_method": None},
    }

    assert process_event(event("customer.updated", customer), ports) is EventOutcome.UNKNOWN
    # Naming an account that has another customer is not this account's customer either.
    unknown_customer_intent = dict(setup_intent(), customer="cus_unknown")
    assert process_event(event("setup_intent.succeeded", unknown_customer_intent), ports) is EventOutcome.UNKNOWN
    failed_intent = {**setup_intent(), "customer": "cus_unknown", "metadata": {}, "status": "requires_payment_method"}
    assert process_event(event("setup_intent.setup_failed", failed_intent), ports) is EventOutcome.UNKNOWN
    assert ports.payments.calls_to("set_default_payment_method") == []


@pytest.mark.parametrize("event_type", ["setup_intent.succeeded", "setup_intent.setup_failed", "customer.updated"])
def test_account_events_naming_an_account_billing_lacks_wait_for_it(event_type):
    ports = make_ports()
    obj = (
        {
            "id": "cus_1",
            "object": "customer",
            "email": "x@example.com",
            "metadata": {"userId": "user-1"},
            "invoice_settings": {"default_payment_method": None},
        }
        if event_type == "customer.updated"
        else setup_intent()
    )
    delivered = event(event_type, obj)

    assert process_event(delivered, ports) is EventOutcome.UNKNOWN_ACCOUNT
    assert event_applications(ports.events, delivered.id) == 0
    assert ports.payments.calls_to("set_default_payment_method") == []

    ports.accounts.put(account())
    assert process_event(delivered, ports) is EventOutcome.APPLIED
