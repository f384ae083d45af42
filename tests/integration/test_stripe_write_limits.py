"""One noisy caller cannot push everyone's billing into Stripe's 429s: each account's (and operator's)
actions that write to Stripe have a budget per minute, shared by every billing-api process."""

from __future__ import annotations

import requests

from billing_core.settings import Settings
from tests.support.api import bearer, sign_in


def test_the_eleventh_setup_intent_in_a_minute_is_a_429_with_retry_after_and_never_reaches_stripe(clean_stack):
    admin = bearer(
        sign_in(clean_stack, clean_stack.info["admin"]["username"], clean_stack.info["admin"]["password"])[
            "AccessToken"
        ]
    )
    limit = Settings.from_env({}).stripe_writes_per_minute
    url = clean_stack.info["api_url"] + "/billing/setup-intent"

    answers = [requests.post(url, headers=admin, timeout=10) for _ in range(limit + 3)]

    statuses = [answer.status_code for answer in answers]
    # A minute boundary may fall between the requests: then the new minute's budget starts afresh.
    assert statuses.count(200) in (limit, limit + 3) or statuses[:limit] == [200] * limit, statuses
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused, statuses
    for answer in refused:
        assert answer.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
    intents = clean_stack.stripe_client().v1.setup_intents.list(params={"limit": 100}).data
    assert len(intents) == statuses.count(200)


def test_an_unrouted_operator_path_is_a_404_for_an_operator_and_stays_401_without_a_token(clean_stack):
    operator = bearer(
        sign_in(clean_stack, clean_stack.info["operator"]["username"], clean_stack.info["operator"]["password"])[
            "AccessToken"
        ]
    )
    url = clean_stack.info["api_url"] + "/operator/no-such-thing"

    assert requests.get(url, headers=operator, timeout=10).status_code == 404
    assert requests.get(url, timeout=10).status_code == 401
