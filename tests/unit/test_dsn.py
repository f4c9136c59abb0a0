"""AI_CS_POSTGRES_DSN in libpq's key=value form as well as the URL form (issue #15)."""

from __future__ import annotations

import pytest

from ai_customer_service.config import load_settings, postgres_url
from ai_customer_service.db.dsn import describe_target, mask_dsn, parse_dsn
from ai_customer_service.errors import ConfigError

RUNBOOK = (
    "host=localhost port=5434 user=ai_cs password=ai_cs_secret dbname=ai_customer_service sslmode=disable"
)


def test_the_runbooks_keyvalue_dsn_gives_the_same_connection_as_its_url() -> None:
    kv = postgres_url(RUNBOOK)
    url = postgres_url("postgres://ai_cs:ai_cs_secret@localhost:5434/ai_customer_service?sslmode=disable")
    expected = "postgresql+asyncpg://ai_cs:ai_cs_secret@localhost:5434/ai_customer_service"
    assert kv == url == (expected, {"ssl": False})


def test_libpq_quoting_rules() -> None:
    dsn = parse_dsn("host = db  password='it''s' dbname='my db'".replace("''s", "\\'s"))
    assert dsn.host == "db" and dsn.password == "it's" and dsn.dbname == "my db"
    dsn = parse_dsn(r"password='a b\'c\\d' user=x\ y dbname=''")
    assert dsn.password == "a b'c\\d" and dsn.user == "x y" and dsn.dbname is None
    url, _ = postgres_url(r"user=u password='p@ss:/?#' host=h dbname=d")
    assert url == "postgresql+asyncpg://u:p%40ss%3A%2F%3F%23@h/d"


def test_every_option_we_honour_works_in_both_forms() -> None:
    options = "sslmode=require connect_timeout=7 application_name=cs search_path=app statement_timeout=5000"
    kv = postgres_url(f"host=h dbname=d {options} target_session_attrs=read-write")
    url = postgres_url(f"postgres://h/d?{options.replace(' ', '&')}&target_session_attrs=read-write")
    assert kv == url
    assert kv[1] == {
        "ssl": "require",
        "timeout": 7.0,
        "server_settings": {"application_name": "cs", "search_path": "app", "statement_timeout": "5000"},
    }
    assert kv[0] == "postgresql+asyncpg://h/d?target_session_attrs=read-write"


def test_a_unix_socket_host_goes_to_the_connect_args() -> None:
    url, args = postgres_url("host=/var/run/postgresql dbname=cs user=ai_cs")
    assert url == "postgresql+asyncpg://ai_cs@/cs" and args == {"host": "/var/run/postgresql"}


@pytest.mark.parametrize(
    ("dsn", "needle"),
    [
        ("host=h password=SuperSecretPw dbname", "missing '=' after 'dbname'"),
        ("host=h password='SuperSecretPw", "unterminated quoted value of 'password'"),
        ("host=h password=SuperSecretPw fallback=1", "unsupported parameter name (a value with spaces"),
        ("host=h password=SuperSecretPw options=-cx", "unsupported parameter 'options'"),
        ("host=h password=Super SecretPw=1", "unsupported parameter name"),
        ("host=h password=Super SecretPw", "a word without '='"),
        ("host=h password=SuperSecretPw port=five", "port must be a number"),
        ("host=h password=SuperSecretPw sslmode=sometimes", "sslmode must be one of"),
        ("SuperSecretPw", "must look like"),
    ],
)
def test_a_bad_keyvalue_dsn_is_named_without_its_password(dsn: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"AI_CS_POSTGRES_DSN": dsn}, env_file=None)
    message = str(caught.value)
    assert needle in message and "AI_CS_POSTGRES_DSN" in message, message
    assert "SecretPw" not in message


def test_masking_covers_both_forms() -> None:
    assert mask_dsn(RUNBOOK) == (
        "host=localhost port=5434 user=ai_cs password=*** dbname=ai_customer_service sslmode=disable"
    )
    assert mask_dsn("password='a b' host='x y'") == "password=*** host='x y'"
    assert mask_dsn("postgres://h/d?password=hunter2") == "postgres://h/d?password=***"
    assert "hunter2" not in mask_dsn("host=h password='hunter2")  # unparseable: not shown
    settings = load_settings({"AI_CS_POSTGRES_DSN": RUNBOOK}, env_file=None)
    assert "ai_cs_secret" not in str(settings.masked())


def test_diagnostics_name_the_target_with_libpq_defaults() -> None:
    assert describe_target(RUNBOOK) == ("localhost:5434", "ai_cs", "ai_customer_service")
    assert describe_target("dbname=x") == ("localhost:5432", "?", "x")
