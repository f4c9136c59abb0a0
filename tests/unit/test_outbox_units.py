"""Pure parts of the outbox: destinations, channel subscriptions, backoff, signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import uuid
from datetime import UTC, datetime

import pytest

from ai_customer_service.config import check_platform_rules, load_settings
from ai_customer_service.errors import ConfigError
from ai_customer_service.outbox.delivery import ClaimedEvent, resolve_destination, signed_request
from ai_customer_service.outbox.events import EventType, destinations_for
from ai_customer_service.outbox.worker import backoff_seconds
from ai_customer_service.security import standard_webhooks


def settings(**env: str):
    return load_settings(env, env_file=None)


PLATFORM = {
    "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
    "AI_CS_PLATFORM_SUB2API_ENABLED": "true",
    "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET": "in",
    "AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL": "http://upstream/cb",
    "AI_CS_PLATFORM_SUB2API_CALLBACK_SECRET": "s3",
}


def test_destinations_for_platforms_and_channel_subscriptions() -> None:
    s = settings(
        **PLATFORM,
        AI_CS_CHANNEL_WIDGET_CALLBACK_URL="https://gateway/widget",
        AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET="w",
        AI_CS_CHANNEL_WIDGET_CALLBACK_EVENTS="agent.replied,ticket.closed",
    )
    assert destinations_for(s, platform="sub2api", channel="widget") == ["sub2api"]
    assert destinations_for(s, platform="newapi", channel="widget") == []  # not enabled
    assert destinations_for(s, platform=None, channel="widget") == ["channel:widget"]
    assert destinations_for(s, platform=None, channel="widget", event_type=EventType.AGENT_REPLIED) == [
        "channel:widget"
    ]
    assert destinations_for(s, platform=None, channel="widget", event_type=EventType.INTENT_RESOLVED) == []
    assert destinations_for(s, platform=None, channel="telegram") == []
    assert destinations_for(settings(), platform="sub2api", channel="widget") == []
    target = resolve_destination(s, "channel:widget")
    assert target is not None and target.url == "https://gateway/widget" and target.platform is None
    assert resolve_destination(s, "channel:telegram") is None


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"AI_CS_CHANNEL_WIDGET_CALLBACK_URL": "https://x/y"}, "AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET"),
        ({"AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET": "s"}, "AI_CS_CHANNEL_WIDGET_CALLBACK_URL"),
        (
            {"AI_CS_CHANNEL_WIDGET_CALLBACK_URL": "ftp://x", "AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET": "s"},
            "AI_CS_CHANNEL_WIDGET_CALLBACK_URL",
        ),
        ({"AI_CS_OUTBOX_RETRY_BASE_SECONDS": "abc"}, "AI_CS_OUTBOX_RETRY_BASE_SECONDS"),
        ({"AI_CS_OUTBOX_RETRY_BASE_SECONDS": "10", "AI_CS_OUTBOX_RETRY_CAP_SECONDS": "5"}, "CAP_SECONDS"),
    ],
)
def test_bad_outbox_settings_fail_with_the_variable_named(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        settings(**env)


def test_callback_timeout_must_fit_in_the_lease() -> None:
    s = settings(**PLATFORM, AI_CS_PLATFORM_SUB2API_CALLBACK_TIMEOUT_MS="60000")
    with pytest.raises(ConfigError, match="AI_CS_OUTBOX_LEASE_SECONDS"):
        check_platform_rules(s)


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (10, 512), (11, 900), (60, 900)]:
        samples = [backoff_seconds(attempt, base=1, cap=900, rng=rng) for _ in range(200)]
        assert all(0 <= x <= ceiling for x in samples)
        assert max(samples) > ceiling * 0.8  # it really spreads over the whole range


def test_both_signatures_are_verifiable_by_hand() -> None:
    s = settings(**PLATFORM)
    destination = resolve_destination(s, "sub2api")
    assert destination is not None
    event = ClaimedEvent(
        seq=1,
        id=uuid.uuid4(),
        destination="sub2api",
        type="ticket.created",
        session_id=uuid.uuid4(),
        ticket_id=None,
        source_message_id="m1",
        data={"x": "é"},
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        attempt=2,
        round=0,
    )
    body, headers = signed_request(event, destination, now=1_700_000_000)
    assert headers["X-CS-Timestamp"] == headers["webhook-timestamp"] == "1700000000"
    expected = hmac.new(b"s3", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers["X-CS-Signature"] == expected
    digest = hmac.new(b"s3", f"{event.id}.1700000000.".encode() + body, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
    assert b'"occurred_at":"2026-01-02T03:04:05Z"' in body and b'"attempt":2' in body


def test_whsec_secrets_are_base64_keys() -> None:
    key = b"\x01\x02secret-bytes"
    secret = "whsec_" + base64.b64encode(key).decode()
    digest = hmac.new(key, b"id.1.body", hashlib.sha256).digest()
    assert standard_webhooks.sign(secret, "id", 1, b"body") == "v1," + base64.b64encode(digest).decode()
    assert standard_webhooks.verify(
        secret, "id", "1", b"body", "v1,bogus " + standard_webhooks.sign(secret, "id", 1, b"body")
    )
