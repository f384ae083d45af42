"""Credit notes of an issued invoice: what may be credited, the VAT taken back, to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import (
    CreditableLine,
    CreditNote,
    CreditNoteState,
    CreditPlan,
    CreditRefused,
    CreditRequest,
    CreditStatus,
    CreditVat,
    Settlement,
    credit_note_id_for,
    credit_status,
    credited_total,
    plan_credit,
    state_may_move,
)
from billing_core.domain.tax import category_tax, manual_line_taxes

OCTOBER = Period(2026, 10)
SEPTEMBER = Period(2026, 9)
GERMAN_VAT = CreditVat("S", Decimal(19))
REVERSE_CHARGE = CreditVat("AE", Decimal(0), "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge)")


def _lines(base: str = "20.00", aws: str = "17.74", rate: Decimal = Decimal(19)) -> list[CreditableLine]:
    """The invoice's two lines with the tax the invoice charged on each (summing to its category tax)."""
    base_tax, aws_tax = manual_line_taxes([int(Decimal(base) * 100), int(Decimal(aws) * 100)], rate)
    return [
        CreditableLine("base-fee", "Grundgebühr", Decimal(base), Decimal(base_tax) / 100, OCTOBER),
        CreditableLine("aws", "AWS Infrastruktur (Okt 2026)", Decimal(aws), Decimal(aws_tax) / 100, OCTOBER),
    ]


def _issued(plan: CreditPlan, sequence: int, state: CreditNoteState = CreditNoteState.ISSUED) -> CreditNote:
    return CreditNote(
        credit_note_id=credit_note_id_for("inv_2026-10_acme", sequence),
        account_id="acme",
        invoice_id="inv_2026-10_acme",
        sequence=sequence,
        currency="eur",
        lines=plan.lines,
        vat=GERMAN_VAT,
        reason="wrong base fee",
        settlement=plan.settlement,
        full=plan.full,
        actor="operator",
        created_at=1,
        updated_at=1,
        state=state,
    )


def _plan(
    request: CreditRequest,
    notes: list[CreditNote] | None = None,
    *,
    lines: list[CreditableLine] | None = None,
    vat: CreditVat = GERMAN_VAT,
    paid: bool = True,
) -> CreditPlan:
    lines = _lines() if lines is None else lines
    net = sum((line.net for line in lines), Decimal(0))
    tax = category_tax(net, vat.rate)
    return plan_credit(
        invoice_gross=net + tax,
        invoice_tax=tax,
        lines=lines,
        notes=notes or [],
        vat=vat,
        currency="eur",
        request=request,
        paid=paid,
    )


def test_a_cancellation_takes_back_exactly_the_seed_invoice():
    plan = _plan(CreditRequest("Doppelt berechnet", full=True))
    assert (plan.net, plan.tax, plan.gross) == (Decimal("37.74"), Decimal("7.17"), Decimal("44.91"))
    assert [(line.kind, line.net, line.tax) for line in plan.lines] == [
        ("base-fee", Decimal("20.00"), Decimal("3.80")),
        ("aws", Decimal("17.74"), Decimal("3.37")),
    ]
    assert plan.settlement is Settlement.REFUND and plan.full


def test_a_partial_credit_takes_back_the_vat_of_the_credited_net():
    plan = _plan(CreditRequest("Grundgebühr falsch", lines={"base-fee": Decimal("5.00")}))
    assert [(line.kind, line.net, line.tax) for line in plan.lines] == [("base-fee", Decimal("5.00"), Decimal("0.95"))]
    assert plan.gross == Decimal("5.95")


def test_an_unpaid_invoice_is_credited_before_payment_and_a_paid_one_never():
    assert _plan(CreditRequest("x", full=True), paid=False).settlement is Settlement.PRE_PAYMENT
    with pytest.raises(CreditRefused, match="not paid"):
        _plan(CreditRequest("x", full=True, settlement=Settlement.REFUND), paid=False)
    with pytest.raises(CreditRefused, match="is paid"):
        _plan(CreditRequest("x", full=True, settlement=Settlement.PRE_PAYMENT), paid=True)
    assert _plan(CreditRequest("x", full=True, settlement=Settlement.BALANCE)).settlement is Settlement.BALANCE


def test_nothing_is_credited_twice():
    first = _issued(_plan(CreditRequest("x", lines={"base-fee": Decimal("15.00")})), 1)
    with pytest.raises(CreditRefused, match="at most 5.00 EUR is left"):
        _plan(CreditRequest("x", lines={"base-fee": Decimal("5.01")}), [first])
    rest = _plan(CreditRequest("x", lines={"base-fee": Decimal("5.00")}), [first])
    assert rest.lines[0].tax == Decimal("3.80") - Decimal("2.85")  # the rest of the line's tax, to the cent
    second = _issued(rest, 2)
    with pytest.raises(CreditRefused, match="credited in full already"):
        _plan(CreditRequest("x", lines={"base-fee": Decimal("0.01")}), [first, second])
    with pytest.raises(CreditRefused, match="credited in part already"):
        _plan(CreditRequest("x", full=True), [first])


def test_a_voided_credit_note_gives_its_amount_back_to_credit():
    voided = _issued(_plan(CreditRequest("x", full=True)), 1, CreditNoteState.VOID)
    assert _plan(CreditRequest("x", full=True), [voided]).gross == Decimal("44.91")
    assert credited_total([voided]) == 0


def test_unknown_lines_and_bad_amounts_are_refused_with_what_to_do():
    with pytest.raises(CreditRefused, match="no line 'support'"):
        _plan(CreditRequest("x", lines={"support": Decimal("1.00")}))
    with pytest.raises(CreditRefused, match="whole cents"):
        CreditRequest("x", lines={"aws": Decimal("1.001")})
    with pytest.raises(CreditRefused, match="positive"):
        CreditRequest("x", lines={"aws": Decimal("-1.00")})
    with pytest.raises(CreditRefused, match="reason"):
        CreditRequest("  ", full=True)
    with pytest.raises(CreditRefused, match="not both or neither"):
        CreditRequest("x")


def test_a_line_credited_in_part_takes_its_share_of_the_tax_charged_on_it():
    # The seed invoice's AWS line: 17.74 net, 3.37 tax (3.3706). 3.26 of it takes 3.37 x 3.26 / 17.74 =
    # 0.6193 -> 0.62; 0.03 + 0.03 take 0.01 + 0.01, more than round(0.06 x 19 %) = 0.01 per category,
    # which BR-CO-17 allows (up to one currency unit): each line's share rounds once.
    assert _plan(CreditRequest("x", lines={"aws": Decimal("3.26")})).tax == Decimal("0.62")
    plan = _plan(CreditRequest("x", lines={"base-fee": Decimal("0.03"), "aws": Decimal("0.03")}))
    assert [line.tax for line in plan.lines] == [Decimal("0.01"), Decimal("0.01")]


def test_the_shares_of_a_line_credited_in_parts_add_up_to_exactly_its_tax():
    lines = _lines()
    aws = next(line for line in lines if line.kind == "aws")
    notes: list = []
    taxes = []
    for part in ("5.00", "5.00", "7.74"):
        plan = _plan(CreditRequest("x", lines={"aws": Decimal(part)}), lines=lines, notes=notes)
        taxes.append(plan.lines[0].tax)
        notes.append(_issued(plan, len(notes) + 1))
    assert sum(taxes) == aws.tax


def test_an_untaxed_invoice_is_credited_without_vat():
    lines = _lines(rate=Decimal(0))
    plan = _plan(CreditRequest("x", lines={"aws": Decimal("7.74")}), lines=lines, vat=REVERSE_CHARGE)
    assert (plan.net, plan.tax) == (Decimal("7.74"), Decimal(0))


def test_a_cancellation_of_an_invoice_with_a_carried_credit_takes_back_its_own_total():
    lines = [
        *_lines(),
        CreditableLine("credit", "Guthaben aus der Rechnung 2026-09", Decimal("-7.74"), Decimal("-1.47"), SEPTEMBER),
    ]
    plan = _plan(CreditRequest("x", full=True), lines=lines)
    assert (plan.net, plan.tax) == (Decimal("30.00"), category_tax(Decimal("30.00"), Decimal(19)))


def test_the_status_says_credited_in_part_or_cancelled():
    partial = _issued(_plan(CreditRequest("x", lines={"aws": Decimal("7.74")})), 1)
    assert credit_status(Decimal("44.91"), []) is CreditStatus.NONE
    assert credit_status(Decimal("44.91"), [partial]) is CreditStatus.CREDITED
    full = _issued(_plan(CreditRequest("x", full=True)), 1)
    assert credit_status(Decimal("44.91"), [full]) is CreditStatus.CANCELLED
    pending = _issued(_plan(CreditRequest("x", full=True)), 1, CreditNoteState.PENDING)
    assert credit_status(Decimal("44.91"), [pending]) is CreditStatus.NONE


def test_a_credit_note_only_moves_forward():
    assert state_may_move(CreditNoteState.PENDING, CreditNoteState.ISSUED)
    assert state_may_move(CreditNoteState.ISSUED, CreditNoteState.VOID)
    assert not state_may_move(CreditNoteState.VOID, CreditNoteState.ISSUED)
    assert not state_may_move(CreditNoteState.ISSUED, CreditNoteState.ISSUED)
    assert credit_note_id_for("inv_2026-10_acme", 2) == "cn_2026-10_acme_2"
    with pytest.raises(ValueError):
        credit_note_id_for("inv_2026-10_acme", 0)


_cents = st.integers(min_value=1, max_value=500_000).map(lambda cents: Decimal(cents) / 100)


@settings(max_examples=200, deadline=None)
@given(
    base=_cents,
    aws=_cents,
    asks=st.lists(
        st.tuples(st.sampled_from(["base-fee", "aws", "full"]), st.integers(min_value=1, max_value=600_000)),
        max_size=8,
    ),
)
def test_over_any_sequence_of_credit_notes_the_credited_never_exceeds_the_invoice_and_adds_up(base, aws, asks):
    lines = _lines(str(base), str(aws))
    net = base + aws
    gross = net + category_tax(net, Decimal(19))
    notes: list[CreditNote] = []
    for kind, cents in asks:
        request = (
            CreditRequest("x", full=True) if kind == "full" else CreditRequest("x", lines={kind: Decimal(cents) / 100})
        )
        try:
            plan = _plan(request, notes, lines=lines)
        except CreditRefused:
            continue
        assert plan.gross > 0
        # Every credit note's VAT is EN 16931's of its own lines, or exactly what the invoice charged on them.
        for line in plan.lines:
            assert line.tax == line.tax.quantize(Decimal("0.01"))
        notes.append(_issued(plan, len(notes) + 1))
        credited = credited_total(notes)
        assert credited <= gross
        for line in lines:
            taken = sum((c.net for note in notes for c in note.lines if c.kind == line.kind), Decimal(0))
            assert taken <= line.net
    if credit_status(gross, notes) is CreditStatus.CANCELLED:
        assert credited_total(notes) == gross  # never more, to the cent
        assert sum((note.tax for note in notes), Decimal(0)) == category_tax(net, Decimal(19))
