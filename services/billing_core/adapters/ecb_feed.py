"""The ECB's euro reference-rate feed over HTTP: its XML parsed into day -> Decimal rate.

The feed (``eurofxref-hist-90d.xml``, ``eurofxref-hist.xml``, ``eurofxref-daily.xml``) is a GESMES
envelope whose ``Cube time=...`` elements, in the ECB vocabulary namespace, hold one
``Cube currency=... rate=...`` per currency: ``1 EUR = rate`` units of that currency. Days without a
rate (weekends, TARGET holidays) are simply absent, and a currency may be missing from a day.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ElementTree
from datetime import date
from decimal import Decimal, InvalidOperation

import requests

from billing_core.errors import ExchangeRateUnavailable
from billing_core.ports.rates import PublishedRates, ReferenceRateFeed

log = logging.getLogger(__name__)

ECB_NAMESPACE = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"
_CUBE = f"{{{ECB_NAMESPACE}}}Cube"
# The largest feed (every day since 1999) is a few MB; anything far larger is not the feed.
_MAX_FEED_BYTES = 32 * 1024 * 1024


def parse_ecb_feed(document: bytes, currency: str = "USD") -> dict[date, Decimal]:
    """Every day's ``currency`` rate in an ECB feed document; ``ExchangeRateUnavailable`` if it is not one."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as error:
        raise ExchangeRateUnavailable(f"the ECB feed is not XML: {error}") from None
    rates: dict[date, Decimal] = {}
    days = [cube for cube in root.iter(_CUBE) if "time" in cube.attrib]
    if not days:
        raise ExchangeRateUnavailable("the document holds no ECB reference-rate days")
    for day in days:
        try:
            rate_date = date.fromisoformat(day.attrib["time"])
        except ValueError:
            raise ExchangeRateUnavailable(f"the ECB feed has a day {day.attrib['time']!r} that is no date") from None
        for quote in day.iter(_CUBE):
            if quote.attrib.get("currency") != currency:
                continue
            try:
                rate = Decimal(quote.attrib["rate"])
            except (KeyError, InvalidOperation):
                raise ExchangeRateUnavailable(f"the ECB {currency} rate of {rate_date} is not a number") from None
            if not rate.is_finite() or rate <= 0:
                raise ExchangeRateUnavailable(f"the ECB {currency} rate of {rate_date} is {rate}")
            rates[rate_date] = rate
    return rates


class EcbFeed(ReferenceRateFeed):
    """Fetches an ECB feed: the 90-day file for recent periods, the full history for older ones."""

    def __init__(
        self,
        recent_url: str,
        history_url: str,
        *,
        session: requests.Session | None = None,
        timeout_seconds: float | tuple[float, float] = 10.0,
    ) -> None:
        self.recent_url = recent_url
        self.history_url = history_url
        self._session = session or requests.Session()
        self._timeout = timeout_seconds

    def __repr__(self) -> str:
        return f"EcbFeed({self.recent_url!r}, {self.history_url!r})"

    def published(self, *, since: date, currency: str = "USD") -> PublishedRates:
        """The published rates, from the recent feed if it reaches back to ``since``, else the history."""
        rates = self._fetch(self.recent_url, currency)
        if rates and min(rates) <= since:
            return PublishedRates(rates, self.recent_url)
        return PublishedRates(self._fetch(self.history_url, currency), self.history_url)

    def _fetch(self, url: str, currency: str) -> dict[date, Decimal]:
        try:
            response = self._session.get(url, timeout=self._timeout, stream=True)
            response.raise_for_status()
            document = response.raw.read(_MAX_FEED_BYTES + 1, decode_content=True)
        except requests.RequestException as error:
            raise ExchangeRateUnavailable(f"the ECB feed {url} could not be read: {type(error).__name__}") from None
        if len(document) > _MAX_FEED_BYTES:
            raise ExchangeRateUnavailable(f"the ECB feed {url} is larger than {_MAX_FEED_BYTES} bytes")
        rates = parse_ecb_feed(document, currency)
        log.info(
            "ECB feed read", extra={"url": url, "days": len(rates), "newest": max(rates).isoformat() if rates else None}
        )
        return rates
