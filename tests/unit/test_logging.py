"""Structured logs: one JSON object per line, a correlation id, and never a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest

from billing_core import logging as billing_logging


@pytest.fixture
def lines():
    stream = io.StringIO()
    handler = billing_logging.configure("INFO", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def test_each_record_is_one_json_line_with_extra_fields(lines):
    logging.getLogger("billing.test").info(
        "invoice created", extra={"invoiceId": "inv_2024-11_u1", "amountCents": 3774}
    )

    (line,) = lines()
    assert line["message"] == "invoice created"
    assert line["level"] == "INFO" and line["logger"] == "billing.test"
    assert line["invoiceId"] == "inv_2024-11_u1" and line["amountCents"] == 3774
    assert line["correlationId"] is None


def test_the_correlation_id_is_on_every_line_inside_its_block(lines):
    log = logging.getLogger("billing.test")
    with billing_logging.correlation("run-2024-11"):
        log.info("first")
        with billing_logging.correlation("evt_1"):
            log.info("nested")
        log.info("second")
    log.info("outside")

    assert [line["correlationId"] for line in lines()] == ["run-2024-11", "evt_1", "run-2024-11", None]


@pytest.mark.parametrize(
    "secret",
    [
        "sk_live_51HxAbCdEfGh",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_abc123",
        "whsec_abcDEF123",
        "seti_1Abc_secret_XyZ",
        "4242424242424242",
        "4242 4242 4242 4242",
        "DE89 3704 0044 0532 0130 00",
        "DE89370400440532013000",
    ],
)
def test_secrets_card_numbers_and_ibans_never_reach_the_log(lines, secret):
    logging.getLogger("billing.test").warning("got %s from stripe", secret, extra={"detail": f"value={secret}"})

    (line,) = lines()
    raw = json.dumps(line)
    assert secret not in raw
    assert billing_logging.REDACTED in line["message"] and billing_logging.REDACTED in line["detail"]


def test_fields_named_like_secrets_are_redacted_whatever_their_value(lines):
    logging.getLogger("billing.test").info(
        "setup intent", extra={"clientSecret": "anything", "apiKey": "x", "secretId": "billing/stripe"}
    )

    (line,) = lines()
    assert line["clientSecret"] == line["apiKey"] == billing_logging.REDACTED
    assert line["secretId"] == "billing/stripe"


def test_timestamps_and_ids_are_not_mistaken_for_card_numbers(lines):
    logging.getLogger("billing.test").info("paid at 1732924800000 for in_1Abc and cus_9")

    assert lines()[0]["message"] == "paid at 1732924800000 for in_1Abc and cus_9"


def test_exceptions_are_logged_redacted(lines):
    try:
        raise RuntimeError("bad key sk_live_leaked123")
    except RuntimeError:
        logging.getLogger("billing.test").exception("failed")

    (line,) = lines()
    assert "sk_live_leaked123" not in line["exception"] and "RuntimeError" in line["exception"]


def test_configure_twice_keeps_one_handler():
    level_before = logging.getLogger().level
    first = billing_logging.configure("INFO", stream=io.StringIO())
    second = billing_logging.configure("DEBUG", stream=io.StringIO())
    try:
        root = logging.getLogger()
        assert first not in root.handlers and second in root.handlers
        assert root.level == logging.DEBUG
    finally:
        logging.getLogger().removeHandler(second)
        logging.getLogger().setLevel(level_before)
