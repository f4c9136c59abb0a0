from __future__ import annotations

import pytest

from ai_customer_service.config import check_production_rules, load_settings
from ai_customer_service.errors import ConfigError
from ai_customer_service.security.tokens import generate_token, hash_token, same_secret
from ai_customer_service.ticket.queries import summarise
from ai_customer_service.values import percentile


def test_tokens_are_random_prefixed_and_hashed() -> None:
    a, b = generate_token(), generate_token()
    assert a != b and a.startswith("cst_") and len(a) >= 40
    assert hash_token(a) == hash_token(a) != hash_token(b)
    assert len(hash_token(a)) == 64 and a not in hash_token(a)
    assert same_secret(a, a) and not same_secret(a, b) and not same_secret("", "")


def test_percentiles_interpolate_linearly() -> None:
    assert percentile([60.0, 120.0, 180.0, 240.0], 0.5) == 150.0
    assert percentile([60.0, 120.0, 180.0, 240.0], 0.9) == pytest.approx(222.0)
    assert percentile([5.0], 0.9) == 5.0
    assert summarise([]) == {"count": 0, "mean": None, "p50": None, "p90": None}


PROD = {
    "AI_CS_RUNTIME_ENV": "production",
    "AI_CS_POSTGRES_ENABLED": "true",
    "AI_CS_POSTGRES_DSN": "postgres://u@h:5432/d",
    "AI_CS_WEBHOOK_SECRET": "s" * 32,
}


def test_trusted_headers_are_off_by_default_and_refused_in_production() -> None:
    assert not load_settings({}, env_file=None).auth_trusted_headers
    check_production_rules(load_settings(PROD, env_file=None))
    on = {**PROD, "AI_CS_AUTH_TRUSTED_HEADERS": "true"}
    with pytest.raises(ConfigError, match="AI_CS_AUTH_ALLOW_TRUSTED_HEADERS_IN_PRODUCTION"):
        check_production_rules(load_settings(on, env_file=None))
    allowed = {**on, "AI_CS_AUTH_ALLOW_TRUSTED_HEADERS_IN_PRODUCTION": "true"}
    check_production_rules(load_settings(allowed, env_file=None))
    # development may use header mode without the second switch
    check_production_rules(load_settings({"AI_CS_AUTH_TRUSTED_HEADERS": "true"}, env_file=None))


def test_ticket_settings_defaults_and_validation() -> None:
    s = load_settings({}, env_file=None)
    assert s.ticket_handback_on.value == "close"
    assert s.ticket_reopen_window_seconds == 86400
    assert not s.auto_assign
    assert (
        load_settings({"AI_CS_TICKET_HANDBACK_ON": "Resolve"}, env_file=None).ticket_handback_on == "resolve"
    )
    with pytest.raises(ConfigError, match="AI_CS_TICKET_HANDBACK_ON"):
        load_settings({"AI_CS_TICKET_HANDBACK_ON": "never"}, env_file=None)
    with pytest.raises(ConfigError, match="AI_CS_TICKET_REOPEN_WINDOW_SECONDS"):
        load_settings({"AI_CS_TICKET_REOPEN_WINDOW_SECONDS": "-1"}, env_file=None)
