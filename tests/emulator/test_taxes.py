"""Taxes: Tax Rates, taxes on invoice lines (rates, manual amounts, automatic tax), exemptions and totals."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import stripe

from stripe_emulator import contract
from tests.emulator.conftest import SECRET_KEY

VAT = {
    "display_name": "USt.",
    "percentage": 19.0,
    "inclusive": False,
    "country": "DE",
    "jurisdiction": "DE",
    "description": "German VAT",
    "tax_type": "vat",
}


def _raw(obj: Any) -> dict[str, Any]:
    """The JSON the emulator sent for an SDK result."""
    return json.loads(obj.last_response.body)


def _rate(client: stripe.StripeClient, **changes: Any) -> stripe.TaxRate:
    return client.v1.tax_rates.create(params={**VAT, **changes})  # type: ignore[arg-type]


def _draft(client: stripe.StripeClient, customer: dict[str, Any] | None = None, **params: Any) -> stripe.Invoice:
    created = client.v1.customers.create(params=customer or {})  # type: ignore[arg-type]
    return client.v1.invoices.create(params={"customer": created.id, "currency": "eur", **params})


def _with_lines(client: stripe.StripeClient, invoice: stripe.Invoice, *lines: dict[str, Any]) -> stripe.Invoice:
    return client.v1.invoices.add_lines(invoice.id, params={"lines": list(lines)})  # type: ignore[typeddict-item]


def _line_taxes(invoice: stripe.Invoice) -> list[list[tuple[int, int | None, str]]]:
    return [[(t.amount, t.taxable_amount, t.taxability_reason) for t in line.taxes] for line in invoice.lines.data]


def _totals(invoice: stripe.Invoice) -> tuple[int, int | None, int, int | None]:
    return invoice.subtotal, invoice.subtotal_excluding_tax, invoice.total, invoice.total_excluding_tax


# --- Tax Rates ----------------------------------------------------------------------------------------


def test_a_tax_rate_has_every_declared_field_and_is_found_again_by_listing_its_metadata(client):
    created = _rate(client, metadata={"billingTaxRate": "de-vat-19"})
    raw = _raw(created)
    assert contract.object_violations(raw) == []
    assert raw == {
        **raw,
        "object": "tax_rate",
        "active": True,
        "percentage": 19,
        "inclusive": False,
        "effective_percentage": None,
        "flat_amount": None,
        "rate_type": "percentage",
        "jurisdiction_level": None,
        "state": None,
        "livemode": False,
        "display_name": "USt.",
    }
    for _ in range(3):
        _rate(client, display_name="Other")
    found = [
        r.id
        for r in client.v1.tax_rates.list(params={"active": True, "limit": 2}).auto_paging_iter()
        if r.metadata.to_dict().get("billingTaxRate") == "de-vat-19"
    ]
    assert found == [created.id]
    assert client.v1.tax_rates.retrieve(created.id).percentage == 19


def test_tax_rate_metadata_and_labels_can_change_and_archiving_hides_it_from_active_lists(client, receiver):
    rate = _rate(client, metadata={"a": "1", "b": "2"})
    updated = client.v1.tax_rates.update(
        rate.id, params={"metadata": {"a": "", "c": "3"}, "display_name": "MwSt.", "active": False}
    )
    assert updated.metadata.to_dict() == {"b": "2", "c": "3"}
    assert (updated.display_name, updated.active, updated.percentage) == ("MwSt.", False, 19)
    assert client.v1.tax_rates.list(params={"active": True}).data == []
    assert [r.id for r in client.v1.tax_rates.list(params={"active": False}).data] == [rate.id]
    events = client.v1.events.list(params={"type": "tax_rate.updated"}).data
    assert events[0].data.previous_attributes["active"] is True


@pytest.mark.parametrize("field, value", [("percentage", 7.0), ("inclusive", True)])
def test_a_tax_rates_percentage_and_inclusive_cannot_change(client, field, value):
    rate = _rate(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.tax_rates.update(rate.id, params={field: value})  # type: ignore[misc]
    assert (refused.value.http_status, refused.value.code, refused.value.param) == (400, "parameter_unknown", field)
    assert client.v1.tax_rates.retrieve(rate.id).percentage == 19


def test_tax_rate_creation_needs_its_required_fields_and_a_percentage_stripe_accepts(client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.tax_rates.create(params={"display_name": "VAT", "percentage": 19.0})  # type: ignore[typeddict-item]
    assert (missing.value.code, missing.value.param) == ("parameter_missing", "inclusive")
    for bad in (-1.0, 100.5, 19.12345):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            _rate(client, percentage=bad)
        assert refused.value.param == "percentage"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.tax_rates.retrieve("txr_missing")
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")
    assert unknown.value.user_message == "No such tax rate: 'txr_missing'"


def test_tax_rates_list_by_inclusive_and_created(client):
    exclusive = _rate(client)
    inclusive = _rate(client, inclusive=True)
    assert [r.id for r in client.v1.tax_rates.list(params={"inclusive": True}).data] == [inclusive.id]
    assert [r.id for r in client.v1.tax_rates.list(params={"inclusive": False}).data] == [exclusive.id]
    assert len(client.v1.tax_rates.list(params={"created": {"gte": exclusive.created}}).data) == 2
    assert len(client.v1.tax_rates.list(params={"created": exclusive.created}).data) == 2
    assert client.v1.tax_rates.list(params={"created": {"gt": inclusive.created}}).data == []


def test_a_tax_rate_created_twice_with_one_idempotency_key_is_one_tax_rate(client, control):
    first = client.v1.tax_rates.create(params=VAT, options={"idempotency_key": "vat-19"})  # type: ignore[arg-type]
    again = client.v1.tax_rates.create(params=VAT, options={"idempotency_key": "vat-19"})  # type: ignore[arg-type]
    assert again.id == first.id
    assert control.objects()["tax_rate"] == 1
    assert len(client.v1.events.list(params={"type": "tax_rate.created"}).data) == 1
    assert control.requests()["idempotent_replays"]["POST /v1/tax_rates"] == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.tax_rates.create(
            params={**VAT, "percentage": 7.0},  # type: ignore[arg-type]
            options={"idempotency_key": "vat-19"},
        )


def test_the_tax_rate_routes_answer_what_the_sdk_declares(client, control):
    control.configure(check_contract=False)  # see the raw answers, not the emulator's own check
    try:
        rate = _rate(client)
        answers = [
            ("POST", "/v1/tax_rates", _raw(rate)),
            ("GET", "/v1/tax_rates", _raw(client.v1.tax_rates.list())),
            ("GET", "/v1/tax_rates/{tax_rate}", _raw(client.v1.tax_rates.retrieve(rate.id))),
            (
                "POST",
                "/v1/tax_rates/{tax_rate}",
                _raw(client.v1.tax_rates.update(rate.id, params={"metadata": {"k": "v"}})),
            ),
        ]
        for method, path, body in answers:
            declared = contract.operation(method, path).returns
            assert contract.shape_violations(body, declared, body["object"]) == [], path
        invoices = [
            _with_lines(client, _draft(client, default_tax_rates=[rate.id]), {"amount": 3}, {"amount": -3}),
            _with_lines(client, _draft(client), {"amount": 3, "tax_amounts": [_amount(1, 3)]}),
            _with_lines(client, _automatic(client, "DE"), {"amount": 3}),
            _with_lines(client, _automatic(client, None), {"amount": 3}),
        ]
        for invoice in invoices:
            assert contract.object_violations(_raw(invoice)) == []
        items = _raw(client.v1.invoice_items.list(params={"limit": 100}))
        assert contract.object_violations(items) == []
        events = _raw(client.v1.events.list(params={"limit": 100}))
        assert {e["type"] for e in events["data"]} >= {"tax_rate.created", "tax_rate.updated", "invoice.updated"}
        assert contract.object_violations(events) == []
    finally:
        control.configure(check_contract=True)


# --- tax rates on lines -------------------------------------------------------------------------------


def test_an_unknown_tax_rate_on_a_line_is_refused_and_no_line_is_added(client, emulator):
    draft = _draft(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _with_lines(client, draft, {"amount": 100}, {"amount": 200, "tax_rates": ["txr_nope"]})
    error = refused.value
    assert (error.http_status, error.code, error.param) == (400, "resource_missing", "lines[1][tax_rates][0]")
    assert error.user_message == "No such tax rate: 'txr_nope'"
    assert contract.error_violations(error.json_body) == []
    assert client.v1.invoices.retrieve(draft.id).lines.data == []  # all lines or none
    assert client.v1.invoice_items.list().data == []


def test_an_archived_tax_rate_cannot_be_added_to_a_line_an_item_or_an_invoice(client):
    archived = client.v1.tax_rates.update(_rate(client).id, params={"active": False})
    draft = _draft(client)
    with pytest.raises(stripe.InvalidRequestError) as on_line:
        _with_lines(client, draft, {"amount": 100, "tax_rates": [archived.id]})
    assert on_line.value.param == "lines[0][tax_rates][0]" and "archived" in on_line.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as on_item:
        client.v1.invoice_items.create(
            params={"customer": draft.customer, "invoice": draft.id, "amount": 5, "tax_rates": [archived.id]}
        )
    assert on_item.value.param == "tax_rates[0]"
    with pytest.raises(stripe.InvalidRequestError) as on_invoice:
        client.v1.invoices.create(params={"customer": draft.customer, "default_tax_rates": [archived.id]})
    assert on_invoice.value.param == "default_tax_rates[0]"


def test_a_line_takes_at_most_ten_tax_rates(client):
    # "You can add up to ten tax rates to each line item" (https://docs.stripe.com/invoicing/taxes/tax-rates)
    rates = [_rate(client, jurisdiction=f"J{i}").id for i in range(11)]
    draft = _draft(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _with_lines(client, draft, {"amount": 100, "tax_rates": rates})
    assert refused.value.param == "lines[0][tax_rates]"
    assert refused.value.user_message == "You can apply at most 10 tax rates; lines[0][tax_rates] has 11."
    with pytest.raises(stripe.InvalidRequestError) as on_item:
        client.v1.invoice_items.create(
            params={"customer": draft.customer, "amount": 100, "currency": "eur", "tax_rates": rates}  # type: ignore
        )
    assert on_item.value.param == "tax_rates"
    line = _with_lines(client, draft, {"amount": 100, "tax_rates": rates[:10]}).lines.data[0]
    assert len(line.taxes) == 10 and line.taxes[9].amount == 19


def test_tax_is_rounded_per_line_so_two_three_cent_lines_carry_one_cent_each(client):
    rate = _rate(client)
    invoice = _with_lines(
        client, _draft(client), {"amount": 3, "tax_rates": [rate.id]}, {"amount": 3, "tax_rates": [rate.id]}
    )
    assert _line_taxes(invoice) == [[(1, 3, "not_available")], [(1, 3, "not_available")]]
    line_tax = invoice.lines.data[0].taxes[0]
    assert (line_tax.type, line_tax.tax_behavior, line_tax.tax_rate_details.tax_rate) == (
        "tax_rate_details",
        "exclusive",
        rate.id,
    )
    assert _totals(invoice) == (6, 6, 8, 6)
    assert (invoice.amount_due, invoice.amount_remaining) == (8, 8)
    assert [(t.amount, t.taxable_amount, t.tax_rate_details.tax_rate) for t in invoice.total_taxes] == [(2, 6, rate.id)]
    item = client.v1.invoice_items.list(params={"invoice": invoice.id}).data[0]
    assert [r.id for r in item.tax_rates] == [rate.id] and item.tax_rates[0].object == "tax_rate"


def test_negative_lines_round_half_away_from_zero(client):
    rate = _rate(client)
    invoice = _with_lines(
        client,
        _draft(client),
        {"amount": 1000, "tax_rates": [rate.id]},
        {"amount": -250, "tax_rates": [rate.id]},
        {"amount": -3, "tax_rates": [rate.id]},
    )
    assert [taxes[0][0] for taxes in _line_taxes(invoice)] == [190, -48, -1]  # -47.5 -> -48, -0.57 -> -1
    assert _totals(invoice) == (747, 747, 888, 747)
    assert invoice.total_taxes[0].amount == 141 and invoice.total_taxes[0].taxable_amount == 747


def test_a_credit_larger_than_the_charges_leaves_nothing_due(client):
    rate = _rate(client)
    invoice = _with_lines(client, _draft(client), {"amount": -500, "tax_rates": [rate.id]})
    assert (invoice.total, invoice.amount_due) == (-595, 0)


def test_total_taxes_has_one_entry_per_tax_rate_summed_over_its_lines(client):
    vat, reduced = _rate(client), _rate(client, percentage=7.0, display_name="USt. 7 %")
    invoice = _with_lines(
        client,
        _draft(client),
        {"amount": 1000, "tax_rates": [vat.id]},
        {"amount": 333, "tax_rates": [reduced.id]},
        {"amount": 555, "tax_rates": [vat.id]},
        {"amount": 100},
    )
    assert [(t.tax_rate_details.tax_rate, t.amount, t.taxable_amount) for t in invoice.total_taxes] == [
        (vat.id, 190 + 105, 1555),
        (reduced.id, 23, 333),
    ]
    assert invoice.total == 1988 + 190 + 105 + 23
    assert _line_taxes(invoice)[3] == []


def test_an_inclusive_rate_is_part_of_the_amount(client):
    included = _rate(client, inclusive=True)
    invoice = _with_lines(
        client,
        _draft(client),
        {"amount": 119, "tax_rates": [included.id]},
        {"amount": 1000, "tax_rates": [included.id]},
    )
    assert _line_taxes(invoice) == [[(19, 100, "not_available")], [(160, 840, "not_available")]]  # 159.66 -> 160
    assert invoice.lines.data[0].taxes[0].tax_behavior == "inclusive"
    assert _totals(invoice) == (1119, 940, 1119, 940)
    assert invoice.amount_due == 1119


def test_an_exclusive_rate_next_to_an_inclusive_one_is_computed_on_the_amount_without_the_inclusive_tax(client):
    included, added = _rate(client, inclusive=True, percentage=5.0), _rate(client, percentage=7.0)
    invoice = _with_lines(client, _draft(client), {"amount": 450, "tax_rates": [included.id, added.id]})
    # Stripe's example (docs "Both inclusive and exclusive tax"): 4.50 -> 0.21 included, 0.30 on 4.29.
    assert _line_taxes(invoice) == [[(21, 429, "not_available"), (30, 429, "not_available")]]
    assert _totals(invoice) == (450, 429, 480, 429)


def test_default_tax_rates_apply_to_lines_without_their_own(client):
    vat, reduced = _rate(client), _rate(client, percentage=7.0)
    draft = _draft(client, default_tax_rates=[vat.id])
    assert [r.id for r in draft.default_tax_rates] == [vat.id]
    invoice = _with_lines(client, draft, {"amount": 3}, {"amount": 3}, {"amount": 1000, "tax_rates": [reduced.id]})
    assert [[t[0] for t in taxes] for taxes in _line_taxes(invoice)] == [[1], [1], [70]]
    assert invoice.total == 1006 + 72
    client.v1.invoices.update(draft.id, params={"default_tax_rates": ""})
    assert client.v1.invoices.retrieve(draft.id).total == 1006 + 70


def test_an_invoice_item_carries_its_tax_rates_and_can_drop_them(client, receiver):
    rate = _rate(client)
    draft = _draft(client)
    item = client.v1.invoice_items.create(
        params={"customer": draft.customer, "invoice": draft.id, "amount": 1000, "tax_rates": [rate.id]}
    )
    assert [r.id for r in item.tax_rates] == [rate.id]
    assert client.v1.invoices.retrieve(draft.id).total == 1190
    client.v1.invoice_items.update(item.id, params={"tax_rates": ""})
    invoice = client.v1.invoices.retrieve(draft.id)
    assert (invoice.total, invoice.total_taxes) == (1000, [])
    updates = client.v1.events.list(params={"type": "invoice.updated"}).data
    assert updates[0].data.previous_attributes["total"] == 1190
    assert updates[0].data.previous_attributes["total_taxes"][0]["amount"] == 190


def test_a_pending_item_keeps_its_tax_rates_when_it_joins_an_invoice(client):
    rate = _rate(client)
    customer = client.v1.customers.create()
    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 3, "currency": "eur", "tax_rates": [rate.id]}
    )
    invoice = client.v1.invoices.create(
        params={"customer": customer.id, "currency": "eur", "pending_invoice_items_behavior": "include"}
    )
    assert (invoice.total, invoice.total_taxes[0].amount) == (4, 1)


# --- manual tax amounts -------------------------------------------------------------------------------


def _amount(amount: int, taxable: int, **data: Any) -> dict[str, Any]:
    return {
        "amount": amount,
        "taxable_amount": taxable,
        "taxability_reason": "standard_rated",
        "tax_rate_data": {
            "display_name": "USt.",
            "percentage": 19.0,
            "inclusive": False,
            "country": "DE",
            "jurisdiction": "DE",
            "tax_type": "vat",
            **data,
        },
    }


def test_manual_tax_amounts_make_one_archived_tax_rate_reused_for_the_same_data(client):
    invoice = _with_lines(
        client,
        _draft(client),
        {"amount": 3, "tax_amounts": [_amount(1, 3)]},
        {"amount": 3, "tax_amounts": [_amount(0, 3)]},
    )
    rates = {tax.tax_rate_details.tax_rate for line in invoice.lines.data for tax in line.taxes}
    assert len(rates) == 1
    made = client.v1.tax_rates.retrieve(rates.pop())
    assert (made.active, made.percentage, made.display_name, made.country, made.tax_type) == (
        False,
        19,
        "USt.",
        "DE",
        "vat",
    )
    assert _line_taxes(invoice) == [[(1, 3, "standard_rated")], [(0, 3, "standard_rated")]]
    assert _totals(invoice) == (6, 6, 7, 6)
    assert [(t.amount, t.taxable_amount) for t in invoice.total_taxes] == [(1, 6)]
    assert all(item.tax_rates == [] for item in client.v1.invoice_items.list(params={"invoice": invoice.id}).data)

    later = _with_lines(
        client,
        _draft(client),
        {"amount": 100, "tax_amounts": [_amount(19, 100)]},
        {"amount": 100, "tax_amounts": [_amount(7, 100, percentage=7.0)]},
    )
    later_rates = [line.taxes[0].tax_rate_details.tax_rate for line in later.lines.data]
    assert later_rates[0] == made.id and later_rates[1] != made.id  # reused only on an exact match
    assert [r.id for r in client.v1.tax_rates.list(params={"active": True}).data] == []
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _with_lines(client, _draft(client), {"amount": 100, "tax_rates": [made.id]})
    assert refused.value.param == "lines[0][tax_rates][0]"


@pytest.mark.parametrize(
    "setup, lines, param",
    [
        (
            "none",
            [{"amount": 100, "tax_rates": ["{rate}"], "tax_amounts": [_amount(19, 100)]}],
            "lines[0][tax_amounts]",
        ),
        (
            "none",
            [{"amount": 100, "tax_rates": ["{rate}"]}, {"amount": 100, "tax_amounts": [_amount(19, 100)]}],
            "lines[1][tax_amounts]",
        ),
        ("line_with_rate", [{"amount": 100, "tax_amounts": [_amount(19, 100)]}], "lines[0][tax_amounts]"),
        ("line_with_amounts", [{"amount": 100, "tax_rates": ["{rate}"]}], "lines[0][tax_rates]"),
        ("default_tax_rates", [{"amount": 100, "tax_amounts": [_amount(19, 100)]}], "lines[0][tax_amounts]"),
        ("automatic_tax", [{"amount": 100, "tax_amounts": [_amount(19, 100)]}], "lines[0][tax_amounts]"),
    ],
)
def test_tax_amounts_do_not_mix_with_tax_rates_or_automatic_tax(client, setup, lines, param):
    rate = _rate(client)
    extra: dict[str, Any] = {}
    customer: dict[str, Any] = {}
    if setup == "default_tax_rates":
        extra = {"default_tax_rates": [rate.id]}
    if setup == "automatic_tax":
        extra, customer = {"automatic_tax": {"enabled": True}}, {"address": {"country": "DE"}}
    draft = _draft(client, customer, **extra)
    if setup == "line_with_rate":
        _with_lines(client, draft, {"amount": 5, "tax_rates": [rate.id]})
    if setup == "line_with_amounts":
        _with_lines(client, draft, {"amount": 5, "tax_amounts": [_amount(1, 5)]})
    before = len(client.v1.invoices.retrieve(draft.id).lines.data)
    lines = [{**line, "tax_rates": [rate.id]} if "tax_rates" in line else line for line in lines]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _with_lines(client, draft, *lines)
    assert (refused.value.http_status, refused.value.param) == (400, param)
    assert len(client.v1.invoices.retrieve(draft.id).lines.data) == before


def test_at_most_twenty_tax_amounts_and_a_valid_percentage(client):
    draft = _draft(client)
    with pytest.raises(stripe.InvalidRequestError) as too_many:
        _with_lines(
            client, draft, {"amount": 100, "tax_amounts": [_amount(1, 100, jurisdiction=str(i)) for i in range(21)]}
        )
    assert too_many.value.param == "lines[0][tax_amounts]"
    with pytest.raises(stripe.InvalidRequestError) as bad:
        _with_lines(client, draft, {"amount": 100, "tax_amounts": [_amount(1, 100, percentage=101.0)]})
    assert bad.value.param == "lines[0][tax_amounts][0][tax_rate_data][percentage]"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        _with_lines(client, draft, {"amount": 100, "tax_amounts": [{"amount": 1, "taxable_amount": 100}]})
    assert (missing.value.code, missing.value.param) == ("parameter_missing", "lines[0][tax_amounts][0][tax_rate_data]")


def test_lines_keep_their_period_and_metadata_next_to_their_taxes(client):
    rate = _rate(client)
    invoice = _with_lines(
        client,
        _draft(client),
        {
            "amount": 2000,
            "description": "Grundgebühr",
            "metadata": {"line": "base-fee"},
            "period": {"start": 1730419200, "end": 1733011199},
            "tax_rates": [rate.id],
        },
        {"amount": 1774, "metadata": {"line": "aws"}, "tax_amounts": []},
    )
    base, aws = invoice.lines.data
    assert (base.period.start, base.period.end, base.metadata.to_dict()) == (
        1730419200,
        1733011199,
        {"line": "base-fee"},
    )
    assert (base.taxes[0].amount, aws.metadata.to_dict(), aws.taxes) == (380, {"line": "aws"}, [])


# --- customer tax exemption ---------------------------------------------------------------------------


def test_an_exempt_customer_pays_no_tax_on_tax_rates(client):
    rate = _rate(client)
    invoice = _with_lines(client, _draft(client, {"tax_exempt": "exempt"}), {"amount": 1000, "tax_rates": [rate.id]})
    assert invoice.customer_tax_exempt == "exempt"
    assert _line_taxes(invoice) == [[(0, 1000, "customer_exempt")]]
    assert _totals(invoice) == (1000, 1000, 1000, 1000)


def test_a_reverse_charge_customer_pays_no_tax_and_an_inclusive_tax_is_backed_out(client, emulator):
    # Stripe's table: a 10 % inclusive rate on 100 for an exempt or reverse customer leaves 90.91 due.
    included = _rate(client, inclusive=True, percentage=10.0)
    draft = _draft(client, {"tax_exempt": "reverse"})
    invoice = _with_lines(client, draft, {"amount": 10000, "tax_rates": [included.id]})
    assert _line_taxes(invoice) == [[(0, 9091, "reverse_charge")]]
    assert _totals(invoice) == (10000, 9091, 9091, 9091)
    finalized = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    assert finalized.amount_due == 9091
    assert "Reverse charge" in requests.get(finalized.hosted_invoice_url, timeout=5).text
    assert b"Reverse charge" in requests.get(finalized.invoice_pdf, timeout=5).content


def test_a_draft_follows_the_customers_tax_exemption_until_it_is_finalized(client, receiver):
    rate = _rate(client)
    draft = _draft(client)
    _with_lines(client, draft, {"amount": 1000, "tax_rates": [rate.id]})
    client.v1.customers.update(draft.customer, params={"tax_exempt": "reverse"})
    followed = client.v1.invoices.retrieve(draft.id)
    assert (followed.customer_tax_exempt, followed.total) == ("reverse", 1000)
    update = client.v1.events.list(params={"type": "invoice.updated"}).data[0]
    assert update.data.previous_attributes["customer_tax_exempt"] == "none"
    finalized = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    client.v1.customers.update(draft.customer, params={"tax_exempt": "none"})
    frozen = client.v1.invoices.retrieve(finalized.id)
    assert (frozen.customer_tax_exempt, frozen.total) == ("reverse", 1000)


# --- automatic tax (the emulator's model of Stripe Tax) -----------------------------------------------


def _automatic(client: stripe.StripeClient, country: str | None, tax_exempt: str = "none") -> stripe.Invoice:
    customer: dict[str, Any] = {"tax_exempt": tax_exempt}
    if country:
        customer["address"] = {"country": country, "line1": "Hauptstr. 1", "postal_code": "10115"}
    return _draft(client, customer, automatic_tax={"enabled": True})


def test_automatic_tax_charges_german_vat_to_a_german_customer_with_an_archived_rate(client):
    draft = _automatic(client, "DE")
    assert (draft.automatic_tax.enabled, draft.automatic_tax.status, draft.automatic_tax.provider) == (
        True,
        "complete",
        "stripe",
    )
    assert draft.automatic_tax.liability.type == "self"
    invoice = _with_lines(client, draft, {"amount": 2000}, {"amount": 1774})
    assert _line_taxes(invoice) == [[(380, 2000, "standard_rated")], [(337, 1774, "standard_rated")]]
    assert (invoice.total, invoice.total_taxes[0].amount) == (3774 + 717, 717)
    rate = client.v1.tax_rates.retrieve(invoice.total_taxes[0].tax_rate_details.tax_rate)
    assert (
        rate.active,
        rate.country,
        rate.percentage,
        rate.effective_percentage,
        rate.tax_type,
        rate.inclusive,
        rate.jurisdiction_level,
    ) == (False, "DE", 19, 19, "vat", False, "country")
    other = _with_lines(client, _automatic(client, "DE"), {"amount": 100})
    assert other.total_taxes[0].tax_rate_details.tax_rate == rate.id  # one rate for all German VAT


def test_automatic_tax_rounds_once_per_invoice_as_stripe_tax_does(client, control):
    invoice = _with_lines(client, _automatic(client, "DE"), {"amount": 3}, {"amount": 3})
    assert [taxes[0][0] for taxes in _line_taxes(invoice)] == [1, 0]  # 1.14 rounds to 1, spread over the lines
    assert invoice.total == 7
    control.configure(automatic_tax_rounding="line")
    try:
        per_line = _with_lines(client, _automatic(client, "DE"), {"amount": 3}, {"amount": 3})
        assert [taxes[0][0] for taxes in _line_taxes(per_line)] == [1, 1] and per_line.total == 8
    finally:
        control.configure(automatic_tax_rounding="invoice")


@pytest.mark.parametrize(
    "country, tax_exempt, tax, reason, rate_country",
    [
        ("FR", "none", 190, "standard_rated", "DE"),  # below the OSS threshold: the seller's German VAT
        ("FR", "reverse", 0, "reverse_charge", "FR"),
        ("DE", "exempt", 0, "customer_exempt", "DE"),
        ("US", "none", 0, "not_subject_to_tax", "US"),
        ("CH", "reverse", 0, "reverse_charge", "CH"),
    ],
)
def test_automatic_tax_by_the_customers_country_and_exemption(client, country, tax_exempt, tax, reason, rate_country):
    invoice = _with_lines(client, _automatic(client, country, tax_exempt), {"amount": 1000})
    assert _line_taxes(invoice) == [[(tax, 1000, reason)]]
    assert invoice.total == 1000 + tax
    rate = client.v1.tax_rates.retrieve(invoice.total_taxes[0].tax_rate_details.tax_rate)
    assert (rate.country, rate.active) == (rate_country, False)


def test_automatic_tax_without_a_customer_location_cannot_finalize(client, receiver):
    draft = _automatic(client, None)
    invoice = _with_lines(client, draft, {"amount": 1000})
    assert (invoice.automatic_tax.status, invoice.total, invoice.total_taxes) == ("requires_location_inputs", 1000, [])
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.invoices.finalize_invoice(draft.id)
    assert refused.value.code == "customer_tax_location_invalid"
    assert contract.error_violations(refused.value.json_body) == []
    failed = client.v1.invoices.retrieve(draft.id)
    assert (failed.status, failed.last_finalization_error.code) == ("draft", "customer_tax_location_invalid")
    assert client.v1.events.list(params={"type": "invoice.finalization_failed"}).data

    client.v1.customers.update(draft.customer, params={"address": {"country": "DE"}})
    located = client.v1.invoices.retrieve(draft.id)
    assert (located.automatic_tax.status, located.total) == ("complete", 1190)
    finalized = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    assert (finalized.status, finalized.amount_due, finalized.last_finalization_error) == ("open", 1190, None)


@pytest.mark.parametrize(
    "line, param",
    [
        ({"amount": 1000, "tax_rates": ["{rate}"]}, "lines[0][tax_rates]"),
        ({"amount": -100}, "lines[0][amount]"),
    ],
)
def test_automatic_tax_takes_no_line_with_its_own_tax_rates_or_a_negative_amount(client, line, param):
    rate = _rate(client)
    draft = _automatic(client, "DE")
    line = {**line, "tax_rates": [rate.id]} if "tax_rates" in line else line
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _with_lines(client, draft, line)
    assert refused.value.param == param
    with pytest.raises(stripe.InvalidRequestError) as both:
        client.v1.invoices.create(
            params={"customer": draft.customer, "automatic_tax": {"enabled": True}, "default_tax_rates": [rate.id]}
        )
    assert both.value.param == "default_tax_rates"


def test_tax_shows_on_the_hosted_invoice_page(client, emulator):
    rate = _rate(client)
    draft = _draft(client)
    _with_lines(client, draft, {"amount": 3774, "tax_rates": [rate.id]})
    finalized = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    page = requests.get(finalized.hosted_invoice_url, timeout=5).text
    assert "USt. (19%)" in page and "7.17 EUR" in page and "44.91 EUR" in page
    raw = requests.get(
        f"{emulator.url}/v1/invoices/{draft.id}", headers={"Authorization": f"Bearer {SECRET_KEY}"}, timeout=5
    ).json()
    assert contract.object_violations(raw) == []


def test_a_draft_cannot_switch_to_taxes_its_lines_do_not_allow_and_is_left_as_it_was(client):
    rate = _rate(client)
    with_rates = _draft(client, {"address": {"country": "DE"}})
    _with_lines(client, with_rates, {"amount": 100, "tax_rates": [rate.id]})
    with pytest.raises(stripe.InvalidRequestError) as automatic:
        client.v1.invoices.update(with_rates.id, params={"automatic_tax": {"enabled": True}, "description": "x"})
    assert automatic.value.param == "automatic_tax[enabled]"
    unchanged = client.v1.invoices.retrieve(with_rates.id)
    assert (unchanged.automatic_tax.enabled, unchanged.description, unchanged.total) == (False, None, 119)

    with_amounts = _draft(client)
    _with_lines(client, with_amounts, {"amount": 100, "tax_amounts": [_amount(19, 100)]})
    with pytest.raises(stripe.InvalidRequestError) as defaults:
        client.v1.invoices.update(with_amounts.id, params={"default_tax_rates": [rate.id]})
    assert defaults.value.param == "default_tax_rates"

    switched = client.v1.invoices.update(
        _draft(client, {"address": {"country": "AT"}}).id, params={"automatic_tax": {"enabled": True}}
    )
    assert (switched.automatic_tax.enabled, switched.automatic_tax.status) == (True, "complete")


def test_one_pending_item_cannot_be_added_twice_in_one_request(client):
    customer = client.v1.customers.create()
    item = client.v1.invoice_items.create(params={"customer": customer.id, "amount": 100, "currency": "eur"})
    draft = client.v1.invoices.create(params={"customer": customer.id, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.invoices.add_lines(draft.id, params={"lines": [{"invoice_item": item.id}, {"invoice_item": item.id}]})
    assert refused.value.param == "lines[1][invoice_item]"
    assert client.v1.invoices.retrieve(draft.id).lines.data == []
