"""E-invoice downloads on the local stack: the admin's own invoices only (billing-api), the operator's command."""

from __future__ import annotations

import io

import pytest
import requests

from billing_cli import cli
from billing_core.adapters.dynamodb import DynamoInvoiceRepository
from billing_core.adapters.s3_documents import S3DocumentStore
from billing_core.bootstrap import WorkerUseCases
from local_stack.demo import worker_services
from tests.support.api import bearer, invoice_item, sign_in

OTHER_ACCOUNT = "another-account-sub"
XML = b"<?xml version='1.0' encoding='UTF-8'?><rsm:CrossIndustryInvoice/>"
PDF = b"%PDF-1.7 stand-in"


def stored_invoice(stack, account_id: str, period: str = "2026-11"):
    """An invoice record whose e-invoice files are in the stack's bucket."""
    documents = S3DocumentStore(stack.aws_client("s3"), stack.info["buckets"]["einvoices"])
    folder = f"einvoices/{period}/{account_id}"
    xml_key, pdf_key = f"{folder}/INV-{period}.xml", f"{folder}/INV-{period}.pdf"
    documents.put_once(xml_key, XML, "application/xml")
    documents.put_once(pdf_key, PDF, "application/pdf")
    record = invoice_item(account_id, period, einvoice_xml=xml_key, einvoice_pdf=pdf_key)
    DynamoInvoiceRepository(stack.aws_client("dynamodb"), stack.info["tables"]["billing"]).create_if_absent(record)
    return record


@pytest.fixture
def admin(clean_stack):
    token = sign_in(clean_stack, clean_stack.admin.username, clean_stack.admin.password)["AccessToken"]
    return bearer(token), clean_stack.admin.sub


def test_the_admin_downloads_both_files_of_their_own_invoice(clean_stack, admin):
    headers, account = admin
    record = stored_invoice(clean_stack, account)
    url = f"{clean_stack.info['api_url']}/billing/invoices/{record.invoice_id}/einvoice"

    xml = requests.get(url, params={"format": "xrechnung"}, headers=headers, timeout=10)
    pdf = requests.get(url, params={"format": "zugferd"}, headers=headers, timeout=10)
    listed = requests.get(
        f"{clean_stack.info['api_url']}/billing/invoices/{record.invoice_id}", headers=headers, timeout=10
    ).json()

    assert xml.status_code == 200 and xml.content == XML
    assert xml.headers["Content-Type"].startswith("application/xml")
    assert xml.headers["Content-Disposition"] == 'attachment; filename="Rechnung-INV-2026-11.xml"'
    assert pdf.status_code == 200 and pdf.content == PDF and pdf.headers["Content-Type"] == "application/pdf"
    assert listed["einvoice"] == {"xrechnung": True, "zugferd": True}


def test_another_accounts_einvoice_is_not_found_and_a_bad_format_is_a_400(clean_stack, admin):
    headers, account = admin
    other = stored_invoice(clean_stack, OTHER_ACCOUNT)
    own = stored_invoice(clean_stack, account)
    api = clean_stack.info["api_url"]

    foreign = requests.get(f"{api}/billing/invoices/{other.invoice_id}/einvoice", headers=headers, timeout=10)
    bad = requests.get(
        f"{api}/billing/invoices/{own.invoice_id}/einvoice", params={"format": "ubl"}, headers=headers, timeout=10
    )
    anonymous = requests.get(f"{api}/billing/invoices/{other.invoice_id}/einvoice", timeout=10)

    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"
    assert XML not in foreign.content
    assert bad.status_code == 400 and bad.json()["error"]["code"]
    assert anonymous.status_code == 401


def test_an_invoice_without_stored_files_is_a_404(clean_stack, admin):
    headers, account = admin
    record = invoice_item(account, "2026-10")
    DynamoInvoiceRepository(clean_stack.aws_client("dynamodb"), clean_stack.info["tables"]["billing"]).create_if_absent(
        record
    )
    answer = requests.get(
        f"{clean_stack.info['api_url']}/billing/invoices/{record.invoice_id}/einvoice", headers=headers, timeout=10
    )
    assert answer.status_code == 404 and "no e-invoice" in answer.json()["error"]["message"]


def test_the_operator_command_writes_an_invoices_file(clean_stack, tmp_path):
    record = stored_invoice(clean_stack, OTHER_ACCOUNT)
    out, err = io.StringIO(), io.StringIO()
    target = tmp_path / "invoice.pdf"

    code = cli.main(
        ["invoices", "einvoice", record.invoice_id, "--format", "zugferd", "--out", str(target)],
        use_cases=WorkerUseCases(worker_services(clean_stack)),
        out=out,
        err=err,
    )
    missing = cli.main(
        ["invoices", "einvoice", invoice_item(OTHER_ACCOUNT, "2026-01").invoice_id, "--out", str(tmp_path / "x.xml")],
        use_cases=WorkerUseCases(worker_services(clean_stack)),
        out=out,
        err=err,
    )

    assert code == 0, err.getvalue()
    assert target.read_bytes() == PDF
    assert missing == 1
