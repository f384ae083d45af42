"""Fuzzing the stack's webhook-receiver (gunicorn) as a hostile client would: whatever is sent, signed or
not, the answer is never a 5xx and always JSON in the error shape (or the receipt).

Cases come from Hypothesis: bodies of any JSON value (deep nesting included) or any bytes, Stripe-like
envelopes with fields of the wrong type, signatures valid with the stack's secret, stale, malformed
or oversized, odd content types, methods and header sizes. The figures are printed for the record.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stripe_emulator import sign_payload

EXAMPLES = 400
tally: Counter[str] = Counter()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
envelopes = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(max_size=30), st.integers(), st.none()),
        "object": st.sampled_from(["event", "invoice", 1]),
        "type": st.sampled_from(
            [
                "invoice.paid",
                "invoice.payment_failed",
                "setup_intent.succeeded",
                "customer.updated",
                "charge.refunded",
                "",
                "x" * 300,
            ]
        )
        | st.integers(),
        "created": st.integers() | st.text(max_size=5),
        "data": st.one_of(st.none(), st.text(max_size=5), st.fixed_dictionaries({"object": json_values})),
    },
    optional={"livemode": st.booleans(), "extra": json_values},
)


def _deep(depth: int, opener: str, closer: str) -> str:
    return opener * depth + closer * depth


# Well-formed events too, so a valid signature also meets bodies the receiver accepts (200): types it
# does not use (acknowledged, not queued) and invoice events for no invoice of ours.
events = st.fixed_dictionaries(
    {
        "id": st.text(alphabet="abcdef0123456789", min_size=8, max_size=24).map(lambda tail: f"evt_fuzz{tail}"),
        "object": st.just("event"),
        "type": st.sampled_from(["charge.refunded", "customer.created", "invoice.paid", "invoice.finalized"]),
        "created": st.integers(min_value=1_600_000_000, max_value=1_900_000_000),
        "data": st.fixed_dictionaries(
            {
                "object": st.fixed_dictionaries(
                    {
                        "id": st.text(alphabet="abcdef0123456789", min_size=4, max_size=12).map(
                            lambda tail: f"in_fuzz{tail}"
                        ),
                        "object": st.just("invoice"),
                        "metadata": st.just({}),
                    }
                )
            }
        ),
    }
)
bodies = st.one_of(
    events.map(json.dumps),
    envelopes.map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=200).map(lambda raw: raw.decode("latin1")),
    st.integers(min_value=65, max_value=20_000).map(lambda depth: _deep(depth, "[", "]")),
    st.integers(min_value=65, max_value=5_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
)
signatures = st.sampled_from(["valid", "stale", "wrong", "none", "garbage", "huge", "many"])
content_types = st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=latin1"]
)
methods = st.sampled_from(["POST", "POST", "POST", "PUT", "GET", "DELETE", "PATCH"])


def _signature(kind: str, body: str, secret: str) -> str | None:
    now = int(time.time())
    return {
        "valid": lambda: sign_payload(body, secret, timestamp=now),
        "stale": lambda: sign_payload(body, secret, timestamp=now - 3600),
        "wrong": lambda: sign_payload(body, "whsec_not_ours", timestamp=now),
        "none": lambda: None,
        "garbage": lambda: "t=abc,v1=\x7f,,=,",
        "huge": lambda: "t=1," + ",".join(f"v1={'0' * 64}" for _ in range(120)),
        "many": lambda: ",".join(f"t={now}" for _ in range(50)),
    }[kind]()


def test_no_webhook_a_hostile_client_sends_gets_a_5xx_or_an_answer_that_is_not_json(stack):
    url = stack.info["webhook_url"]
    session = requests.Session()

    @given(body=bodies, signature=signatures, content_type=content_types, method=methods)
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    def answers_in_json_without_a_5xx(body, signature, content_type, method):
        headers = {"Content-Type": content_type} if content_type else {}
        header = _signature(signature, body, stack.info["stripe_webhook_secret"])
        if header is not None:
            headers["Stripe-Signature"] = header
        response = session.request(method, url, data=body.encode("utf-8", "surrogatepass"), headers=headers, timeout=30)
        tally[f"{response.status_code}"] += 1
        tally["requests"] += 1
        assert response.status_code < 500, (response.status_code, response.text[:200])
        assert response.headers.get("Content-Type", "").startswith("application/json"), response.text[:200]
        answer = response.json()
        if response.status_code >= 400:
            assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message"}, answer
        else:
            assert answer["received"] is True, answer

    answers_in_json_without_a_5xx()

    print(
        f"\nwebhook fuzz: {tally['requests']} requests, 0 5xx, 0 non-JSON; by status: "
        + ", ".join(f"{status} x{count}" for status, count in sorted(tally.items()) if status != "requests")
    )
    assert tally["requests"] >= EXAMPLES and any(status.startswith("4") for status in tally)
