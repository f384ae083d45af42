"""`make demo`'s main steps on the session's stack: the printed invoice is the paid seed example."""

from __future__ import annotations

import email
import email.policy
import io
import json
from decimal import Decimal
from pathlib import Path

import facturx

from billing_cli import cli
from billing_core.bootstrap import WorkerUseCases
from local_stack.demo import run_demo, worker_services
from local_stack.focus_seed import EXPORT_URI, SAVINGS_PLAN_COVERED, SAVINGS_PLAN_SERVICE, invoice_id, seed_month_lines
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


def test_the_demo_bills_the_same_net_from_the_focus_export_with_the_savings_plan_fee_as_its_own_line(
    clean_stack, tmp_path
):
    """COST_SOURCE=focus: the FOCUS 1.2 export in moto's S3 (the seed month with a fully used Savings Plan).

    Under BilledCost the plan's fee is a line of its own and the Lambda usage it covered costs 0, so the
    net is the same 37.74 EUR as from Cost Explorer, split differently; AWS's Tax line is left out."""
    out, err = io.StringIO(), io.StringIO()

    code = run_demo(clean_stack, out, err, files=tmp_path, settings={"cost_source": "focus"})

    assert code == 0, err.getvalue()
    assert f"costs from focus ({EXPORT_URI})" in err.getvalue()
    lines = out.getvalue().splitlines()
    assert any(line.strip().startswith("net") and "37.74 EUR" in line for line in lines)
    assert any(line.strip().startswith("total (gross)") and "44.91 EUR" in line for line in lines)
    assert "status paid" in lines
    covered = SAVINGS_PLAN_COVERED["AWS Lambda"]
    lambda_on_demand = (Decimal("5.2312345678") - covered).quantize(Decimal("0.01"))
    for service, amount in (
        ("Amazon CloudFront", "8.47"),
        ("AWS Lambda", str(lambda_on_demand)),
        (SAVINGS_PLAN_SERVICE, str(covered.quantize(Decimal("0.01")))),
        ("Amazon Simple Storage Service", "2.15"),
        ("Amazon DynamoDB", "1.89"),
    ):
        assert any(service in line and line.endswith(amount) for line in lines), (service, amount, lines)
    assert not any(line.strip().startswith("Tax") for line in lines)
    xml = Path(next(line for line in lines if line.startswith("e-invoice ")).removeprefix("e-invoice ")).read_bytes()
    assert b"<ram:GrandTotalAmount>44.91</ram:GrandTotalAmount>" in xml
    assert_valid_xrechnung(xml)

    # `billing report`: the month's AWS invoice (its BilledCost) = Tax + what the account was billed for.
    report_out = io.StringIO()
    services = worker_services(clean_stack, cost_source="focus")
    period = clean_stack.seeded_period
    code = cli.main(["report", "--period", period.label, "--format", "json"], use_cases=WorkerUseCases(services),
                    out=report_out, err=err)  # fmt: skip
    assert code == 0, err.getvalue()
    report = json.loads(report_out.getvalue())
    seed = seed_month_lines(period)
    tax = sum(Decimal(line.billed) for line in seed if line.category == "Tax")
    usage = sum(Decimal(line.billed) for line in seed if line.category != "Tax")
    [aws_invoice] = report["awsInvoices"]
    assert aws_invoice["invoiceId"] == invoice_id(period)
    assert Decimal(aws_invoice["billed"]) == tax + usage
    assert (Decimal(aws_invoice["excluded"]), Decimal(aws_invoice["allocated"])) == (tax, usage)
    assert Decimal(aws_invoice["difference"]) == 0 and Decimal(aws_invoice["unallocated"]) == 0
    assert Decimal(report["costExplorer"]["groupingDifference"]) == 0


def test_under_effective_cost_the_savings_plan_is_spread_over_the_usage_it_covered(clean_stack, tmp_path):
    """FOCUS_COST_COLUMN=EffectiveCost: the amortized view, the Lambda line whole again, no fee line."""
    out, err = io.StringIO(), io.StringIO()

    code = run_demo(
        clean_stack, out, err, files=tmp_path, settings={"cost_source": "focus", "focus_cost_column": "EffectiveCost"}
    )

    assert code == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert any(line.strip().startswith("net") and "37.74 EUR" in line for line in lines)
    assert any("AWS Lambda" in line and line.endswith("5.23") for line in lines)
    assert not any(SAVINGS_PLAN_SERVICE in line for line in lines)
