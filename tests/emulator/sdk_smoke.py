"""A plain script that uses only the stripe SDK (and the standard library) against a Stripe API base URL.

Runs the full flow (customer -> setup intent -> pm_card_visa -> default -> draft -> two lines -> finalize ->
paid) and the decline flow, and checks that signed ``invoice.paid`` / ``invoice.payment_failed`` webhooks
arrive and verify with ``stripe.Webhook.construct_event``. Prints one JSON summary line; exit 0 on success.

    python tests/emulator/sdk_smoke.py --api-base http://127.0.0.1:12111 --api-key sk_test_emulator
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import stripe


class _Inbox:
    def __init__(self) -> None:
        self.secret = ""
        self.events: list[stripe.Event] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()


def _receiver(inbox: _Inbox) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            payload = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            try:
                event = stripe.Webhook.construct_event(payload, self.headers.get("Stripe-Signature"), inbox.secret)
            except (stripe.SignatureVerificationError, ValueError):
                with inbox.lock:
                    inbox.bad_signatures += 1
                self.send_response(400)
                self.end_headers()
                return
            with inbox.lock:
                inbox.events.append(event)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def _wait_for_event(inbox: _Inbox, event_type: str, object_id: str, timeout: float = 10.0) -> stripe.Event:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with inbox.lock:
            for event in inbox.events:
                if event.type == event_type and event.data.object.id == object_id:
                    return event
        time.sleep(0.02)
    raise SystemExit(f"no {event_type} webhook for {object_id} within {timeout} s")


def _customer_with(client: stripe.StripeClient, test_payment_method: str, email: str) -> stripe.Customer:
    customer = client.v1.customers.create(params={"email": email})
    intent = client.v1.setup_intents.create(params={"customer": customer.id, "allowed_payment_method_types": ["card"]})
    intent = client.v1.setup_intents.confirm(intent.id, params={"payment_method": test_payment_method})
    assert intent.status == "succeeded", intent.status
    return client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": intent.payment_method}}
    )


def _draft_with_two_lines(client: stripe.StripeClient, customer_id: str, auto_advance: bool) -> stripe.Invoice:
    invoice = client.v1.invoices.create(
        params={"customer": customer_id, "currency": "eur", "auto_advance": auto_advance}
    )
    return client.v1.invoices.add_lines(
        invoice.id,
        params={
            "lines": [
                {"amount": 2000, "description": "Monatliche Grundgebühr"},
                {"amount": 1774, "description": "AWS Infrastruktur (Nov 2024)"},
            ]
        },
    )


def main() -> int:
    """Run both flows; print a JSON summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--api-key", default="sk_test_emulator")
    args = parser.parse_args()
    client = stripe.StripeClient(args.api_key, base_addresses={"api": args.api_base}, max_network_retries=0)

    inbox = _Inbox()
    server = _receiver(inbox)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = client.v1.webhook_endpoints.create(
        params={
            "url": f"http://127.0.0.1:{server.server_port}/webhook",
            "enabled_events": ["invoice.paid", "invoice.payment_failed"],
        }
    )
    inbox.secret = endpoint.secret
    try:
        payer = _customer_with(client, "pm_card_visa", "payer@example.com")
        draft = _draft_with_two_lines(client, payer.id, auto_advance=True)
        assert draft.total == 3774, draft.total
        client.v1.invoices.finalize_invoice(draft.id)
        paid = _wait_for_event(inbox, "invoice.paid", draft.id).data.object
        assert paid.status == "paid" and paid.amount_paid == 3774

        decliner = _customer_with(client, "pm_card_chargeCustomerFail", "decliner@example.com")
        draft = _draft_with_two_lines(client, decliner.id, auto_advance=False)
        client.v1.invoices.finalize_invoice(draft.id)
        try:
            client.v1.invoices.pay(draft.id)
            raise SystemExit("paying with a declining card did not raise CardError")
        except stripe.CardError as declined:
            decline_code = declined.code
        failed = _wait_for_event(inbox, "invoice.payment_failed", draft.id).data.object
        assert failed.status == "open" and failed.attempt_count == 1
    finally:
        client.v1.webhook_endpoints.delete(endpoint.id)
        server.shutdown()
    print(
        json.dumps(
            {
                "full_flow": "paid",
                "decline_flow": decline_code,
                "verified_webhooks": len(inbox.events),
                "bad_signatures": inbox.bad_signatures,
            }
        )
    )
    return 0 if inbox.bad_signatures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
