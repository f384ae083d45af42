"""``make demo``: the monthly billing, end to end, on the local stack.

Starts the stack (the same ``start_stack()`` as ``make dev``, on free ports, in a temporary
directory), saves a card for the demo admin through a SetupIntent the way the admin page does, runs
``billing run`` for the previous month, waits until the ``invoice.paid`` webhook has been applied to
the billing record, prints the invoice (net, USt., gross), writes its XRechnung and ZUGFeRD PDF to
``.local/demo/``, waits for the invoice's e-mail (sent through the stack's SES) and saves it with its
attachments under ``.local/demo/mail/``, and stops the stack.

The demo admin's account is the ``payment-methods`` item keyed by the admin's Cognito ``sub``; it
comes to exist the way it does for any admin: when the account's Stripe customer is recorded.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from billing_core.bootstrap import WorkerPorts, WorkerUseCases, worker_ports
from billing_core.domain.costs import Period
from billing_core.domain.invoice_plan import invoice_id_for
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Invoice, SavedPaymentMethod
from billing_core.use_cases.einvoices import StoredEInvoices
from billing_core.use_cases.operator_accounts import AccountProfile
from local_stack.mailbox import save_message, sent_messages
from local_stack.stack import Stack, StackPorts, start_stack

DEMO_CARD = "pm_card_visa"
DEMO_CUSTOMER = AccountProfile.from_text(
    name="Muster Kunde GmbH", country="DE", address=("Kundenweg 7", "80331", "München")
)
DEMO_FILES = Path(".local/demo")  # make demo writes the demo invoice's e-invoice files here
WEBHOOK_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.2


class DemoFailed(Exception):
    """A step of the demo did not come out as it should; the message says which."""


def worker_services(stack: Stack, **overrides: Any) -> WorkerPorts:
    """The adapters scheduler-worker would build, wired to ``stack`` (for the demo, the CLI and tests);
    ``WorkerUseCases(...)`` of them is what the worker and the ``billing`` command run."""
    clients = {
        name: stack.aws_client(name)
        for name in ("dynamodb", "sqs", "ce", "secretsmanager", "cognito-idp", "s3", "sesv2")
    }
    return worker_ports(stack.settings().with_overrides(**overrides), clients=clients)


def wait_for(condition: Callable[[], Any], timeout: float, poll: float = POLL_SECONDS) -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` passes (``None``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value or None
        time.sleep(poll)


def save_demo_card(stack: Stack, services: WorkerPorts, err: TextIO, *, card: str = DEMO_CARD) -> str:
    """Give the demo admin an account, a Stripe customer and a default card; returns the userId."""
    admin = stack.admin
    account_id = admin.sub
    customer = services.payments.create_customer(
        account_id=account_id, email=admin.email, idempotency_key=f"customer:{account_id}"
    )
    now_ms = int(time.time() * 1000)
    services.accounts.set_stripe_customer_id_if_absent(
        account_id, customer.id, {"email": admin.email, "created_at": now_ms, "updated_at": now_ms}
    )
    account = services.accounts.get(account_id)
    if account is None or account.stripe_customer_id is None:  # pragma: no cover - just recorded
        raise DemoFailed("the demo account has no Stripe customer")
    customer_id = account.stripe_customer_id
    intent = services.payments.create_setup_intent(
        customer_id=customer_id, idempotency_key=f"setup-intent:{account_id}:demo", metadata={"userId": account_id}
    )
    # The browser's part (Stripe.js confirmSetup), done with the official SDK.
    confirmed = stack.stripe_client().v1.setup_intents.confirm(intent.id, params={"payment_method": card})
    if confirmed.status != "succeeded":
        raise DemoFailed(f"the SetupIntent ended {confirmed.status}, not succeeded")
    print(f"card saved: SetupIntent {confirmed.id} succeeded", file=err)
    # The operator names the customer as §14 UStG and the e-invoice need: name and address in Germany.
    WorkerUseCases(services).operator_accounts.update(account_id, DEMO_CUSTOMER, actor="demo", reason="make demo")
    if wait_for(lambda: _has_payment_method(services, account_id), WEBHOOK_WAIT_SECONDS):
        print("setup_intent.succeeded applied: the card is the account's default payment method", file=err)
        return account_id
    # Without the webhook consumer the account would never learn about the card; say so, then do its job.
    print("note: setup_intent.succeeded was not applied in time; setting the default payment method directly", file=err)
    payment_method_id = str(confirmed.payment_method)
    services.payments.set_default_payment_method(
        customer_id=customer_id,
        payment_method_id=payment_method_id,
        idempotency_key=f"default-payment-method:{account_id}:{payment_method_id}",
    )
    method = SavedPaymentMethod(payment_method_id, "card")
    services.accounts.update(account_id, {"payment_method": method, "updated_at": int(time.time() * 1000)})
    return account_id


def _has_payment_method(services: WorkerPorts, account_id: str) -> bool:
    account = services.accounts.get(account_id)
    return account is not None and account.has_payment_method


def format_invoice(record: Invoice) -> str:
    """The invoice as the demo prints it: lines, breakdown, total and status."""
    currency = record.currency
    descriptions = record.line_descriptions
    width = 44
    lines = [
        f"Invoice {record.invoice_id}  (Stripe {record.stripe.invoice_id}, number {record.stripe.number})",
        f"period {record.period.label}",
        f"  {'base fee  ' + descriptions.base_fee:<{width}} {record.base_fee:>8.2f} {currency}",
        f"  {'AWS       ' + descriptions.aws:<{width}} {record.aws_costs:>8.2f} {currency}",
    ]
    # The stored breakdown keeps no order: largest first, as the plan made it.
    breakdown = sorted(record.aws_breakdown.items(), key=lambda item: (-item[1], item[0]))
    for service, amount in breakdown:
        lines.append(f"      {service:<{width - 4}} {amount:>8.2f}")
    lines.append(f"  {'net':<{width}} {record.net:>8.2f} {currency}")
    vat = record.vat
    if vat is not None and vat.category == "S":
        lines.append(f"  {f'USt. {vat.rate.normalize():f} %':<{width}} {vat.tax:>8.2f} {currency}")
    elif vat is not None and vat.note:
        lines.append(f"  {vat.note}")
    lines += [
        f"  {'total (gross)':<{width}} {record.amount:>8.2f} {currency}",
        f"status {record.status.value}",
    ]
    if record.conversion is not None and record.conversion.note:
        # The local stack's ECB file ends in October 2026: last month's rate is pinned by hand, and says so.
        pinned = " (pinned manually on the local stack)" if record.conversion.rate.source == "local-stack" else ""
        lines.append(f"rate {record.conversion.note}{pinned}")
    if record.stripe.hosted_invoice_url:
        lines.append(f"hosted invoice {record.stripe.hosted_invoice_url}")
    return "\n".join(lines)


def run_demo(
    stack: Stack,
    out: TextIO,
    err: TextIO,
    *,
    paid_timeout: float = 60.0,
    files: Path = DEMO_FILES,
    settings: Mapping[str, Any] | None = None,
) -> int:
    """The demo's steps on a running stack; returns the exit code. ``settings`` overrides the run's
    settings by name (``cost_source="focus"``: bill from the FOCUS export)."""
    from billing_cli import cli

    services = worker_services(stack, **(settings or {}))
    source = services.settings.cost_source
    print(f"costs from {source}" + (f" ({services.settings.focus_export_uri})" if source == "focus" else ""), file=err)
    account_id = save_demo_card(stack, services, err)
    period = Period.previous(datetime.now(UTC))
    code = cli.main(
        ["run", "--period", period.label, "--timeout", "60"], use_cases=WorkerUseCases(services), out=err, err=err
    )
    if code != 0:
        raise DemoFailed(f"billing run exited with {code}")
    invoice_id = invoice_id_for(period, account_id)
    record = wait_for(lambda: _record_if_paid(services, account_id, invoice_id), paid_timeout)
    if record is not None:
        # The job writes the e-invoice right after finalizing; the payment's event may come first.
        record = wait_for(lambda: _record_with_einvoice(services, account_id, invoice_id), paid_timeout) or record
    if record is None:
        current = services.invoices.get(account_id, invoice_id)
        stripe_status = None
        if current is not None and current.stripe.invoice_id:
            stripe_status = services.payments.retrieve_invoice(current.stripe.invoice_id).status
        recorded = current.status.value if current is not None else None
        raise DemoFailed(
            f"invoice.paid was not applied within {paid_timeout:.0f} s: the record says {recorded}, "
            f"Stripe says {stripe_status}"
        )
    print(format_invoice(record), file=out)
    for path in write_einvoice_files(services, record, files):
        print(f"e-invoice {path}", file=out)
    for path in write_invoice_mail(stack, services, invoice_id, files / "mail", paid_timeout):
        print(f"e-mail {path}", file=out)
    return 0


def write_invoice_mail(
    stack: Stack, services: WorkerPorts, invoice_id: str, folder: Path, timeout: float
) -> list[Path]:
    """Wait until the invoice's e-mail is sent, then save it (``.eml``) and its attachments into ``folder``."""
    mailer = WorkerUseCases(services).document_mailer
    if mailer is None:
        raise DemoFailed("the stack sends no e-mail (no events table or e-invoice bucket)")

    def sent_ids() -> list[str]:
        deliveries = mailer.status_of(invoice_id).deliveries
        return [d.message_id for d in deliveries if d.message_id]

    message_ids = wait_for(sent_ids, timeout)
    if not message_ids:
        raise DemoFailed(
            f"the e-mail of {invoice_id} was not sent within {timeout:.0f} s: {mailer.status_of(invoice_id).text}"
        )
    messages = {m.message_id: m for m in sent_messages(stack.info["aws_endpoint"])}
    return [path for message_id in message_ids for path in save_message(messages[message_id], folder)]


def write_einvoice_files(services: WorkerPorts, record: Invoice, folder: Path) -> list[Path]:
    """Copy the invoice's stored XRechnung and ZUGFeRD PDF into ``folder``; the paths written."""
    if services.documents is None:
        raise DemoFailed("the stack has no e-invoice bucket (EINVOICE_BUCKET)")
    stored = StoredEInvoices(services.documents)
    written = []
    for format_name in ("xrechnung", "zugferd"):
        found = stored.file(record, format_name)
        if found is None:
            raise DemoFailed(f"{record.invoice_id} has no {format_name} e-invoice stored")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / found.file_name
        path.write_bytes(found.body)
        written.append(path)
    return written


def _record_with_einvoice(services: WorkerPorts, account_id: str, invoice_id: str) -> Invoice | None:
    record = services.invoices.get(account_id, invoice_id)
    return record if record is not None and record.einvoice.xml and record.einvoice.pdf else None


def _record_if_paid(services: WorkerPorts, account_id: str, invoice_id: str) -> Invoice | None:
    record = services.invoices.get(account_id, invoice_id)
    return record if record is not None and record.status is InvoiceStatus.PAID else None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Start the stack, run the demo, stop the stack; returns the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    root = Path(tempfile.mkdtemp(prefix="billing-demo-"))
    print("demo: starting the local stack ...", file=err, flush=True)
    stack = start_stack(StackPorts.free(), root)
    try:
        return run_demo(stack, out, err)
    except DemoFailed as failure:
        print(f"demo failed: {failure}", file=err)
        print(f"logs: {stack.logs_dir}", file=err)
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
