"""The one Stripe Tax Rate of German VAT: found again by its metadata, created once, never duplicated."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

from billing_core.ports import PaymentGateway, TaxRateSpec

log = logging.getLogger(__name__)


def german_vat(rate: Decimal) -> TaxRateSpec:
    """ "USt." at ``rate`` %, exclusive (the invoice's amounts are net), German VAT."""
    return TaxRateSpec(display_name="USt.", percentage=rate, description=f"Umsatzsteuer {rate.normalize():f} %")


class TaxRates:
    """The Tax Rate id of the operator's VAT rate, looked up once per process.

    Found by ``metadata.billingTaxRate``; created only when absent, under one idempotency key per rate,
    so workers that start together create it once (Stripe replays the first creation to the others).
    """

    def __init__(self, payments: PaymentGateway, rate: Decimal) -> None:
        self._payments = payments
        self.spec = german_vat(rate)
        self._id: str | None = None
        self._gone: str | None = None  # the id Stripe stopped accepting, if any
        self._lock = threading.Lock()

    def rate_id(self) -> str:
        """The Tax Rate's id (found, or created on first use)."""
        with self._lock:
            if self._id is None:
                found = self._payments.find_tax_rate(self.spec.key)
                if found is None:
                    # One key per rate (and per rate it replaces): workers starting together create one
                    # rate, and a rate archived at Stripe is replaced by a new one, not replayed from a key.
                    key = f"tax-rate:{self.spec.key}" + (f":replaces:{self._gone}" if self._gone else "")
                    found = self._payments.create_tax_rate(self.spec, idempotency_key=key)
                    log.info("Stripe tax rate created", extra={"taxRate": found, "key": self.spec.key})
                self._id = found
            return self._id

    def forget(self) -> None:
        """Drop the remembered id (Stripe no longer has it active): the next use looks it up again."""
        with self._lock:
            self._gone, self._id = self._id or self._gone, None
