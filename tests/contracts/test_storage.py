"""The storage ports' contract, kept by the in-memory fakes and the DynamoDB adapters alike."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing_core.domain.audit import AuditEntry
from billing_core.domain.corrections import Correction, TrueUp
from billing_core.domain.costs import CostAttribution, CostLine, CostReport, CostSnapshot, Period
from billing_core.domain.credit_notes import CreditNoteState
from billing_core.domain.fx import ECB_SOURCE, FxQuote, FxRate, FxRule, NewestRate, PeriodRate
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.membership import Membership
from billing_core.domain.records import Account, BillingRunRecord, RunStatus, SavedPaymentMethod
from billing_core.errors import ConditionFailed, InvalidCursor, NotFound
from billing_core.ports import EventClaim, FieldIs
from tests.support.observe import event_applications
from tests.support.records import a_credit_note, an_invoice


@pytest.fixture
def account_id() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


# --- invoices ------------------------------------------------------------------------------------


def test_rerun_for_same_period_creates_no_second_invoice(invoices, account_id):
    assert invoices.create_if_absent(an_invoice(account_id=account_id)) is True
    assert invoices.create_if_absent(an_invoice(account_id=account_id, amount=Decimal("99.99"))) is False

    stored = invoices.get(account_id, f"inv_2024-11_{account_id}")
    assert stored == an_invoice(account_id=account_id)
    assert stored.amount == Decimal("37.74") and stored.aws_breakdown["AWS Lambda"] == Decimal("5.23")


def test_money_as_a_float_is_refused_and_nothing_is_stored(invoices, account_id):
    with pytest.raises(TypeError):
        invoices.create_if_absent(an_invoice(account_id=account_id, amount=37.74))
    assert invoices.get(account_id, f"inv_2024-11_{account_id}") is None


def test_update_with_a_status_guard_refuses_to_move_status_backward(invoices, account_id):
    invoice_id = f"inv_2024-11_{account_id}"
    invoices.create_if_absent(an_invoice(account_id=account_id))
    invoices.update(
        account_id,
        invoice_id,
        {"status": InvoiceStatus.PAID, "paid_at": 1_733_000_000_000},
        conditions=[FieldIs.one_of("status", "pending", "draft", "open")],
    )

    with pytest.raises(ConditionFailed) as refused:
        invoices.update(
            account_id,
            invoice_id,
            {"status": InvoiceStatus.OPEN},
            conditions=[FieldIs.one_of("status", "pending", "draft")],
        )

    assert refused.value.current.status is InvoiceStatus.PAID
    assert invoices.get(account_id, invoice_id).status is InvoiceStatus.PAID


def test_update_returns_the_new_invoice_and_none_removes_a_field(invoices, account_id):
    invoice_id = f"inv_2024-11_{account_id}"
    invoices.create_if_absent(an_invoice(account_id=account_id, finalization_error="timeout"))

    updated = invoices.update(
        account_id,
        invoice_id,
        {"stripe_invoice_id": "in_1", "finalization_error": None},
        conditions=[FieldIs.absent("stripe_invoice_id")],
    )

    assert updated.stripe.invoice_id == "in_1" and updated.stripe.finalization_error is None
    assert invoices.get(account_id, invoice_id) == updated
    with pytest.raises(ConditionFailed):
        invoices.update(
            account_id, invoice_id, {"stripe_invoice_id": "in_2"}, conditions=[FieldIs.absent("stripe_invoice_id")]
        )


def test_finalized_at_and_paid_at_keep_their_first_value_and_lines_added_only_grows(invoices, account_id):
    invoice = an_invoice(account_id=account_id)
    invoices.create_if_absent(invoice)
    key = (account_id, invoice.invoice_id)
    invoices.update(*key, {"lines_added": frozenset({"base-fee", "aws"}), "finalized_at": 1000, "paid_at": 2000})

    # A worker resuming from stale memory writes what it saw then: none of it moves the record back.
    stale = invoices.update(
        *key, {"lines_added": frozenset({"base-fee"}), "finalized_at": 3000, "paid_at": None, "number": "A-1"}
    )

    assert (stale.stripe.lines_added, stale.stripe.finalized_at, stale.payment.paid_at, stale.stripe.number) == (
        frozenset({"base-fee", "aws"}),
        1000,
        2000,
        "A-1",
    )
    assert invoices.get(*key) == stale


def test_a_write_once_field_absent_so_far_takes_the_first_value(invoices, account_id):
    invoice = an_invoice(account_id=account_id)
    invoices.create_if_absent(invoice)
    first = invoices.update(
        account_id, invoice.invoice_id, {"lines_added": frozenset({"aws"}), "paid_at": None, "updated_at": 5}
    )
    assert (first.stripe.lines_added, first.payment.paid_at) == (frozenset({"aws"}), None)
    assert invoices.update(account_id, invoice.invoice_id, {"paid_at": 7}).payment.paid_at == 7


def test_a_key_generation_guard_accepts_an_invoice_that_never_had_one(invoices, account_id):
    invoice_id = f"inv_2024-11_{account_id}"
    invoices.create_if_absent(an_invoice(account_id=account_id))

    bumped = invoices.update(
        account_id, invoice_id, {"key_generation": 1}, conditions=[FieldIs.one_of("key_generation", 0, or_absent=True)]
    )

    assert bumped.stripe.key_generation == 1
    with pytest.raises(ConditionFailed):
        invoices.update(
            account_id,
            invoice_id,
            {"key_generation": 1},
            conditions=[FieldIs.one_of("key_generation", 0, or_absent=True)],
        )


def test_updating_a_missing_invoice_is_not_found_and_creates_nothing(invoices, account_id):
    with pytest.raises(NotFound):
        invoices.update(account_id, "inv_2024-11_nobody", {"status": InvoiceStatus.PAID})
    assert invoices.get(account_id, "inv_2024-11_nobody") is None


def test_key_fields_cannot_be_updated(invoices, account_id):
    invoices.create_if_absent(an_invoice(account_id=account_id))
    with pytest.raises((ValueError, KeyError)):
        invoices.update(account_id, f"inv_2024-11_{account_id}", {"invoice_id": "other"})


def test_every_invoice_of_every_account_is_listed_filtered_by_period_and_status(invoices, account_id):
    other = account_id + "-b"
    for owner, period, status in [
        (account_id, Period(2024, 11), InvoiceStatus.PAID),
        (account_id, Period(2024, 12), InvoiceStatus.PAYMENT_FAILED),
        (other, Period(2024, 12), InvoiceStatus.PAYMENT_FAILED),
    ]:
        invoices.create_if_absent(an_invoice(account_id=owner, period=period, status=status))

    def ids(**filters):  # the table may hold other tests' invoices
        return sorted(i.invoice_id for i in invoices.list_all(**filters) if i.account_id in (account_id, other))

    assert ids() == [f"inv_2024-11_{account_id}", f"inv_2024-12_{account_id}", f"inv_2024-12_{other}"]
    assert ids(period_label="2024-12", status="payment_failed") == [f"inv_2024-12_{account_id}", f"inv_2024-12_{other}"]
    assert ids(status="paid") == [f"inv_2024-11_{account_id}"]
    assert ids(period_label="2025-01") == []


def test_an_invoice_is_found_by_its_stripe_invoice_id(invoices, account_id):
    stripe_id = f"in_{uuid.uuid4().hex[:10]}"
    invoices.create_if_absent(an_invoice(account_id=account_id, stripe_invoice_id=stripe_id))

    assert invoices.find_by_stripe_invoice_id(stripe_id).account_id == account_id
    assert invoices.find_by_stripe_invoice_id("in_unknown") is None


def test_invoices_are_listed_newest_first_page_by_page(invoices, account_id):
    periods = ["2024-09", "2024-11", "2024-10", "2025-01", "2024-12"]
    for period in periods:
        invoices.create_if_absent(an_invoice(account_id=account_id, period=Period.parse(period)))
    invoices.create_if_absent(an_invoice(account_id="someone-else"))

    first = invoices.list_for_account(account_id, limit=2)
    second = invoices.list_for_account(account_id, limit=2, cursor=first.next_cursor)
    third = invoices.list_for_account(account_id, limit=2, cursor=second.next_cursor)

    listed = [invoice.invoice_id for page in (first, second, third) for invoice in page.items]
    assert listed == [f"inv_{p}_{account_id}" for p in sorted(periods, reverse=True)]
    assert third.next_cursor is None or invoices.list_for_account(account_id, cursor=third.next_cursor).items == []


def test_a_forged_or_foreign_cursor_is_refused(invoices, account_id):
    for period in ("2024-10", "2024-11"):
        invoices.create_if_absent(an_invoice(account_id=account_id, period=Period.parse(period)))
    cursor = invoices.list_for_account(account_id, limit=1).next_cursor

    with pytest.raises(InvalidCursor):
        invoices.list_for_account("someone-else", cursor=cursor)
    with pytest.raises(InvalidCursor):
        invoices.list_for_account(account_id, cursor="not-a-cursor!")


# --- accounts ------------------------------------------------------------------------------------


def test_concurrent_setup_requests_record_exactly_one_stripe_customer(accounts, account_id):
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def claim(n: int) -> None:
        barrier.wait(timeout=5)
        results.append(accounts.set_stripe_customer_id_if_absent(account_id, f"cus_{n}", {"email": "a@example.com"}))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(results) == [False] * 5 + [True]
    stored = accounts.get(account_id)
    assert accounts.find_by_stripe_customer_id(stored.stripe_customer_id).account_id == account_id
    assert stored == Account(account_id, stripe_customer_id=stored.stripe_customer_id, email="a@example.com")


def test_every_account_is_listed_across_pages(accounts):
    for n in range(5):
        accounts.put(Account(f"user-{n}", cost_scope=f"11111111111{n}", base_fee_override=Decimal("15.00")))

    listed = list(accounts.list_accounts(page_size=2))

    assert sorted(a.account_id for a in listed) == [f"user-{n}" for n in range(5)]
    assert all(a.base_fee_override == Decimal("15.00") for a in listed)


def test_account_update_sets_the_payment_method_only_on_an_existing_account(accounts, account_id):
    method = SavedPaymentMethod("pm_1", "card", "visa", "4242")
    with pytest.raises(NotFound):
        accounts.update(account_id, {"payment_method": method})
    accounts.set_stripe_customer_id_if_absent(account_id, "cus_x")

    updated = accounts.update(
        account_id,
        {"payment_method": method, "payment_method_changed_at": 5},
        conditions=[FieldIs.absent("payment_method")],
    )

    assert (updated.stripe_customer_id, updated.payment_method) == ("cus_x", method)
    with pytest.raises(ConditionFailed) as refused:
        accounts.update(account_id, {"payment_method": None}, conditions=[FieldIs.absent("payment_method")])
    assert refused.value.current == updated
    cleared = accounts.update(
        account_id, {"payment_method": None}, conditions=[FieldIs.one_of("payment_method", method)]
    )
    assert cleared.payment_method is None and accounts.get(account_id) == cleared


# --- events table --------------------------------------------------------------------------------


def test_an_event_is_claimed_once_applied_once_and_then_done(processed_events, clock):
    event_id = f"evt_{uuid.uuid4().hex[:10]}"

    assert (
        processed_events.claim_event(event_id, owner="a", lease_seconds=60, retention_seconds=600) is EventClaim.CLAIMED
    )
    assert (
        processed_events.claim_event(event_id, owner="b", lease_seconds=60, retention_seconds=600)
        is EventClaim.IN_PROGRESS
    )
    assert processed_events.complete_event(event_id, owner="a", retention_seconds=600) is True
    # A retried complete whose first attempt went through: a success, counted once.
    assert processed_events.complete_event(event_id, owner="a", retention_seconds=600) is True

    assert processed_events.claim_event(event_id, owner="c", lease_seconds=60, retention_seconds=600) is EventClaim.DONE
    assert event_applications(processed_events, event_id) == 1
    assert event_applications(processed_events, "evt_never") == 0


def test_a_released_or_expired_claim_can_be_claimed_again(processed_events, clock):
    released, crashed = f"evt_{uuid.uuid4().hex[:10]}", f"evt_{uuid.uuid4().hex[:10]}"
    processed_events.claim_event(released, owner="a", lease_seconds=60, retention_seconds=600)
    processed_events.claim_event(crashed, owner="a", lease_seconds=60, retention_seconds=600)

    processed_events.release_event(released, owner="a")
    assert (
        processed_events.claim_event(released, owner="b", lease_seconds=60, retention_seconds=600) is EventClaim.CLAIMED
    )
    clock.now += 61
    assert (
        processed_events.claim_event(crashed, owner="b", lease_seconds=60, retention_seconds=600) is EventClaim.CLAIMED
    )


def test_a_renewed_claim_stays_its_owners_past_its_first_lease(processed_events, clock):
    event_id = f"evt_{uuid.uuid4().hex[:10]}"
    processed_events.claim_event(event_id, owner="a", lease_seconds=60, retention_seconds=600)

    clock.now += 40
    assert processed_events.renew_event_claim(event_id, owner="a", lease_seconds=60) is True
    clock.now += 40  # 80 s after the claim, 40 s after the renewal
    assert (
        processed_events.claim_event(event_id, owner="b", lease_seconds=60, retention_seconds=600)
        is EventClaim.IN_PROGRESS
    )
    assert processed_events.renew_event_claim(event_id, owner="b", lease_seconds=60) is False
    assert processed_events.complete_event(event_id, owner="a", retention_seconds=600) is True
    assert event_applications(processed_events, event_id) == 1


def test_an_owner_that_stalled_past_its_lease_cannot_complete_renew_or_release_the_claim_taken_over(
    processed_events, clock
):
    """Worker A froze holding the claim; B claimed it after the lease and applied it; then A woke up."""
    taken_over, finished = f"evt_{uuid.uuid4().hex[:10]}", f"evt_{uuid.uuid4().hex[:10]}"
    for event_id in (taken_over, finished):
        processed_events.claim_event(event_id, owner="a", lease_seconds=60, retention_seconds=600)
    clock.now += 61
    for event_id in (taken_over, finished):
        assert (
            processed_events.claim_event(event_id, owner="b", lease_seconds=60, retention_seconds=600)
            is EventClaim.CLAIMED
        )
    assert processed_events.complete_event(finished, owner="b", retention_seconds=600) is True

    for event_id in (taken_over, finished):
        assert processed_events.renew_event_claim(event_id, owner="a", lease_seconds=60) is False
        assert processed_events.complete_event(event_id, owner="a", retention_seconds=600) is False
        processed_events.release_event(event_id, owner="a")

    # B's claim is still B's (A's release dropped nothing), and nothing was counted twice.
    assert (
        processed_events.claim_event(taken_over, owner="c", lease_seconds=60, retention_seconds=600)
        is EventClaim.IN_PROGRESS
    )
    assert processed_events.complete_event(taken_over, owner="b", retention_seconds=600) is True
    assert [event_applications(processed_events, e) for e in (taken_over, finished)] == [1, 1]


def test_a_lease_is_exclusive_until_it_expires(leases, clock):
    name = f"billing-run-{uuid.uuid4().hex[:6]}"

    assert leases.acquire_lease(name, "worker-a", ttl_seconds=60) is True
    assert leases.acquire_lease(name, "worker-b", ttl_seconds=60) is False
    assert leases.acquire_lease(name, "worker-a", ttl_seconds=60) is True  # renewal
    clock.now += 61
    assert leases.acquire_lease(name, "worker-b", ttl_seconds=60) is True
    assert leases.release_lease(name, "worker-a") is False  # no longer a's
    assert leases.release_lease(name, "worker-b") is True
    assert leases.acquire_lease(name, "worker-c", ttl_seconds=60) is True


def test_the_first_rate_stored_for_a_period_stays_and_comes_back_exactly(period_rates):
    ecb = PeriodRate(
        Period(2024, 12),
        FxRate(Decimal("1.0389"), ECB_SOURCE, date(2024, 12, 31), FxQuote.COST_PER_INVOICE_UNIT),
        feed="https://feed.example/eurofxref-hist-90d.xml",
        rule=FxRule.LAST_WORKING_DAY,
    )
    manual = PeriodRate(Period(2024, 12), FxRate(Decimal("0.95"), "manual", date(2024, 12, 1)))

    assert period_rates.get(Period(2024, 12)) is None
    assert period_rates.put_if_absent(ecb) == ecb
    assert period_rates.put_if_absent(manual) == ecb  # a second writer gets the first rate
    assert period_rates.get(Period(2024, 12)) == ecb
    assert period_rates.put_if_absent(PeriodRate(Period(2024, 11), manual.fx)).feed is None
    assert period_rates.get(Period(2024, 11)).fx == manual.fx


def test_the_newest_published_rate_is_kept_unless_a_later_reading_is_kept_and_is_no_periods_rate(period_rates):
    def reading(rate: str, day: int, read_at: int) -> NewestRate:
        fx = FxRate(Decimal(rate), ECB_SOURCE, date(2026, 10, day), FxQuote.COST_PER_INVOICE_UNIT)
        return NewestRate(fx, "https://feed.example/eurofxref-hist-90d.xml", read_at)

    assert period_rates.newest() is None
    period_rates.keep_newest(reading("1.113", 29, read_at=1_000))
    period_rates.keep_newest(reading("1.1172", 30, read_at=2_000))
    period_rates.keep_newest(reading("1.113", 29, read_at=1_500))  # a slower reader of older news

    assert period_rates.newest() == reading("1.1172", 30, read_at=2_000)
    assert period_rates.get(Period(2026, 10)) is None


def test_a_run_record_comes_back_as_stored_until_it_expires(run_records, clock):
    record = BillingRunRecord(
        period=Period(2024, 11),
        run_id="run_1",
        status=RunStatus.ENQUEUED,
        trigger="cron",
        accounts=3,
        skipped=1,
        enqueued=3,
        cost_requests=1,
        started_at=1,
        updated_at=2,
    )
    run_records.put(record, ttl_seconds=100)

    assert run_records.get(Period(2024, 11)) == record
    assert run_records.get(Period(2024, 10)) is None
    clock.now += 101
    assert run_records.get(Period(2024, 11)) is None


def test_a_cost_snapshot_comes_back_as_stored_until_it_expires(preview_cache, clock):
    report = CostReport(
        date(2026, 5, 1),
        date(2026, 5, 15),
        "USD",
        True,
        (CostLine("AWS Lambda", Decimal("5.2345678901")), CostLine("AWS Lambda", Decimal("1"), "111")),
        attribution=CostAttribution.by_tag("cost-center"),
    )
    snapshot = CostSnapshot(report, datetime(2026, 5, 15, 12, tzinfo=UTC), Decimal("14.5"), "linear")
    preview_cache.put("preview#tag:cost-center#2026-05", snapshot, ttl_seconds=60)

    assert preview_cache.get("preview#tag:cost-center#2026-05") == snapshot
    clock.now += 61
    assert preview_cache.get("preview#tag:cost-center#2026-05") is None


def test_audit_entries_come_back_newest_first_per_account_and_for_all_and_a_repeat_is_kept_once(audit_log):
    def entry(n: int, account: str | None) -> AuditEntry:
        return AuditEntry(
            f"e{n}",
            at=1_700_000_000_000 + n,
            actor="cli:ops@host",
            action="account.update",
            account_id=account,
            before={"baseFee": "20.00"},
            after={"baseFee": f"{20 + n}.00"},
            reason="contract" if n % 2 else None,
        )

    for n, account in enumerate(["acct-a", "acct-b", None, "acct-a"]):
        audit_log.record(entry(n, account))
    audit_log.record(entry(3, "acct-a"))  # a retried command

    assert audit_log.entries(account_id="acct-a") == [entry(3, "acct-a"), entry(0, "acct-a")]
    assert [e.entry_id for e in audit_log.entries()] == ["e3", "e2", "e1", "e0"]
    assert [e.entry_id for e in audit_log.entries(limit=2)] == ["e3", "e2"]
    assert audit_log.entries(account_id="acct-c") == []


def test_a_person_is_a_member_of_the_first_account_recorded_for_them(memberships):
    first = Membership("sub-1", "kunde-42", "a@beispiel.de", 1_700_000_000_000)

    assert memberships.account_of("sub-1") is None
    assert memberships.add_if_absent(first) == first
    assert memberships.add_if_absent(Membership("sub-1", "kunde-7", "a@beispiel.de", 1_700_000_001_000)) == first
    assert memberships.account_of("sub-1") == "kunde-42" and memberships.account_of("sub-2") is None


def test_a_correction_settled_by_credit_note_is_read_back_as_such_and_an_older_one_as_a_line(invoices, account_id):
    true_up = TrueUp(
        corrections=(
            Correction(
                Period(2024, 9), Decimal("-2.74"), "Korrektur AWS Infrastruktur (Sep 2024)", by_credit_note=True
            ),
            Correction(Period(2024, 10), Decimal("1.05"), "Korrektur (Okt 2024)"),
        )
    )
    invoices.create_if_absent(an_invoice(account_id=account_id, true_up=true_up))

    stored = invoices.get(account_id, f"inv_2024-11_{account_id}")

    assert stored.true_up == true_up
    assert [c.by_credit_note for c in stored.true_up.corrections] == [True, False]


# --- credit notes --------------------------------------------------------------------------------


def test_a_credit_note_is_claimed_once_and_read_back_as_written(credit_notes, account_id):
    note = a_credit_note(an_invoice(account_id=account_id))

    assert credit_notes.create_if_absent(note) is True
    assert credit_notes.create_if_absent(a_credit_note(an_invoice(account_id=account_id), reason="other")) is False

    stored = credit_notes.get(note.credit_note_id)
    assert stored == note
    assert stored.net == Decimal("10.00") and stored.tax == Decimal("1.90") and stored.gross == Decimal("11.90")
    assert stored.state is CreditNoteState.PENDING and stored.lines[0].period == Period(2024, 11)


def test_a_true_up_credit_note_keeps_the_correction_it_settles(credit_notes, account_id):
    invoice = an_invoice(account_id=account_id)
    note = a_credit_note(
        invoice, true_up_invoice_id=f"inv_2024-12_{account_id}", true_up_period=Period(2024, 11), actor="true-up"
    )
    credit_notes.create_if_absent(note)
    credit_notes.create_if_absent(a_credit_note(invoice, 2))

    true_up, operators = credit_notes.list_for_invoice(invoice.invoice_id)

    assert true_up == note and true_up.from_true_up
    assert true_up.settles(f"inv_2024-12_{account_id}", Period(2024, 11))
    assert (operators.true_up_invoice_id, operators.true_up_period, operators.from_true_up) == (None, None, False)


def test_a_credit_note_moves_forward_only_under_its_state_guard(credit_notes, account_id):
    note = a_credit_note(an_invoice(account_id=account_id))
    credit_notes.create_if_absent(note)

    issued = credit_notes.update(
        note.credit_note_id,
        {"state": CreditNoteState.ISSUED, "stripe_credit_note_id": "cn_1", "number": "ABC-0001-CN-01"},
        conditions=[FieldIs.one_of("state", CreditNoteState.PENDING)],
    )
    with pytest.raises(ConditionFailed) as refused:
        credit_notes.update(
            note.credit_note_id,
            {"state": CreditNoteState.ISSUED, "number": "other"},
            conditions=[FieldIs.one_of("state", CreditNoteState.PENDING)],
        )

    assert issued.state is CreditNoteState.ISSUED and issued.stripe_credit_note_id == "cn_1"
    assert refused.value.current.number == "ABC-0001-CN-01"
    with pytest.raises(NotFound):
        credit_notes.update("cn_2024-11_nobody_1", {"state": CreditNoteState.VOID})


def test_an_invoices_credit_notes_are_listed_in_order(credit_notes, account_id):
    invoice = an_invoice(account_id=account_id)
    assert credit_notes.list_for_invoice(invoice.invoice_id) == []
    for sequence in (1, 2):
        credit_notes.create_if_absent(a_credit_note(invoice, sequence, reason=f"reason {sequence}"))

    listed = credit_notes.list_for_invoice(invoice.invoice_id)

    assert [note.sequence for note in listed] == [1, 2]
    assert [note.reason for note in listed] == ["reason 1", "reason 2"]


def test_an_invoices_credited_amount_moves_under_a_guard_on_what_was_read(invoices, account_id):
    invoice_id = f"inv_2024-11_{account_id}"
    invoices.create_if_absent(an_invoice(account_id=account_id))
    assert invoices.get(account_id, invoice_id).payment.credited == Decimal(0)

    first = invoices.update(
        account_id,
        invoice_id,
        {"credited": Decimal("11.90")},
        conditions=[FieldIs.one_of("credited", Decimal(0), or_absent=True)],
    )
    with pytest.raises(ConditionFailed) as stale:  # a second writer that read 0 as well
        invoices.update(
            account_id,
            invoice_id,
            {"credited": Decimal("5.95")},
            conditions=[FieldIs.one_of("credited", Decimal(0), or_absent=True)],
        )

    assert first.payment.credited == Decimal("11.90")
    assert stale.value.current.payment.credited == Decimal("11.90")


def test_what_stripe_did_with_the_customers_balance_is_kept_signed_and_read_back(invoices, account_id):
    invoice_id = f"inv_2024-11_{account_id}"
    invoices.create_if_absent(an_invoice(account_id=account_id))

    invoices.update(
        account_id, invoice_id, {"balance_applied": Decimal("-11.90"), "carried_to_balance": Decimal("0.30")}
    )

    payment = invoices.get(account_id, invoice_id).payment
    assert (payment.balance_applied, payment.carried_to_balance) == (Decimal("-11.90"), Decimal("0.30"))
    cleared = invoices.update(account_id, invoice_id, {"balance_applied": Decimal(0), "carried_to_balance": Decimal(0)})
    assert (cleared.payment.balance_applied, cleared.payment.carried_to_balance) == (Decimal(0), Decimal(0))


def test_an_accounts_invoice_emails_are_kept_in_order_and_cleared_back_to_its_email(accounts, account_id):
    accounts.put(Account(account_id, email="billing@kunde.de", invoice_emails=("b@kunde.de", "a@kunde.de")))
    assert accounts.get(account_id).invoice_recipients == ("b@kunde.de", "a@kunde.de")

    cleared = accounts.update(account_id, {"invoice_emails": ()})

    assert cleared.invoice_emails == () and cleared.invoice_recipients == ("billing@kunde.de",)
    assert accounts.get(account_id).invoice_emails == ()
