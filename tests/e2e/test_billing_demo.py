"""`make demo`'s main steps on the session's stack: the printed invoice is the paid seed example."""

from __future__ import annotations

import email
import email.policy
import io
from pathlib import Path

import facturx

from local_stack.demo import run_demo
from tests.support.xrechnung import assert_valid_xrechnung


def test_demo_prints_the_paid_44_91_eur_invoice_with_its_breakdown_and_writes_its_einvoice(clean_stack, tmp_path):
    out, err = io.StringIO(), io.StringIO()

    code = run_demo(clean_stack, out, err, files=tmp_path)

    printed = out.getvalue()
    assert code == 0, err.getvalue()
    lines = printed.splitlines()
    assert any("base fee" in line and "20.00 EUR" in line for line in lines)
    assert any("AWS" in line and "17.74 EUR" in line for line in lines)
    assert any(line.strip().startswith("net") and "37.74 EUR" in line for line in lines)
    assert any(line.strip().startswith("USt. 19 %") and "7.17 EUR" in line for line in lines)
    assert any(line.strip().startswith("total (gross)") and "44.91 EUR" in line for line in lines)
    assert "status paid" in lines
    # The rate says it was pinned by hand: the local ECB file ends before last month.
    assert any(line.startswith("rate 1 USD = 1") and "pinned manually" in line for line in lines)
    for service, amount in (
        ("Amazon CloudFront", "8.47"),
        ("AWS Lambda", "5.23"),
        ("Amazon Simple Storage Service", "2.15"),
        ("Amazon DynamoDB", "1.89"),
    ):
        assert any(service in line and line.endswith(amount) for line in lines)

    paths = [Path(line.removeprefix("e-invoice ")) for line in lines if line.startswith("e-invoice ")]
    assert [path.suffix for path in paths] == [".xml", ".pdf"]
    xml = paths[0].read_bytes()
    assert b"<ram:GrandTotalAmount>44.91</ram:GrandTotalAmount>" in xml
    assert facturx.get_xml_from_pdf(paths[1].read_bytes(), check_xsd=False)[1] == xml
    assert_valid_xrechnung(xml)

    # The invoice's e-mail, as the demo admin's mailbox would receive it, with the same XRechnung attached.
    mail = [Path(line.removeprefix("e-mail ")) for line in lines if line.startswith("e-mail ")]
    [eml] = [path for path in mail if path.suffix == ".eml"]
    assert eml.parent == tmp_path / "mail"
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["To"] == clean_stack.admin.email and message["Subject"].startswith("Rechnung ")
    [attached_xml] = [path for path in mail if path.suffix == ".xml"]
    assert attached_xml.read_bytes() == xml
