"""Fixtures: one emulator server and one verifying webhook receiver per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from stripe_emulator import EmulatorConfig, EmulatorServer
from tests.support.emulator import Control, WebhookReceiver

SECRET_KEY = "sk_test_emulator_suite"
PUBLISHABLE_KEY = "pk_test_emulator_suite"
# Fast, deterministic knobs for tests; every test starts from these.
BASELINE = {
    "webhook_retry_schedule": [0.05, 0.1, 0.2, 0.4],
    "webhook_max_attempts": 5,
    "webhook_timeout": 1.0,
    "auto_charge_delay": 0.1,
    "fault_after_execution_next_n": 0,
    "finalization_failures_next_n": 0,
    "check_contract": True,
    "sepa_settle_delay": 0.2,
    "payment_retry_interval": 3 * 24 * 3600.0,
    "duplicate_deliveries": 0,
    "duplicate_probability": 0.0,
    "reorder_window": 0.0,
    "delivery_delay": 0.0,
    "rate_limit": 0.0,
    "fault_next_n": 0,
    "fault_rate": 0.0,
    "seed": 7,
    "idempotency_ttl": 24 * 3600.0,
}


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(secret_key=SECRET_KEY, publishable_key=PUBLISHABLE_KEY)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def control(emulator: EmulatorServer) -> Control:
    control = Control(emulator.url)
    control.configure(**BASELINE)
    control.reset()
    return control


@pytest.fixture
def client(emulator: EmulatorServer, control: Control) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": emulator.url}, max_network_retries=0)


@pytest.fixture
def receiver(client: stripe.StripeClient, receiver_server: WebhookReceiver) -> WebhookReceiver:
    """The receiver, registered with the emulator for every event type."""
    endpoint = client.v1.webhook_endpoints.create(params={"url": receiver_server.url, "enabled_events": ["*"]})
    receiver_server.reset(secret=endpoint.secret)
    return receiver_server


@pytest.fixture
def customer_with_card(client: stripe.StripeClient):
    """A customer whose default payment method is pm_card_visa, set up through a SetupIntent."""
    return make_customer(client, "pm_card_visa")


def make_customer(client: stripe.StripeClient, test_payment_method: str, types: list[str] | None = None):
    customer = client.v1.customers.create(params={"email": "admin@example.com", "name": "Example GmbH"})
    intent = client.v1.setup_intents.create(
        params={"customer": customer.id, "allowed_payment_method_types": types or ["card", "sepa_debit"]}
    )
    intent = client.v1.setup_intents.confirm(intent.id, params={"payment_method": test_payment_method})
    return client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": intent.payment_method}}
    )


def open_invoice(client: stripe.StripeClient, customer_id: str, amounts=(2000, 1774), auto_advance=True):
    """A finalized two-line EUR invoice."""
    invoice = client.v1.invoices.create(
        params={"customer": customer_id, "currency": "eur", "auto_advance": auto_advance}
    )
    client.v1.invoices.add_lines(
        invoice.id,
        params={"lines": [{"amount": amount, "description": f"line {i}"} for i, amount in enumerate(amounts)]},
    )
    return client.v1.invoices.finalize_invoice(invoice.id)
