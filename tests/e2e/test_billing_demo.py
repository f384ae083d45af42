"""`make demo`'s main steps on the session's stack: the printed invoice is the paid seed example."""
from __future__ import annotations

import io

from local_stack.demo import run_demo


def test_demo_prints_the_paid_37_74_eur_invoice_with_its_breakdown(clean_stack):
    out, err = io.StringIO(), io.StringIO()

    code = run_demo(clean_stack, out, err)

    printed = out.getvalue()
    assert code == 0, err.getvalue()
    lines = printed.splitlines()
    assert any("base fee" in line and "20.00 EUR" in line for line in lines)
    assert any("AWS" in line and "17.74 EUR" in line for line in lines)
    assert any(line.strip().startswith("total") and "37.74 EUR" in line for line in lines)
    assert "status paid" in lines
    # The rate says it was pinned by hand: the local ECB file ends before last month.
    assert any(line.startswith("rate 1 USD = 1") and "pinned manually" in line for line in lines)
    for service, amount in (("Amazon CloudFront", "8.47"), ("AWS Lambda", "5.23"),
                            ("Amazon Simple Storage Service", "2.15"), ("Amazon DynamoDB", "1.89")):
        assert any(service in line and line.endswith(amount) for line in lines)
