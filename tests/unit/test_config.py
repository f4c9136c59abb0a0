from __future__ import annotations

import pytest

from ai_customer_service.config import (
    check_platform_rules,
    check_production_rules,
    load_settings,
    mask_dsn,
    postgres_url,
    production_warnings,
)
from ai_customer_service.errors import ConfigError


def settings(**env: str):
    return load_settings(env, env_file=None)


def test_defaults_follow_the_contract() -> None:
    s = settings()
    assert s.runtime_env.value == "development"
    assert (s.host, s.port) == ("0.0.0.0", 8080)
    assert s.webhook_timestamp_header == "X-CS-Timestamp"
    assert s.webhook_signature_header == "X-CS-Signature"
    assert s.webhook_max_skew_seconds == 300
    assert s.max_body_bytes == 1_048_576
    assert s.rate_limit_messages == 10 and s.rate_limit_window_seconds == 10
    assert s.channel_names == {"widget", "wechat", "telegram", "discord"}
    assert s.store_name == "sqlite"
    assert not s.json_logs


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AI_CS_WEBHOOK_MAX_SKEW_SECONDS", "abc"),
        ("AI_CS_WEBHOOK_MAX_SKEW_SECONDS", "0"),
        ("AI_CS_WEBHOOK_MAX_SKEW_SECONDS", "-5"),
        ("AI_CS_MAX_BODY_BYTES", "1.5"),
        ("AI_CS_ADDR", "8080"),
        ("AI_CS_ADDR", ":99999"),
        ("AI_CS_LOG_LEVEL", "loud"),
        ("AI_CS_RUNTIME_ENV", "staging"),
        ("AI_CS_POSTGRES_ENABLED", "maybe"),
        ("AI_CS_POSTGRES_DSN", "mysql://x@y/z"),
        ("AI_CS_RATE_LIMIT_MESSAGES", "-1"),
        ("AI_CS_POSTGRES_MAX_OPEN_CONNS", "ten"),
        ("AI_CS_CHANNELS", "web widget"),
        ("AI_CS_WEBHOOK_MAX_SKEW_SECONDS", ""),
    ],
)
def test_invalid_values_fail_with_one_line_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(**{variable: value})
    message = str(info.value)
    assert variable in message
    assert "\n" not in message


def test_pool_idle_above_open_is_refused() -> None:
    with pytest.raises(ConfigError, match="AI_CS_POSTGRES_MAX_IDLE_CONNS"):
        settings(AI_CS_POSTGRES_MAX_OPEN_CONNS="2", AI_CS_POSTGRES_MAX_IDLE_CONNS="5")


@pytest.mark.parametrize(
    ("raw", "expected"), [("prod", "production"), ("dev", "development"), ("TEST", "test")]
)
def test_environment_aliases(raw: str, expected: str) -> None:
    assert settings(AI_CS_RUNTIME_ENV=raw).runtime_env.value == expected
    assert settings(AI_CS_ENV=raw).runtime_env.value == expected


def test_runtime_env_wins_over_its_alias() -> None:
    assert settings(AI_CS_RUNTIME_ENV="test", AI_CS_ENV="production").runtime_env.value == "test"


def test_production_refusals_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="embedded store is not allowed in production"):
        check_production_rules(settings(AI_CS_RUNTIME_ENV="production"))
    with pytest.raises(ConfigError, match="AI_CS_POSTGRES_DSN is required"):
        check_production_rules(settings(AI_CS_RUNTIME_ENV="production", AI_CS_POSTGRES_ENABLED="true"))
    with pytest.raises(ConfigError, match="AI_CS_WEBHOOK_SECRET is required"):
        check_production_rules(
            settings(
                AI_CS_RUNTIME_ENV="production",
                AI_CS_POSTGRES_ENABLED="true",
                AI_CS_POSTGRES_DSN="postgres://u:p@db:5432/x",
            )
        )
    check_production_rules(
        settings(
            AI_CS_RUNTIME_ENV="production",
            AI_CS_POSTGRES_ENABLED="true",
            AI_CS_POSTGRES_DSN="postgres://u:p@db:5432/x",
            AI_CS_WEBHOOK_SECRET="s" * 32,
        )
    )
    check_production_rules(settings())  # development may use the embedded store


def test_dsn_becomes_an_asyncpg_url_with_ssl_argument() -> None:
    url, args = postgres_url("postgres://ai_cs:secret@localhost:5434/ai_customer_service?sslmode=disable")
    assert url == "postgresql+asyncpg://ai_cs:secret@localhost:5434/ai_customer_service"
    assert args == {"ssl": False}
    url, args = postgres_url("postgresql://u@h/db?sslmode=require&application_name=x&connect_timeout=5")
    assert url == "postgresql+asyncpg://u@h/db"
    assert args == {"ssl": "require", "timeout": 5.0, "server_settings": {"application_name": "x"}}


@pytest.mark.parametrize(
    ("dsn", "needle"),
    [
        ("mysql://u:SuperSecretPw@host:5432/db", "must look like"),
        ("postgres://u:SuperSecretPw@host:notaport/db", "port must be a number"),
        ("postgres://u:SuperSecretPw@host/db?fallback=1", "unsupported parameter 'fallback'"),
        ("postgres://u:SuperSecretPw@host/db?connect_timeout=soon", "connect_timeout"),
        ("postgres://u:SuperSecretPw@[::1/db", "not a valid URL"),
    ],
)
def test_a_bad_dsn_is_named_without_its_password(dsn: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(AI_CS_POSTGRES_DSN=dsn)
    message = str(caught.value)
    assert needle in message and "AI_CS_POSTGRES_DSN" in message
    assert "SuperSecretPw" not in message and ("u:***@host" in message or "not shown" in message)


def test_secrets_are_masked_in_summaries() -> None:
    s = settings(
        AI_CS_WEBHOOK_SECRET="topsecret",
        AI_CS_POSTGRES_DSN="postgres://ai_cs:hunter2@localhost:5434/db",
    )
    summary = " ".join(s.masked().values())
    assert "topsecret" not in summary and "hunter2" not in summary
    assert s.masked()["AI_CS_WEBHOOK_SECRET"] == "[SET]"
    assert mask_dsn("postgres://a:b@h/d") == "postgres://a:***@h/d"


def test_dotenv_file_is_read_and_environment_wins(tmp_path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("AI_CS_ADDR=:9000\nAI_CS_LOG_LEVEL=debug\n")
    s = load_settings({"AI_CS_LOG_LEVEL": "error"}, env_file=env_file)
    assert s.port == 9000
    assert s.log_level.value == "error"


def test_enabled_platform_without_callback_fails() -> None:
    s = settings(
        AI_CS_PLATFORM_ADAPTERS_ENABLED="true",
        AI_CS_PLATFORM_SUB2API_ENABLED="true",
        AI_CS_PLATFORM_SUB2API_INGRESS_SECRET="in",
    )
    with pytest.raises(ConfigError, match="AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL"):
        check_platform_rules(s)
    with pytest.raises(ConfigError, match="AI_CS_PLATFORM_NEWAPI_CALLBACK_TIMEOUT_MS"):
        settings(AI_CS_PLATFORM_NEWAPI_CALLBACK_TIMEOUT_MS="soon")


def test_production_refuses_every_short_secret_and_development_does_not() -> None:
    prod = {
        "AI_CS_RUNTIME_ENV": "production",
        "AI_CS_POSTGRES_ENABLED": "true",
        "AI_CS_POSTGRES_DSN": "postgres://u:p@db:5432/x",
        "AI_CS_WEBHOOK_SECRET": "w" * 32,
        "AI_CS_CHANNELS": "widget,shop",
        "AI_CS_CHANNEL_SHOP_CALLBACK_URL": "http://shop.example/cb",
        "AI_CS_CHANNEL_SHOP_CALLBACK_SECRET": "s" * 32,
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_PLATFORM_NEWAPI_ENABLED": "true",
        "AI_CS_PLATFORM_NEWAPI_INGRESS_SECRET": "i" * 32,
        "AI_CS_PLATFORM_NEWAPI_CALLBACK_SECRET": "c" * 32,
        "AI_CS_PLATFORM_NEWAPI_CALLBACK_BASE_URL": "http://newapi.example/cb",
    }
    check_production_rules(settings(**prod))
    assert production_warnings(settings(**prod)) == []
    ours = ("AI_CS_ADMIN_TOKEN", "AI_CS_METRICS_TOKEN", "AI_CS_WIDGET_TOKEN_SECRET")
    shared = (  # HMAC keys agreed with a gateway or platform: an integration may have fixed them
        "AI_CS_WEBHOOK_SECRET",
        "AI_CS_CHANNEL_SHOP_CALLBACK_SECRET",
        "AI_CS_PLATFORM_NEWAPI_INGRESS_SECRET",
        "AI_CS_PLATFORM_NEWAPI_CALLBACK_SECRET",
    )
    for variable in ours:
        with pytest.raises(ConfigError, match=f"{variable} is too short for production.*at least 32"):
            check_production_rules(settings(**{**prod, variable: "x" * 31}))
        check_production_rules(settings(**{**prod, "AI_CS_RUNTIME_ENV": "development", variable: "x"}))
    for variable in shared:
        with pytest.raises(ConfigError, match=f"{variable} is too short for production.*at least 16"):
            check_production_rules(settings(**{**prod, variable: "x" * 15}))
        accepted = settings(**{**prod, variable: "x" * 16})
        check_production_rules(accepted)  # accepted, with one warning naming it
        (warning,) = production_warnings(accepted)
        assert warning.startswith(f"{variable} has only 16 characters")
        check_production_rules(settings(**{**prod, "AI_CS_RUNTIME_ENV": "development", variable: "x"}))
        assert (
            production_warnings(settings(**{**prod, "AI_CS_RUNTIME_ENV": "development", variable: "x"})) == []
        )


def test_http_workers_auto_is_one_per_cpu_on_postgres_at_most_four_and_one_on_sqlite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ai_customer_service import config

    pg = {"AI_CS_POSTGRES_ENABLED": "true", "AI_CS_POSTGRES_DSN": "postgres://u@h/db"}
    assert settings().http_workers == 0  # the default is auto
    for cpus, expected in ((1, 1), (2, 2), (3, 3), (16, config.AUTO_WORKERS_MAX)):
        monkeypatch.setattr(config, "usable_cpus", lambda n=cpus: n)
        assert settings(**pg).server_processes == expected
        assert settings(**pg, AI_CS_HTTP_WORKERS="auto").server_processes == expected
        assert settings().server_processes == 1  # SQLite: one process whatever the CPUs
    assert settings(**pg, AI_CS_HTTP_WORKERS="3").server_processes == 3  # an explicit number wins
    assert settings(AI_CS_HTTP_WORKERS="2").server_processes == 2
    with pytest.raises(ConfigError):
        settings(AI_CS_HTTP_WORKERS="many")
