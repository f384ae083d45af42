"""Stripe secrets from Secrets Manager: cached, refreshed for rotation, never shown."""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from botocore.stub import Stubber

from billing_core.adapters.secrets_manager import SecretsManagerSecretsProvider, parse_stripe_secrets
from billing_core.errors import SecretsUnavailable

SECRET_ID = "billing/stripe"


def secret_value(secret_key="sk_test_first", webhook_secrets=("whsec_first",)) -> dict:
    return {
        "ARN": f"arn:aws:secretsmanager:eu-central-1:123456789012:secret:{SECRET_ID}-AbCdEf",
        "Name": SECRET_ID,
        "SecretString": json.dumps(
            {"secret_key": secret_key, "publishable_key": "pk_test_1", "webhook_secrets": list(webhook_secrets)}
        ),
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client():
    return boto3.client("secretsmanager", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture
def clock():
    return Clock()


def provider_for(client, clock, **kwargs) -> SecretsManagerSecretsProvider:
    return SecretsManagerSecretsProvider(client, SECRET_ID, refresh_seconds=300, clock=clock, **kwargs)


def test_secrets_are_read_once_and_served_from_cache_while_fresh(client, clock):
    provider = provider_for(client, clock)
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", secret_value(), {"SecretId": SECRET_ID})
        first = provider.get()
        clock.now += 299
        second = provider.get()
        stub.assert_no_pending_responses()

    assert first.secret_key == "sk_test_first"
    assert first.publishable_key == "pk_test_1"
    assert first.webhook_secrets == ("whsec_first",)
    assert second is first
    assert provider.reads == 1


def test_a_rotated_secret_is_picked_up_after_the_refresh_interval(client, clock):
    provider = provider_for(client, clock)
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", secret_value(), {"SecretId": SECRET_ID})
        stub.add_response(
            "get_secret_value",
            secret_value("sk_test_rotated", ("whsec_new", "whsec_first")),
            {"SecretId": SECRET_ID},
        )
        provider.get()
        clock.now += 300
        rotated = provider.get()

    assert rotated.secret_key == "sk_test_rotated"
    assert rotated.webhook_secrets == ("whsec_new", "whsec_first")


def test_refresh_rereads_for_a_signature_no_cached_secret_verifies_once_the_last_read_is_ten_seconds_old(client, clock):
    provider = provider_for(client, clock)
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", secret_value(), {"SecretId": SECRET_ID})
        stub.add_response("get_secret_value", secret_value(webhook_secrets=("whsec_new",)), {"SecretId": SECRET_ID})
        provider.get()
        clock.now += 9.9
        too_soon = provider.refresh()
        clock.now += 0.1
        refreshed = provider.refresh()
        cached = provider.get()
        stub.assert_no_pending_responses()

    assert too_soon.webhook_secrets == ("whsec_first",)
    assert refreshed.webhook_secrets == ("whsec_new",)
    assert cached is refreshed
    assert provider.reads == 2


def test_however_often_refresh_is_asked_secrets_manager_is_read_at_most_once_per_ten_seconds(client, clock):
    """A flood of forged signatures (or a revoked key failing every call) asks for a re-read each time."""
    from billing_core.settings import Settings

    provider = SecretsManagerSecretsProvider(
        client, SECRET_ID, refresh_seconds=Settings.from_env({}).secrets_refresh_seconds, clock=clock
    )
    with Stubber(client) as stub:
        for _ in range(6):
            stub.add_response("get_secret_value", secret_value(), {"SecretId": SECRET_ID})
        for _ in range(6000):  # one minute at 100 requests a second, each asking for a re-read
            provider.get()
            provider.refresh()
            clock.now += 0.01
        stub.assert_no_pending_responses()

    assert provider.reads == 6


def test_a_failed_reread_keeps_serving_the_last_good_secrets_and_retries_later(client, clock):
    provider = provider_for(client, clock, retry_seconds=30)
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", secret_value(), {"SecretId": SECRET_ID})
        stub.add_client_error("get_secret_value", "InternalServiceError", http_status_code=500)
        stub.add_response("get_secret_value", secret_value("sk_test_rotated"), {"SecretId": SECRET_ID})
        provider.get()
        clock.now += 301
        stale = provider.get()
        clock.now += 10
        still_stale = provider.get()  # within retry_seconds: no new read
        clock.now += 20
        fresh = provider.get()
        stub.assert_no_pending_responses()

    assert stale.secret_key == still_stale.secret_key == "sk_test_first"
    assert fresh.secret_key == "sk_test_rotated"
    assert provider.reads == 3


def test_no_secret_at_all_is_a_secrets_unavailable_error(client, clock):
    provider = provider_for(client, clock)
    with Stubber(client) as stub:
        stub.add_client_error("get_secret_value", "ResourceNotFoundException", http_status_code=400)
        with pytest.raises(SecretsUnavailable, match="ResourceNotFoundException"):
            provider.get()


@pytest.mark.parametrize(
    ("secret_string", "problem"),
    [
        ("not json", "not JSON"),
        ('["a list"]', "not a JSON object"),
        ('{"publishable_key": "pk_test_1"}', "no secret_key"),
        ('{"secret_key": "sk_test_hidden", "publishable_key": "pk_1", "webhook_secrets": [1]}', "webhook_secrets"),
    ],
)
def test_a_malformed_secret_is_reported_by_field_never_by_value(secret_string, problem):
    with pytest.raises(SecretsUnavailable, match=problem) as error:
        parse_stripe_secrets(secret_string, SECRET_ID)
    assert "sk_test_hidden" not in str(error.value)


def test_a_single_webhook_secret_string_is_accepted():
    secrets = parse_stripe_secrets('{"secret_key": "sk_1", "publishable_key": "pk_1", "webhook_secret": "whsec_1"}')
    assert secrets.webhook_secrets == ("whsec_1",)


def test_secret_values_never_appear_in_repr_or_str(client, clock):
    provider = provider_for(client, clock)
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", secret_value(), {"SecretId": SECRET_ID})
        secrets = provider.get()

    for text in (repr(secrets), str(secrets), repr(provider), str(provider)):
        assert "sk_test_first" not in text and "whsec_first" not in text and "pk_test_1" not in text


def test_concurrent_callers_share_one_read(clock):
    reads = []
    started = threading.Event()

    class SlowClient:
        def get_secret_value(self, SecretId):
            reads.append(SecretId)
            started.wait(timeout=5)  # hold the first read until every thread is waiting for the lock
            return secret_value()

    provider = provider_for(SlowClient(), clock)
    results = []
    threads = [threading.Thread(target=lambda: results.append(provider.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    started.set()
    for thread in threads:
        thread.join(timeout=5)

    assert len(results) == 8
    assert len(reads) == 1


def test_by_default_a_removed_webhook_secret_stops_verifying_within_ten_seconds_with_one_read_per_ten_seconds(
    client, clock
):
    from billing_core.settings import Settings

    refresh = Settings.from_env({}).secrets_refresh_seconds
    provider = SecretsManagerSecretsProvider(client, SECRET_ID, refresh_seconds=refresh, clock=clock)
    with Stubber(client) as stub:
        stub.add_response(
            "get_secret_value", secret_value(webhook_secrets=("whsec_new", "whsec_leaked")), {"SecretId": SECRET_ID}
        )
        stub.add_response("get_secret_value", secret_value(webhook_secrets=("whsec_new",)), {"SecretId": SECRET_ID})
        assert "whsec_leaked" in provider.get().webhook_secrets
        for _ in range(100):  # a busy receiver within the interval: still one read
            clock.now += 0.09
            provider.get()
        assert provider.reads == 1
        clock.now = 1000.0 + 10  # the operator removed the leaked secret at 1000 s
        assert provider.get().webhook_secrets == ("whsec_new",)

    assert refresh == 10 and provider.reads == 2


def test_while_secrets_manager_fails_the_last_secrets_serve_five_minutes_past_their_refresh_then_nothing(client, clock):
    """A webhook secret removed during an outage cannot stay valid for good: billing fails closed (503s)."""
    provider = SecretsManagerSecretsProvider(client, SECRET_ID, refresh_seconds=10, clock=clock)
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", secret_value(webhook_secrets=("whsec_leaked",)), {"SecretId": SECRET_ID})
        for _ in range(32):
            stub.add_client_error("get_secret_value", "InternalServiceError", http_status_code=500)
        provider.get()  # the last good read, at 0 s
        served, refused = [], []
        for tick in range(1, 3201):  # 320 s of requests, ten a second
            clock.now = 1000.0 + tick / 10
            try:
                assert provider.get().webhook_secrets == ("whsec_leaked",)
                served.append(tick / 10)
            except SecretsUnavailable:
                refused.append(tick / 10)
        stub.assert_no_pending_responses()

    assert max(served) == 310.0 and min(refused) == 310.1  # the refresh (10 s) + five minutes, then refused
    assert len(served) + len(refused) == 3200
    assert provider.reads == 1 + 32  # one read per 10 s while it failed, no more


def test_a_process_that_never_read_its_secrets_asks_again_at_most_once_per_ten_seconds(client, clock):
    provider = SecretsManagerSecretsProvider(client, SECRET_ID, refresh_seconds=10, clock=clock)
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_client_error("get_secret_value", "AccessDeniedException", http_status_code=400)
        stub.add_response("get_secret_value", secret_value(), {"SecretId": SECRET_ID})
        failures = 0
        for _ in range(300):  # 30 s of requests while Secrets Manager refuses
            try:
                provider.get()
            except SecretsUnavailable as error:
                failures += 1
                assert "AccessDeniedException" in str(error)
            clock.now += 0.1
        clock.now = 1000.0 + 31  # the next read's turn, and Secrets Manager answers again
        assert provider.get().secret_key == "sk_test_first"

    assert failures == 300 and provider.reads == 4
