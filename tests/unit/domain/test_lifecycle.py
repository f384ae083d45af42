"""Invoice lifecycle: webhooks move an invoice forward; late or duplicate events never move it back."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.domain.lifecycle import (
    EVENT_STATUS,
    InvoiceProgress,
    InvoiceStatus,
    allowed_predecessors,
    may_move,
    progress_for_event,
    status_for_event,
)

S = InvoiceStatus
T0 = 1_732_406_400  # 2024-11-24T00:00:00Z
PENDING_START = InvoiceProgress(S.PENDING)


def advance(current: InvoiceProgress, event_type: str, created: int, attempt_count: int = 0) -> InvoiceProgress:
    """The state after an event, as the conditional writes keep it: the implied state if it supersedes."""
    implied = progress_for_event(event_type, created, attempt_count)
    if implied is None or not implied.supersedes(current):
        return current
    return implied


def fold(events, start=PENDING_START):
    state = start
    for event_type, created, attempt in events:
        state = advance(state, event_type, created, attempt)
    return state


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("invoice.finalized", S.OPEN),
        ("invoice.paid", S.PAID),
        ("invoice.payment_failed", S.PAYMENT_FAILED),
        ("invoice.payment_action_required", S.ACTION_REQUIRED),
        ("invoice.voided", S.VOID),
        ("invoice.marked_uncollectible", S.UNCOLLECTIBLE),
        ("invoice.finalization_failed", S.DRAFT),
    ],
)
def test_stripe_invoice_events_imply_a_status(event_type, status):
    assert status_for_event(event_type) is status


@pytest.mark.parametrize("event_type", ["invoice.created", "invoice.updated", "customer.created", ""])
def test_other_events_do_not_move_the_lifecycle(event_type):
    assert status_for_event(event_type) is None
    assert fold([(event_type, T0, 0)], InvoiceProgress(S.OPEN)) == InvoiceProgress(S.OPEN)


def test_statuses_are_the_strings_the_billing_table_stores():
    assert [s.value for s in S] == [
        "pending",
        "draft",
        "open",
        "payment_failed",
        "action_required",
        "paid",
        "uncollectible",
        "void",
    ]
    assert S("paid") is S.PAID


def test_happy_path_moves_forward():
    assert may_move(S.PENDING, S.DRAFT)
    assert may_move(S.DRAFT, S.OPEN)
    assert may_move(S.OPEN, S.PAID)
    assert fold([("invoice.finalized", T0, 0), ("invoice.paid", T0 + 5, 1)]).status is S.PAID


@pytest.mark.parametrize(
    "late",
    [
        "invoice.finalized",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.finalization_failed",
    ],
)
def test_paid_stays_paid_whatever_arrives_late(late):
    paid = InvoiceProgress(S.PAID)
    assert fold([(late, T0 + 3600, 9)], paid) == paid
    assert not may_move(S.PAID, status_for_event(late))


def test_void_is_terminal():
    assert allowed_predecessors(S.VOID).isdisjoint({S.PAID, S.VOID})
    assert not any(may_move(S.VOID, new) for new in S)
    assert fold([("invoice.paid", T0 + 10, 1)], InvoiceProgress(S.VOID)).status is S.VOID


def test_uncollectible_can_still_be_paid_or_voided_but_never_retried_again():
    uncollectible = InvoiceProgress(S.UNCOLLECTIBLE)
    assert fold([("invoice.paid", T0, 4)], uncollectible).status is S.PAID
    assert fold([("invoice.voided", T0, 4)], uncollectible).status is S.VOID
    for event_type in ("invoice.finalized", "invoice.payment_failed", "invoice.payment_action_required"):
        assert fold([(event_type, T0 + 10**6, 99)], uncollectible) == uncollectible


def test_a_later_attempt_replaces_an_earlier_one_between_failed_and_action_required():
    failed_first = InvoiceProgress(S.PAYMENT_FAILED, attempt_count=1, event_created=T0)
    assert fold([("invoice.payment_action_required", T0 + 86_400, 2)], failed_first).status is S.ACTION_REQUIRED
    sca_first = InvoiceProgress(S.ACTION_REQUIRED, attempt_count=1, event_created=T0)
    assert fold([("invoice.payment_failed", T0 + 86_400, 2)], sca_first).status is S.PAYMENT_FAILED


def test_an_earlier_attempt_arriving_late_does_not_replace_a_later_one():
    current = InvoiceProgress(S.ACTION_REQUIRED, attempt_count=3, event_created=T0 + 3 * 86_400)
    assert fold([("invoice.payment_failed", T0 + 86_400, 2)], current) == current


def test_the_attempt_count_decides_before_the_event_time():
    current = InvoiceProgress(S.PAYMENT_FAILED, attempt_count=3, event_created=T0)
    assert fold([("invoice.payment_action_required", T0, 2)], current) == current
    assert fold([("invoice.payment_action_required", T0, 4)], current).status is S.ACTION_REQUIRED


def test_for_the_same_attempt_action_required_wins_in_either_order():
    failed = ("invoice.payment_failed", T0, 1)
    sca = ("invoice.payment_action_required", T0, 1)
    assert fold([failed, sca]).status is S.ACTION_REQUIRED
    assert fold([sca, failed]).status is S.ACTION_REQUIRED


def test_for_the_same_attempt_action_required_wins_even_if_the_failure_event_is_newer():
    assert fold([("invoice.payment_action_required", T0, 1), ("invoice.payment_failed", T0 + 2, 1)]).status is (
        S.ACTION_REQUIRED
    )


def test_the_newest_event_of_the_same_status_and_attempt_is_recorded():
    first = InvoiceProgress(S.PAYMENT_FAILED, attempt_count=1, event_created=T0)
    assert fold([("invoice.payment_failed", T0 + 5, 1)], first).event_created == T0 + 5
    assert fold([("invoice.payment_failed", T0 - 5, 1)], first) == first


def test_a_newer_failure_of_the_same_status_records_the_newer_attempt():
    first = InvoiceProgress(S.PAYMENT_FAILED, attempt_count=1, event_created=T0)
    assert fold([("invoice.payment_failed", T0 + 86_400, 2)], first).attempt_count == 2


def test_duplicate_events_change_nothing():
    state = fold([("invoice.finalized", T0, 0)])
    assert fold([("invoice.finalized", T0, 0)], state) == state
    failed = fold([("invoice.payment_failed", T0, 1)])
    assert fold([("invoice.payment_failed", T0, 1)], failed) == failed


def test_allowed_predecessors_for_each_target():
    assert allowed_predecessors(S.PENDING) == frozenset()
    assert allowed_predecessors(S.DRAFT) == {S.PENDING}
    assert allowed_predecessors(S.OPEN) == {S.PENDING, S.DRAFT}
    assert allowed_predecessors(S.PAYMENT_FAILED) == {S.PENDING, S.DRAFT, S.OPEN, S.PAYMENT_FAILED, S.ACTION_REQUIRED}
    assert allowed_predecessors("action_required") == allowed_predecessors(S.PAYMENT_FAILED)
    assert allowed_predecessors(S.UNCOLLECTIBLE) == {S.PENDING, S.DRAFT, S.OPEN, S.PAYMENT_FAILED, S.ACTION_REQUIRED}
    assert allowed_predecessors(S.PAID) == {
        S.PENDING,
        S.DRAFT,
        S.OPEN,
        S.PAYMENT_FAILED,
        S.ACTION_REQUIRED,
        S.UNCOLLECTIBLE,
    }
    assert allowed_predecessors(S.VOID) == allowed_predecessors(S.PAID)


def test_order_key_is_fixed_width_and_sorts_in_lifecycle_order():
    chain = [
        InvoiceProgress(S.PENDING),
        InvoiceProgress(S.DRAFT),
        InvoiceProgress(S.OPEN),
        InvoiceProgress(S.PAYMENT_FAILED, 1, T0),
        InvoiceProgress(S.ACTION_REQUIRED, 1, T0),
        InvoiceProgress(S.PAYMENT_FAILED, 2, T0 + 1),
        InvoiceProgress(S.UNCOLLECTIBLE),
        InvoiceProgress(S.PAID),
    ]
    keys = [p.order_key for p in chain]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert len({len(k) for k in keys}) == 1
    assert InvoiceProgress(S.PAID).order_key == InvoiceProgress(S.VOID).order_key  # neither replaces the other


@pytest.mark.parametrize("bad", [{"attempt_count": -1}, {"event_created": 10**12}, {"attempt_count": True}])
def test_progress_refuses_values_that_would_break_the_order_key(bad):
    with pytest.raises(ValueError):
        InvoiceProgress(S.PAYMENT_FAILED, **bad)


# --- properties -------------------------------------------------------------------------------------

ENDINGS = [
    [],
    ["invoice.paid"],
    ["invoice.voided"],
    ["invoice.marked_uncollectible"],
    ["invoice.marked_uncollectible", "invoice.paid"],
    ["invoice.marked_uncollectible", "invoice.voided"],
]
RETRY_OUTCOMES = st.sampled_from(
    [
        ("invoice.payment_failed",),
        ("invoice.payment_action_required",),
        ("invoice.payment_failed", "invoice.payment_action_required"),
    ]
)


@st.composite
def invoice_histories(draw):
    """A history Stripe could send for one invoice, in the order it happened, with its final status."""
    created = T0
    events = []
    if draw(st.booleans()):
        events.append(("invoice.finalization_failed", created, 0))
        created += draw(st.integers(0, 60))
    events.append(("invoice.finalized", created, 0))
    expected = S.OPEN
    for attempt, outcome in enumerate(draw(st.lists(RETRY_OUTCOMES, max_size=4)), start=1):
        created += draw(st.integers(0, 3 * 86_400))  # Stripe's retries are hours apart, but may share a second
        events.extend((event_type, created, attempt) for event_type in outcome)
        expected = status_for_event(outcome[-1])
    for event_type in draw(st.sampled_from(ENDINGS)):
        created += draw(st.integers(0, 86_400))
        events.append((event_type, created, 0))
        expected = status_for_event(event_type)
    return events, expected


@given(invoice_histories(), st.data())
def test_any_order_with_duplicates_ends_in_the_same_status(history, data):
    events, expected = history
    in_order = fold(events)
    delivered = data.draw(st.lists(st.sampled_from(events), max_size=3 * len(events)))  # duplicates
    delivered = data.draw(st.permutations(events + delivered))

    assert in_order.status is expected
    assert fold(delivered) == in_order


@given(
    st.sampled_from(list(S)),
    st.integers(0, 9),
    st.integers(T0, T0 + 10**6),
    st.sampled_from(sorted(EVENT_STATUS)),
    st.integers(0, 9),
    st.integers(T0, T0 + 10**6),
)
def test_an_event_applies_only_along_the_status_rule(status, attempt, created, event_type, new_attempt, new_created):
    current = InvoiceProgress(status, attempt, created)
    after = advance(current, event_type, new_created, new_attempt)

    if after != current:
        assert may_move(current.status, after.status)
        assert current.status in allowed_predecessors(after.status)
        assert after == progress_for_event(event_type, new_created, new_attempt)
    if current.status in {S.PAID, S.VOID}:
        assert after == current
