"""The Billing tab's credit notes over HTTP with in-memory ports: listed on their invoice, served to its owner only."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_core.bootstrap import ApiPorts
from billing_core.domain.credit_notes import CreditNoteState, credit_note_id_for
from tests.support.api import TokenFactory, invoice_item, new_rsa_key
from tests.support.fakes import (
    FakeAccountRepository,
    FakeCostSource,
    FakeCreditNotes,
    FakeDocumentStore,
    FakeInvoiceRepository,
    FakePaymentGateway,
    FakeSecretsProvider,
)
from tests.support.records import a_credit_note
from tests.unit.test_api_http import ALICE, BOB, SEED_COSTS, auth, make_app

XML = b"<?xml version='1.0' encoding='UTF-8'?><rsm:CrossIndustryInvoice/>"
PDF = b"%PDF-1.7 credit note"
ALICES = f"inv_2025-06_{ALICE}"
BOBS = f"inv_2025-11_{BOB}"


def issued(invoice, sequence: int = 1, **overrides):
    """An issued credit note of ``invoice`` whose files are ``<id>.xml`` and ``<id>.pdf``."""
    credit_note_id = credit_note_id_for(invoice.invoice_id, sequence)
    values = {
        "state": CreditNoteState.ISSUED,
        "number": f"CN-{invoice.invoice_id}-{sequence}",
        "issued_at": 1_730_500_000_000,
        "einvoice_xml": f"{credit_note_id}.xml",
        "einvoice_pdf": f"{credit_note_id}.pdf",
    }
    return a_credit_note(invoice, sequence, **{**values, **overrides})


@pytest.fixture(scope="module")
def tokens():
    return TokenFactory(new_rsa_key())


@pytest.fixture
def ports():
    """Alice's June invoice credited 11.90 of 37.74, Bob's November invoice cancelled; both notes' files stored."""
    alice = invoice_item(ALICE, "2025-06", credited=Decimal("11.90"))
    bob = invoice_item(BOB, "2025-11", credited=Decimal("37.74"))
    return ApiPorts(
        settings=None,
        invoices=FakeInvoiceRepository([invoice_item(ALICE, "2025-05"), alice, bob]),
        accounts=FakeAccountRepository(),
        costs=FakeCostSource(SEED_COSTS),
        payments=FakePaymentGateway(),
        secrets=FakeSecretsProvider(publishable_key="pk_test_page"),
        billing_jobs=None,
        credit_notes=FakeCreditNotes(),
        documents=FakeDocumentStore(),
    )


@pytest.fixture
def credited(ports):
    """The issued credit notes of Alice's and Bob's invoices."""
    notes = {
        "alice": issued(ports.invoices.get(ALICE, ALICES)),
        "bob": issued(ports.invoices.get(BOB, BOBS), full=True, reason="Doppelt berechnet"),
    }
    for note in notes.values():
        ports.credit_notes.create_if_absent(note)
        ports.documents.put_once(note.einvoice_xml, XML, "application/xml")
        ports.documents.put_once(note.einvoice_pdf, PDF, "application/pdf")
    return notes


@pytest.fixture
def client(tokens, ports, credited):
    return make_app(tokens, ports).test_client()


def url(invoice_id: str, credit_note_id: str, format_name: str = "xrechnung") -> str:
    return f"/billing/invoices/{invoice_id}/credit-notes/{credit_note_id}/einvoice?format={format_name}"


def test_an_invoice_lists_its_issued_credit_notes_and_says_it_is_corrected(client, tokens, credited):
    body = client.get("/billing", headers=auth(tokens)).get_json()
    june = next(i for i in body["invoices"] if i["invoiceId"] == ALICES)
    others = [i for i in body["invoices"] if i["invoiceId"] != ALICES]

    assert (june["credited"], june["correction"]) == ("11.90", "credited")
    assert june["creditNotes"] == [
        {
            "creditNoteId": credited["alice"].credit_note_id,
            "number": f"CN-{ALICES}-1",
            "kind": "correction",
            "currency": "EUR",
            "net": "10.00",
            "tax": "1.90",
            "gross": "11.90",
            "issuedAt": 1_730_500_000_000,
            "einvoice": {"xrechnung": True, "zugferd": True},
        }
    ]
    assert all(i["creditNotes"] == [] and i["correction"] is None and i["credited"] == "0.00" for i in others)


def test_an_invoice_credited_in_full_is_cancelled_and_its_credit_note_is_a_cancellation(tokens, ports, credited):
    client = make_app(tokens, ports).test_client()
    body = client.get(f"/billing/invoices/{BOBS}", headers=auth(tokens, sub=BOB)).get_json()

    assert (body["credited"], body["correction"]) == ("37.74", "cancelled")
    assert [note["kind"] for note in body["creditNotes"]] == ["cancellation"]


def test_a_pending_or_void_credit_note_is_neither_listed_nor_served(client, tokens, ports, credited):
    june = ports.invoices.get(ALICE, ALICES)
    pending = a_credit_note(june, 2, einvoice_xml="pending.xml")
    void = issued(june, 3, state=CreditNoteState.VOID)
    for note in (pending, void):
        ports.credit_notes.create_if_absent(note)
    ports.documents.put_once("pending.xml", XML, "application/xml")

    listed = client.get(f"/billing/invoices/{ALICES}", headers=auth(tokens)).get_json()

    assert [note["creditNoteId"] for note in listed["creditNotes"]] == [credited["alice"].credit_note_id]
    for note in (pending, void):
        assert client.get(url(ALICES, note.credit_note_id), headers=auth(tokens)).status_code == 404


def test_the_admin_downloads_both_files_of_their_own_credit_note(client, tokens, credited):
    note = credited["alice"]

    xml = client.get(url(ALICES, note.credit_note_id), headers=auth(tokens))
    pdf = client.get(url(ALICES, note.credit_note_id, "zugferd"), headers=auth(tokens))
    default = client.get(url(ALICES, note.credit_note_id).split("?")[0], headers=auth(tokens))

    assert xml.status_code == 200 and xml.data == XML and xml.mimetype == "application/xml"
    assert xml.headers["Content-Disposition"] == f'attachment; filename="Rechnungskorrektur-CN-{ALICES}-1.xml"'
    assert xml.headers["Cache-Control"] == "private, no-store"
    assert pdf.status_code == 200 and pdf.data == PDF and pdf.mimetype == "application/pdf"
    assert default.data == XML


def test_another_accounts_credit_note_is_not_found_however_it_is_asked_for(client, tokens, credited):
    bobs = credited["bob"].credit_note_id

    answers = [
        client.get(url(BOBS, bobs), headers=auth(tokens)),  # Bob's invoice and note, asked by Alice
        client.get(url(ALICES, bobs), headers=auth(tokens)),  # Bob's note under Alice's invoice
        client.get(url(ALICES, credited["alice"].credit_note_id), headers=auth(tokens, sub=BOB)),
    ]

    for answer in answers:
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"
        assert PDF not in answer.data and XML not in answer.data


def test_a_bad_format_an_unknown_parameter_and_no_token_are_refused(client, tokens, credited):
    note = credited["alice"].credit_note_id

    bad = client.get(url(ALICES, note, "ubl"), headers=auth(tokens))
    unknown = client.get(url(ALICES, note) + "&x=1", headers=auth(tokens))
    anonymous = client.get(url(ALICES, note))

    assert bad.status_code == 400 and unknown.status_code == 400
    assert anonymous.status_code == 401


def test_a_credit_note_without_stored_files_is_a_404(client, tokens, ports, credited):
    june = ports.invoices.get(ALICE, ALICES)
    unwritten = issued(june, 2, einvoice_xml=None, einvoice_pdf=None)
    ports.credit_notes.create_if_absent(unwritten)

    answer = client.get(url(ALICES, unwritten.credit_note_id), headers=auth(tokens))
    listed = client.get(f"/billing/invoices/{ALICES}", headers=auth(tokens)).get_json()

    assert answer.status_code == 404 and "no e-invoice" in answer.get_json()["error"]["message"]
    assert listed["creditNotes"][1]["einvoice"] == {"xrechnung": False, "zugferd": False}


def test_the_operators_invoice_lists_its_lines_and_what_was_credited(tokens, ports, credited):
    from billing_api.operator_routes import operator_invoice_json

    record = ports.invoices.get(ALICE, ALICES)
    shown = operator_invoice_json(record)

    assert shown["lines"] == [
        {"line": "base-fee", "description": "Monatliche Grundgebühr", "net": "20.00"},
        {"line": "aws", "description": "AWS Infrastruktur (Nov 2024)", "net": "17.74"},
    ]
    assert (shown["credited"], shown["correction"]) == ("11.90", "credited")
