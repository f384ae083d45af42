"""Credit notes on the running billing-api: the admin lists and downloads those of their own invoices only."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from billing_core.adapters.dynamodb import DynamoInvoiceRepository
from billing_core.adapters.dynamodb_credit_notes import DynamoCreditNotes
from billing_core.adapters.s3_documents import S3DocumentStore
from billing_core.domain.credit_notes import CreditNoteState
from tests.support.api import bearer, invoice_item, sign_in
from tests.support.records import a_credit_note

OTHER_ACCOUNT = "another-account-sub"
XML = b"<?xml version='1.0' encoding='UTF-8'?><rsm:CrossIndustryInvoice/>"
PDF = b"%PDF-1.7 credit note stand-in"


def credited_invoice(stack, account_id: str, period: str = "2026-11"):
    """An invoice credited 11.90 by one issued credit note whose two files are in the stack's bucket."""
    invoice = invoice_item(account_id, period, credited=Decimal("11.90"))
    DynamoInvoiceRepository(stack.aws_client("dynamodb"), stack.info["tables"]["billing"]).create_if_absent(invoice)
    documents = S3DocumentStore(stack.aws_client("s3"), stack.info["buckets"]["einvoices"])
    folder = f"credit-notes/{period}/{account_id}"
    documents.put_once(f"{folder}/CN-1.xml", XML, "application/xml")
    documents.put_once(f"{folder}/CN-1.pdf", PDF, "application/pdf")
    note = a_credit_note(
        invoice,
        state=CreditNoteState.ISSUED,
        number=f"CN-{period}-{account_id[:8]}",
        issued_at=1_730_500_000_000,
        einvoice_xml=f"{folder}/CN-1.xml",
        einvoice_pdf=f"{folder}/CN-1.pdf",
    )
    DynamoCreditNotes(stack.aws_client("dynamodb"), stack.info["tables"]["events"]).create_if_absent(note)
    return invoice, note


@pytest.fixture
def admin(clean_stack):
    token = sign_in(clean_stack, clean_stack.admin.username, clean_stack.admin.password)["AccessToken"]
    return bearer(token), clean_stack.admin.sub


def download(stack, headers, invoice_id: str, credit_note_id: str, format_name: str = "xrechnung"):
    return requests.get(
        f"{stack.info['api_url']}/billing/invoices/{invoice_id}/credit-notes/{credit_note_id}/einvoice",
        params={"format": format_name},
        headers=headers,
        timeout=10,
    )


def test_the_admin_sees_and_downloads_the_credit_note_of_their_own_invoice(clean_stack, admin):
    headers, account = admin
    invoice, note = credited_invoice(clean_stack, account)

    listed = requests.get(f"{clean_stack.info['api_url']}/billing", headers=headers, timeout=10).json()
    xml = download(clean_stack, headers, invoice.invoice_id, note.credit_note_id)
    pdf = download(clean_stack, headers, invoice.invoice_id, note.credit_note_id, "zugferd")

    [shown] = listed["invoices"]
    assert (shown["credited"], shown["correction"]) == ("11.90", "credited")
    assert [(n["creditNoteId"], n["kind"], n["gross"]) for n in shown["creditNotes"]] == [
        (note.credit_note_id, "correction", "11.90")
    ]
    assert xml.status_code == 200 and xml.content == XML
    assert xml.headers["Content-Disposition"] == f'attachment; filename="Rechnungskorrektur-{note.number}.xml"'
    assert pdf.status_code == 200 and pdf.content == PDF and pdf.headers["Content-Type"] == "application/pdf"


def test_another_accounts_credit_note_is_not_found_not_even_under_the_admins_own_invoice(clean_stack, admin):
    headers, account = admin
    own_invoice, _ = credited_invoice(clean_stack, account)
    other_invoice, other_note = credited_invoice(clean_stack, OTHER_ACCOUNT)

    foreign = download(clean_stack, headers, other_invoice.invoice_id, other_note.credit_note_id)
    smuggled = download(clean_stack, headers, own_invoice.invoice_id, other_note.credit_note_id, "zugferd")
    anonymous = download(clean_stack, {}, other_invoice.invoice_id, other_note.credit_note_id)

    for answer in (foreign, smuggled):
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
        assert XML not in answer.content and PDF not in answer.content
    assert anonymous.status_code == 401
