"""``docker-compose.yml`` for real: the images built from ``deploy/Dockerfile`` run hardened and bill a month.

On the containers (published on 127.0.0.1): both web services answer ``/healthz``; the admin saves a
card through billing-api (a SetupIntent confirmed at the emulator, whose signed ``setup_intent.succeeded``
goes through webhook-receiver and SQS to the worker); the seed month is billed by the worker's ``billing
run``; the invoice is paid (44.91 EUR), its XRechnung is in S3 and valid, and its e-mail went out.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import boto3
import requests
import stripe

from billing_core.domain.costs import Period
from tests.support.xrechnung import assert_valid_xrechnung

API = "http://127.0.0.1:8000"
RECEIVER = "http://127.0.0.1:8001"
AWS = "http://127.0.0.1:4566"
STRIPE = "http://127.0.0.1:12111"
SETTLE_SECONDS = 120


def _aws(service: str, settings):
    return boto3.client(
        service,
        endpoint_url=AWS,
        region_name=settings["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _until(check, what: str, timeout: float = SETTLE_SECONDS, explain=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s\n{explain()}"
        time.sleep(1)


def test_the_service_images_are_labelled_hold_no_devtools_and_no_compiler(compose_stack):
    engine = compose_stack.engine
    for service in ("billing-api", "webhook-receiver", "scheduler-worker"):
        image = f"aws-cost-billing_{service}"
        labels = json.loads(engine.podman("image", "inspect", image))[0]["Labels"]
        assert labels["org.opencontainers.image.revision"] == engine.revision, (service, labels)
        assert labels["org.opencontainers.image.title"] == "aws-cost-billing"
        found = engine.podman(
            "run",
            "--rm",
            "--read-only",
            "--cap-drop=ALL",
            "--entrypoint",
            "sh",
            image,
            "-c",
            "ls -d /app/devtools 2>/dev/null; command -v gcc cc make apt-get-build 2>/dev/null;"
            ' python -c \'import importlib.util as u; print([m for m in ("moto", "pytest") if u.find_spec(m)])\'',
        )
        assert found.strip() == "[]", (service, found)
        assert engine.podman("run", "--rm", "--entrypoint", "id", image, "-u").strip() == "10001"


def test_the_images_run_hardened_and_bill_the_seed_month_end_to_end(compose_stack):
    engine, settings = compose_stack.engine, compose_stack.settings
    assert requests.get(f"{API}/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{RECEIVER}/healthz", timeout=5).json() == {"status": "ok"}
    for service in ("billing-api", "webhook-receiver", "scheduler-worker"):
        shown = json.loads(engine.podman("inspect", engine.container(service)))[0]
        assert shown["HostConfig"]["ReadonlyRootfs"] is True, service
        assert shown["Config"]["User"] == "10001:10001", service
        assert (
            "ALL" in {c.upper().removeprefix("CAP_") for c in shown["HostConfig"]["CapDrop"] or []}
            or not shown["EffectiveCaps"]
        ), service

    username, password = compose_stack.admin
    tokens = _aws("cognito-idp", settings).initiate_auth(
        ClientId=settings["COGNITO_CLIENT_ID"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    admin = {"Authorization": f"Bearer {tokens['AccessToken']}"}
    intent = requests.post(f"{API}/billing/setup-intent", headers=admin, timeout=30)
    assert intent.status_code == 200, intent.text
    setup_intent_id = intent.json()["clientSecret"].split("_secret_")[0]
    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": STRIPE})
    confirmed = client.v1.setup_intents.confirm(setup_intent_id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded"

    def card_saved():
        method = requests.get(f"{API}/billing", headers=admin, timeout=30).json()["paymentMethod"]
        return method if method["status"] == "active" else None

    # The emulator signs setup_intent.succeeded; the receiver checks it and queues it; the worker applies it.
    assert _until(card_saved, "the saved card reached the account")["last4"] == "4242"

    # The operator names the customer as § 14 UStG and the e-invoice need: name and address.
    account_id = requests.get(f"{API}/billing", headers=admin, timeout=30).json()["accountId"]
    compose_stack.billing(
        "accounts",
        "update",
        account_id,
        "--name",
        "Muster Kunde GmbH",
        "--country",
        "DE",
        "--address",
        "Kundenweg 7",
        "--postal-code",
        "80331",
        "--city",
        "München",
        "--reason",
        "container test",
    )
    period = Period.previous(datetime.now(UTC))
    out = compose_stack.billing("run", "--period", period.label, "--timeout", "90")
    assert f"inv_{period.label}_" in out and "44.91  EUR" in out, out

    def paid_invoice():
        invoices = requests.get(f"{API}/billing", headers=admin, timeout=30).json()["invoices"]
        found = [i for i in invoices if i["status"] == "paid" and i.get("einvoice", {}).get("xrechnung")]
        return found[0] if found else None

    def explain() -> str:
        invoices = requests.get(f"{API}/billing", headers=admin, timeout=30).json()["invoices"]
        worker = engine.podman("logs", "--tail", "40", engine.container("scheduler-worker"), check=False)
        return f"invoices: {json.dumps(invoices)[:2000]}\nworker:\n{worker[-4000:]}"

    invoice = _until(paid_invoice, "the invoice paid, with its e-invoice", explain=explain)
    assert invoice["amount"] == "44.91" and invoice["currency"] == "EUR"
    xml = requests.get(
        f"{API}/billing/invoices/{invoice['invoiceId']}/einvoice",
        params={"format": "xrechnung"},
        headers=admin,
        timeout=30,
    )
    assert xml.status_code == 200 and b"<ram:GrandTotalAmount>44.91</ram:GrandTotalAmount>" in xml.content
    assert_valid_xrechnung(xml.content)
    stored = _aws("s3", settings).list_objects_v2(Bucket=settings["EINVOICE_BUCKET"])["Contents"]
    xml_key = f"einvoices/{period.label}/{account_id}/{invoice['number']}.xml"
    assert xml_key in {item["Key"] for item in stored}, stored

    def mailed():
        outbox = requests.get(f"{AWS}/moto-api/data.json", timeout=10).json().get("ses", {}).get("RawMessage", [])
        return [m for m in outbox if f"Rechnung-{invoice['number']}.xml" in m["raw_data"]]

    assert _until(mailed, "the invoice's e-mail sent through SES")
