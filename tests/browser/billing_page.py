"""The admin Billing page as the browser tests use it: what a person clicks, fills in and reads."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

from billing_core.domain.costs import Period

PAGE_PATH = "/admin/billing"
EXPIRY = "12 / 34"
CVC = "123"


class BillingPage:
    """Drives the Billing tab of ``stack`` in a Playwright ``page``."""

    def __init__(self, page, stack) -> None:
        self.page = page
        self.stack = stack

    @property
    def url(self) -> str:
        """Where billing-api serves the page."""
        return self.stack.info["api_url"] + PAGE_PATH

    def open(self) -> BillingPage:
        """Load the page."""
        self.page.goto(self.url)
        return self

    def sign_in(self, username: str, password: str) -> None:
        """Fill in the local sign-in form and submit it."""
        self.page.get_by_label("Benutzername").fill(username)
        self.page.get_by_label("Passwort").fill(password)
        self.page.get_by_role("button", name="Anmelden").click()

    def sign_in_as_admin(self) -> None:
        """Sign in as the stack's admin and wait until the billing data has loaded."""
        login = self.stack.admin
        self.sign_in(login.username, login.password)
        self.section("Zahlungsmethode").get_by_text("Keine Zahlungsmethode hinterlegt").wait_for()

    def section(self, heading: str):
        """The page section (card) labelled by ``heading``."""
        return self.page.get_by_role("region", name=heading, exact=True)

    def add_card(self, number: str) -> None:
        """Open the Payment Element, type a card and save it."""
        self.page.get_by_role("button", name="Zahlungsmethode hinzufügen").click()
        self.page.get_by_label("Kartennummer").fill(number)
        self.page.get_by_label("Ablaufdatum").fill(EXPIRY)
        self.page.get_by_label("Sicherheitscode").fill(CVC)
        self.page.get_by_role("button", name="Speichern").click()

    def run_billing(self) -> Period:
        """Bill the previous month with ``billing run`` (the operator command) and wait for the invoice."""
        from billing_cli.cli import main as billing_cli
        from billing_core.bootstrap import WorkerUseCases
        from local_stack.demo import worker_services

        period = Period.previous(datetime.now(UTC))
        out, err = io.StringIO(), io.StringIO()
        code = billing_cli(
            ["run", "--period", period.label, "--timeout", "60"],
            use_cases=WorkerUseCases(worker_services(self.stack)),
            out=out,
            err=err,
        )
        assert code == 0, f"billing run failed ({code}): {err.getvalue()}"
        return period

    def invoice_rows(self):
        """The rows of the invoice history table (one per invoice; its credit notes' row is not one)."""
        return self.section("Rechnungshistorie").locator("tbody tr:not(.credit-notes)")

    def reload_until_invoice_status(self, badge: str, timeout: float = 30.0) -> None:
        """Reload the page until the newest invoice shows ``badge`` (webhooks arrive asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            self.page.reload()
            row = self.invoice_rows().first
            row.wait_for()
            if row.locator(".badge").inner_text() == badge or time.monotonic() > deadline:
                return
            self.page.wait_for_timeout(500)
