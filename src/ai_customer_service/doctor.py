"""``ai-customer-service doctor``: the runbook's 60-second diagnostic as one command.

Checks, in order: configuration (secrets masked), database reachable, migrations at head, the HTTP
probes of a running instance, a signed self-test webhook, and recent errors in a log file. Prints one
line per check and returns whether everything is healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from ai_customer_service.config import (
    Settings,
    check_platform_rules,
    check_production_rules,
    production_warnings,
)
from ai_customer_service.db.connect import check_database
from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import current_revision, head_revision, is_newer
from ai_customer_service.errors import ConfigError, StartupError
from ai_customer_service.security.signing import sign

API = "/api/v1/customer-service"
Report = Callable[[str, bool | None, str], None]


def run_doctor(
    settings: Settings,
    *,
    url: str,
    log_file: str | None,
    out: Callable[[str], None] = print,
) -> bool:
    results: list[bool] = []

    def report(title: str, ok: bool | None, detail: str) -> None:
        mark = "OK" if ok else ("SKIP" if ok is None else "FAIL")
        out(f"[{len(results) + 1}/6] {title}: {mark}{' - ' + detail if detail else ''}")
        results.append(ok is not False)

    out("=== ai-customer-service diagnostic ===")
    _config(settings, report, out)
    asyncio.run(_database(settings, report, out))
    _http(url, report)
    _webhook(settings, url, report)
    _log(log_file, report)
    healthy = all(results)
    out(f"=== {'healthy' if healthy else 'UNHEALTHY'} ===")
    return healthy


def _config(settings: Settings, report: Report, out: Callable[[str], None]) -> None:
    for key, value in settings.masked().items():
        out(f"    {key}={value}")
    try:
        check_production_rules(settings)
        check_platform_rules(settings)
    except ConfigError as exc:
        report("configuration", False, str(exc))
        return
    report("configuration", True, f"{settings.runtime_env.value}, store={settings.store_name}")
    for warning in production_warnings(settings):
        out(f"    WARNING {warning}")


async def _database(settings: Settings, report: Report, out: Callable[[str], None] = print) -> None:
    db = Database(settings)
    try:
        try:
            await check_database(db)
        except StartupError as exc:
            report("database reachable", False, str(exc))
            report("migrations at head", False, "database unreachable")
            return
        report("database reachable", True, settings.store_name)
        async with db.engine.connect() as conn:
            revision = await current_revision(conn)
        head = head_revision()
        if revision == head:
            report("migrations at head", True, f"revision {revision}")
        elif is_newer(revision):
            report(
                "migrations at head", True, f"schema at {revision}, newer than this build's {head} (rollback)"
            )
        else:
            report(
                "migrations at head",
                False,
                f"schema at {revision or 'nothing'}, code expects {head}: run `ai-customer-service migrate`",
            )
            return
        await _outbox_destinations(settings, db, out)
    finally:
        await db.dispose()


async def _outbox_destinations(settings: Settings, db: Database, out: Callable[[str], None]) -> None:
    """A warning (not a failure): pending callbacks wait for destinations this configuration does
    not deliver to — another replica's platform, or a platform missing from this one's settings."""
    from ai_customer_service.outbox.delivery import known_destinations
    from ai_customer_service.outbox.repository import pending_elsewhere

    async with db.sessionmaker() as tx:
        unknown = await pending_elsewhere(tx, known_destinations(settings))
    for destination, count in sorted(unknown.items()):
        out(
            f"    WARNING outbox: {count} pending event(s) for destination {destination!r}, which this "
            "configuration does not deliver to; they wait for a replica configured for it (set "
            "AI_CS_PLATFORM_<NAME>_* or AI_CS_CHANNEL_<NAME>_CALLBACK_* here if this replica should)"
        )


def _http(url: str, report: Report) -> None:
    lines = []
    ok = True
    try:
        with httpx.Client(base_url=url, timeout=5.0) as client:
            for path in ("/actuator/health/live", "/actuator/health/ready", "/actuator/health"):
                status = client.get(path).status_code
                ok = ok and status == 200
                lines.append(f"{path} -> {status}")
    except httpx.HTTPError as exc:
        report(
            "HTTP endpoints", False, f"{url} not reachable ({type(exc).__name__}); is the service running?"
        )
        return
    report("HTTP endpoints", ok, ", ".join(lines))


def _webhook(settings: Settings, url: str, report: Report) -> None:
    if not settings.webhook_secret:
        report("signed self-test webhook", None, "AI_CS_WEBHOOK_SECRET not set")
        return
    channel = sorted(settings.channel_names)[0] if "widget" not in settings.channel_names else "widget"
    body = json.dumps(
        {
            "channel": channel,
            "message_id": f"doctor-{uuid.uuid4().hex}",
            "open_id": f"doctor-{uuid.uuid4().hex[:12]}",  # a fresh conversation: never a ticket
            "content": "health check",
        }
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        settings.webhook_timestamp_header: timestamp,
        settings.webhook_signature_header: sign(settings.webhook_secret, timestamp, body),
    }
    try:
        response = httpx.post(f"{url}{API}/webhook", content=body, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        report("signed self-test webhook", False, f"{type(exc).__name__}")
        return
    if response.status_code == 404:
        report("signed self-test webhook", None, "not available yet (no webhook route)")
        return
    ok = response.status_code == 200
    detail = f"HTTP {response.status_code}"
    if not ok:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            detail += f" {response.json()['error']['code']}"
    report("signed self-test webhook", ok, detail)


def _log(log_file: str | None, report: Report) -> None:
    if not log_file:
        report("recent errors in log", None, "no --log-file given")
        return
    path = Path(log_file)
    if not path.is_file():
        report("recent errors in log", False, f"{log_file} not found")
        return
    tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-200:]
    errors = [line for line in tail if '"level": "error"' in line or " [error " in line or "ERROR" in line]
    report("recent errors in log", not errors, f"{len(errors)} in the last {len(tail)} lines")
    for line in errors[-5:]:
        print(f"    {line[:300]}")
