"""A credit note issued through the use case gets its XRechnung (381) and PDF once, valid, equal to Stripe's."""

from __future__ import annotations

from decimal import Decimal

import pytest
from lxml import etree

from billing_core.adapters.einvoice_files import EInvoiceFiles
from billing_core.domain.credit_notes import CreditRefused, CreditRequest
from billing_core.use_cases.credit_notes import CreditNotes, credit_note_files
from billing_core.use_cases.einvoices import CreditNoteEInvoices, StoredEInvoices
from tests.support.fakes import FakeAuditLog, FakeCreditNotes
from tests.support.xrechnung import assert_valid_xrechnung
from tests.unit.test_einvoice_step import NS, SELLER, World


def _credit_notes(world: World, notes: FakeCreditNotes) -> CreditNotes:
    files = CreditNoteEInvoices(documents=world.documents, writer=EInvoiceFiles(), seller=SELLER)
    return CreditNotes(
        world.invoices,
        notes,
        world.stripe,
        FakeAuditLog(),
        issue_files=credit_note_files(files, world.accounts, notes),
        clock=lambda: 1_764_600_000.0,
    )


def _text(xml: bytes, path: str) -> str:
    return etree.fromstring(xml).find(path, NS).text


def test_a_partial_credit_notes_xrechnung_is_valid_names_its_invoice_and_equals_stripes_credit_note():
    world, notes = World(), FakeCreditNotes()
    plan = world.plan(world.account())
    world.job().run(plan)
    record = world.invoices.get("u1", plan.invoice_id)

    note = _credit_notes(world, notes).credit(
        plan.invoice_id, CreditRequest(reason="Grundgebühr zu hoch", lines={"base-fee": Decimal("10.00")}), actor="ops"
    )

    xml = StoredEInvoices(world.documents).credit_note_file(note, "xrechnung").body
    assert_valid_xrechnung(xml)
    [stripe_note] = world.stripe.list_credit_notes(record.stripe.invoice_id)
    assert Decimal(_text(xml, ".//ram:GrandTotalAmount")) * 100 == stripe_note.total == 1190
    assert Decimal(_text(xml, ".//ram:TaxTotalAmount")) * 100 == stripe_note.total_tax == 190
    assert _text(xml, ".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == record.stripe.number
    assert b"<rsm:ExchangedDocument" in xml and b">381<" in xml and b"Gutschrift" not in xml
    pdf = StoredEInvoices(world.documents).credit_note_file(note, "zugferd")
    assert pdf.file_name == f"Rechnungskorrektur-{note.number}.pdf"


def test_a_cancellations_files_are_written_once_and_named_stornorechnung():
    world, notes = World(), FakeCreditNotes()
    plan = world.plan(world.account())
    world.job().run(plan)
    credit_notes = _credit_notes(world, notes)

    note = credit_notes.cancel(plan.invoice_id, reason="Doppelt berechnet", actor="ops")
    written = dict(world.documents.files)
    with pytest.raises(CreditRefused, match="nothing is left"):
        credit_notes.cancel(plan.invoice_id, reason="Doppelt berechnet", actor="ops")

    assert dict(world.documents.files) == written and len(written) == 2 + 2  # the invoice's and the note's
    xml = StoredEInvoices(world.documents).credit_note_file(note, "xrechnung")
    assert xml.file_name == f"Stornorechnung-{note.number}.xml"
    assert_valid_xrechnung(xml.body)
    assert Decimal(_text(xml.body, ".//ram:GrandTotalAmount")) == world.invoices.get("u1", plan.invoice_id).amount
