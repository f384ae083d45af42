"""The ECB feed adapter over real HTTP, serving the real ECB files from ../shared/fx."""

from __future__ import annotations

import socket
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask, abort

from billing_core.adapters.ecb_feed import EcbFeed
from billing_core.errors import ExchangeRateUnavailable
from tests.support.servers import WsgiServer

FX = Path(__file__).resolve().parents[3] / "shared" / "fx"
pytestmark = pytest.mark.skipif(not (FX / "eurofxref-hist-90d.xml").exists(), reason="needs ../shared/fx")


@pytest.fixture(scope="module")
def feed_server():
    app = Flask(__name__)
    requests_seen: list[str] = []

    @app.get("/stats/eurofxref/<name>")
    def feed(name: str):
        requests_seen.append(name)
        if name == "broken.xml":
            abort(500)
        if name == "html.xml":
            return "<html><body>maintenance</body></html>"
        # The history feed stands in with the daily file: it differs, so the test sees which was read.
        source = {"eurofxref-hist-90d.xml": "eurofxref-hist-90d.xml", "eurofxref-hist.xml": "eurofxref-daily.xml"}
        if name not in source:
            abort(404)
        return (FX / source[name]).read_bytes(), 200, {"Content-Type": "text/xml"}

    with WsgiServer(app) as server:
        server.requests_seen = requests_seen
        yield server


def feed_for(server, recent="eurofxref-hist-90d.xml", history="eurofxref-hist.xml") -> EcbFeed:
    base = f"{server.base_url}/stats/eurofxref"
    return EcbFeed(f"{base}/{recent}", f"{base}/{history}", timeout_seconds=5)


def test_a_recent_period_is_read_from_the_90_day_feed(feed_server):
    published = feed_for(feed_server).published(since=date(2024, 12, 1), currency="USD")

    assert published.feed.endswith("eurofxref-hist-90d.xml")
    assert published.rates[date(2025, 2, 25)] == Decimal("1.0497") and len(published.rates) == 61


def test_a_period_older_than_the_90_days_is_read_from_the_history_feed(feed_server):
    published = feed_for(feed_server).published(since=date(2024, 6, 1), currency="USD")

    assert published.feed.endswith("eurofxref-hist.xml")
    assert published.rates == {date(2025, 5, 9): Decimal("1.1252")}


@pytest.mark.parametrize("recent", ["broken.xml", "html.xml", "missing.xml"])
def test_a_feed_that_fails_or_is_not_the_feed_is_unavailable(feed_server, recent):
    with pytest.raises(ExchangeRateUnavailable):
        feed_for(feed_server, recent=recent).published(since=date(2024, 12, 1), currency="USD")


def test_a_feed_nobody_answers_is_unavailable():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    feed = EcbFeed(f"http://127.0.0.1:{port}/a.xml", f"http://127.0.0.1:{port}/b.xml", timeout_seconds=2)

    with pytest.raises(ExchangeRateUnavailable, match="could not be read"):
        feed.published(since=date(2024, 12, 1), currency="USD")


def test_a_stalled_feed_is_unavailable_to_billing_api_instead_of_holding_its_request():
    """The preview may read the feed inside ``GET /billing``: billing-api's feed gives up on a silent server."""
    import boto3

    from billing_core.bootstrap import api_ports
    from billing_core.settings import Settings

    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/stats/eurofxref"
        settings = Settings.from_env(
            {
                "COGNITO_USER_POOL_ID": "eu-central-1_pool",
                "COGNITO_CLIENT_ID": "client",
                "ECB_FEED_URL": f"{url}/eurofxref-hist-90d.xml",
                "ECB_HISTORY_URL": f"{url}/eurofxref-hist.xml",
            }
        )
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-central-1")
        feed = api_ports(settings, session=session).rate_feed

        with pytest.raises(ExchangeRateUnavailable, match="ReadTimeout"):
            feed.published(since=date(2024, 12, 1), currency="USD")
