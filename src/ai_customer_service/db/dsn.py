"""``AI_CS_POSTGRES_DSN`` in either of libpq's two forms, parsed once into one value.

- URL: ``postgres://user:pass@host:5432/db?sslmode=disable`` (``postgresql://`` too);
- key=value (the original runbook's form): ``host=db port=5432 user=ai_cs password='a b' dbname=x
  sslmode=disable``, with libpq's quoting rules: a value may be single-quoted, and inside or outside
  quotes a backslash takes the next character literally (``\\'``, ``\\\\``); spaces around ``=`` are
  allowed.

Both forms accept the same parameters. Nothing here ever puts a password into an error message:
errors name the problem, and :func:`mask_dsn` shows a DSN with its password replaced by ``***``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from sqlalchemy.engine import URL

# libpq parameters that become asyncpg ``server_settings``
SERVER_SETTINGS = ("application_name", "search_path", "statement_timeout")
# asyncpg's own keywords, passed through in the URL query
ASYNCPG_PARAMS = ("target_session_attrs", "krbsrvname")
# the connection's parts (in the URL form they are its user, password, host, port and path)
CORE_PARAMS = ("host", "port", "user", "password", "dbname")
OPTION_PARAMS = ("sslmode", "connect_timeout", *SERVER_SETTINGS, *ASYNCPG_PARAMS)
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

EXAMPLES = (
    "postgres://user:pass@host:5432/db?sslmode=disable or "
    "host=... port=5432 user=... password=... dbname=... sslmode=disable"
)
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# libpq's keywords: only these are ever echoed from a key=value DSN, since any other word may be a
# fragment of an unquoted password with a space in it
_LIBPQ_WORDS = """
    host hostaddr port dbname user password passfile channel_binding connect_timeout client_encoding
    options application_name fallback_application_name keepalives keepalives_idle keepalives_interval
    keepalives_count tcp_user_timeout replication gssencmode sslmode requiressl sslcompression sslcert
    sslkey sslpassword sslcertmode sslrootcert sslcrl sslcrldir sslsni requirepeer
    ssl_min_protocol_version ssl_max_protocol_version krbsrvname gsslib gssdelegation service
    target_session_attrs load_balance_hosts sslnegotiation
"""
LIBPQ_KEYWORDS = frozenset(_LIBPQ_WORDS.split())
_UNQUOTED_HINT = "a value with spaces must be quoted, e.g. password='a b'"


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN: the connection's parts and its other parameters (all validated)."""

    form: Literal["url", "keyvalue"]
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    dbname: str | None = None
    options: dict[str, str] = field(default_factory=dict)


def parse_dsn(text: str) -> Dsn:
    """Parse either form; raises :class:`ValueError` with a message that never holds the password."""
    text = text.strip()
    if "://" in text:
        return _parse_url(text)
    if _KEY_RE.match(text) and "=" in text:
        return _build("keyvalue", _parse_keyvalue(text))
    raise ValueError(f"must look like {EXAMPLES}")


def _parse_url(text: str) -> Dsn:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            raise ValueError("the port must be a number, e.g. postgres://user:pass@host:5432/db") from None
        raise ValueError("not a valid URL, e.g. postgres://user:pass@host:5432/db") from None
    if parts.scheme not in ("postgres", "postgresql", "postgresql+asyncpg"):
        raise ValueError(f"must look like {EXAMPLES}")
    # query parameters may also name the parts, e.g. ?host=/var/run/postgresql (a Unix socket)
    values: dict[str, str] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if parts.hostname:
        values.setdefault("host", unquote(parts.hostname))
    if port is not None:
        values.setdefault("port", str(port))
    if parts.username:
        values.setdefault("user", unquote(parts.username))
    if parts.password is not None:
        values.setdefault("password", unquote(parts.password))
    database = unquote(parts.path.lstrip("/"))
    if database:
        values.setdefault("dbname", database)
    return _build("url", values)


def _parse_keyvalue(text: str) -> dict[str, str]:
    """libpq's ``conninfo`` rules (``conninfo_parse``)."""
    values: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        while i < n and not text[i].isspace() and text[i] != "=":
            i += 1
        key = text[start:i]
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != "=":
            if key in LIBPQ_KEYWORDS:
                raise ValueError(f"missing '=' after {key!r} in the key=value DSN")
            raise ValueError(f"a word without '=' in the key=value DSN ({_UNQUOTED_HINT})")
        i += 1
        while i < n and text[i].isspace():
            i += 1
        chars: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise ValueError(f"unterminated quoted value of {key!r} in the key=value DSN")
                if text[i] == "\\" and i + 1 < n:
                    chars.append(text[i + 1])
                    i += 2
                elif text[i] == "'":
                    i += 1
                    break
                else:
                    chars.append(text[i])
                    i += 1
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\" and i + 1 < n:
                    chars.append(text[i + 1])
                    i += 2
                else:
                    chars.append(text[i])
                    i += 1
        if not _KEY_RE.fullmatch(key):
            raise ValueError(f"invalid parameter name in the key=value DSN ({_UNQUOTED_HINT})")
        values[key] = "".join(chars)
    return values


def _build(form: Literal["url", "keyvalue"], values: dict[str, str]) -> Dsn:
    allowed = (*CORE_PARAMS, *OPTION_PARAMS)
    for name in values:
        if name not in allowed:
            shown = repr(name) if form == "url" or name in LIBPQ_KEYWORDS else f"name ({_UNQUOTED_HINT})"
            raise ValueError(f"unsupported parameter {shown} (supported: {', '.join(sorted(allowed))})")
    port: int | None = None
    if values.get("port"):
        if not values["port"].isdigit() or not 0 < int(values["port"]) < 65536:
            raise ValueError("the port must be a number, e.g. port=5432")
        port = int(values["port"])
    timeout = values.get("connect_timeout")
    if timeout is not None and not timeout.replace(".", "", 1).isdigit():
        raise ValueError("connect_timeout must be a number of seconds")
    sslmode = values.get("sslmode")
    if sslmode is not None and sslmode not in SSL_MODES:
        raise ValueError(f"sslmode must be one of {', '.join(SSL_MODES)}")
    return Dsn(
        form=form,
        host=values.get("host") or None,
        port=port,
        user=values.get("user") or None,
        password=values.get("password"),
        dbname=values.get("dbname") or None,
        options={k: v for k, v in values.items() if k in OPTION_PARAMS},
    )


def to_asyncpg(dsn: Dsn) -> tuple[str, dict[str, Any]]:
    """An asyncpg SQLAlchemy URL plus connect args.

    ``sslmode`` is not a connect keyword for asyncpg; it becomes the ``ssl`` argument. A host that is
    a directory (a Unix socket, ``host=/var/run/postgresql``) goes into the connect args.
    """
    options = dict(dsn.options)
    connect_args: dict[str, Any] = {}
    sslmode = options.pop("sslmode", None)
    if sslmode:
        connect_args["ssl"] = False if sslmode == "disable" else sslmode
    timeout = options.pop("connect_timeout", None)
    if timeout is not None:
        connect_args["timeout"] = float(timeout)
    settings = {name: options.pop(name) for name in SERVER_SETTINGS if name in options}
    if settings:
        connect_args["server_settings"] = settings
    host = dsn.host
    if host is not None and host.startswith("/"):
        connect_args["host"] = host
        host = None
    url = URL.create(
        "postgresql+asyncpg",
        username=dsn.user,
        password=dsn.password,
        host=host,
        port=dsn.port,
        database=dsn.dbname,
        query=options,
    )
    return url.render_as_string(hide_password=False), connect_args


def mask_dsn(text: str) -> str:
    """The DSN with its password replaced by ``***``; a DSN too broken to parse is not shown at all."""
    text = text.strip()
    if "://" in text:
        try:
            parts = urlsplit(text)
            if parts.password:
                netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
                parts = parts._replace(netloc=netloc)
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            query = [(k, "***" if k == "password" else v) for k, v in pairs]
            if any(k == "password" for k, _ in query):
                parts = parts._replace(query="&".join(f"{k}={v}" for k, v in query))
            return urlunsplit(parts)
        except ValueError:
            return "[unparseable DSN, not shown]"
    try:
        values = _parse_keyvalue(text)
    except ValueError:
        return "[unparseable DSN, not shown]"
    if not set(values) <= LIBPQ_KEYWORDS:  # a stray word may be part of an unquoted password
        return "[DSN with an unknown parameter, not shown]"
    return " ".join(f"{k}={'***' if k == 'password' else _quote(v)}" for k, v in values.items())


def _quote(value: str) -> str:
    if value and not any(c.isspace() or c in "'\\" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def describe_target(text: str) -> tuple[str, str, str]:
    """``(host:port, user, dbname)`` for diagnostics, with libpq's defaults; ``?`` when unknown."""
    try:
        dsn = parse_dsn(text)
    except ValueError:
        return "?", "?", "?"
    return f"{dsn.host or 'localhost'}:{dsn.port or 5432}", dsn.user or "?", dsn.dbname or "?"
