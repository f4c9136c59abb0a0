"""``ai-customer-service outbox worker|list|replay``: the delivery worker as its own process, and
the dead-letter operations for people with shell access instead of an admin token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from typing import Annotated, Any

import typer

from ai_customer_service.config import Settings

outbox_app = typer.Typer(
    help="Outbound callbacks: run the delivery worker, list events, replay dead letters."
)

CLI_ACTOR = "cli"


def _settings() -> Settings:
    from ai_customer_service.cli import settings_or_exit

    return settings_or_exit()


def _fail(message: str) -> typer.Exit:
    from ai_customer_service.cli import fail

    return fail(message)


@outbox_app.command("worker")
def worker(
    once: Annotated[bool, typer.Option("--once", help="Deliver what is due now, then exit.")] = False,
) -> None:
    """Run the delivery worker (as many processes as you like; they coordinate through the database)."""
    settings = _settings()
    from ai_customer_service.config import check_platform_rules
    from ai_customer_service.errors import ConfigError, StartupError
    from ai_customer_service.logs import configure_logging

    configure_logging(settings)
    try:
        check_platform_rules(settings)
        asyncio.run(_run_worker(settings, once=once))
    except (ConfigError, StartupError) as exc:
        raise _fail(str(exc)) from None


async def _run_worker(settings: Settings, *, once: bool) -> None:
    from ai_customer_service.logs import get_logger
    from ai_customer_service.metrics import Metrics
    from ai_customer_service.outbox.worker import OutboxWorker
    from ai_customer_service.server import prepare_database

    log = get_logger("ai_customer_service.outbox")
    db = await prepare_database(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    outbox = OutboxWorker(settings, db, Metrics())
    log.info("outbox worker started", worker=outbox.name, store=settings.store_name)
    try:
        while not stop.is_set():
            try:
                await outbox.drain()
                await outbox.check_destinations(force=False)
            except Exception as exc:  # the database may be away for a moment: log and go on
                log.error("outbox batch failed", exc_info=exc)
            if once:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.outbox_poll_interval_seconds)
    finally:
        await db.dispose()
        log.info("outbox worker stopped", worker=outbox.name)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_db(settings: Settings, fn: Any) -> Any:
    from ai_customer_service.db.engine import Database

    db = Database(settings)
    try:
        return await fn(db)
    finally:
        await db.dispose()


@outbox_app.command("list")
def list_events(
    status: Annotated[str, typer.Option(help="pending, delivered or dead")] = "",
    destination: Annotated[str, typer.Option(help="platform name or channel:<name>")] = "",
    session_id: Annotated[str, typer.Option(help="only this session's events")] = "",
    event_type: Annotated[str, typer.Option("--type", help="event type, e.g. ticket.created")] = "",
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Print events (newest first) as one JSON object: {items, total, page, page_size}."""
    settings = _settings()
    flt = _filter(status=status, destination=destination, session_id=session_id, event_type=event_type)
    from ai_customer_service.outbox import service

    result = _run(_with_db(settings, lambda db: service.list_events(db, flt, page=page, page_size=page_size)))
    typer.echo(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))


@outbox_app.command("replay")
def replay(
    event_id: Annotated[str, typer.Argument(help="the dead event to replay")] = "",
    all_dead: Annotated[
        bool, typer.Option("--all-dead", help="replay every dead event matching the filters")
    ] = False,
    destination: Annotated[str, typer.Option()] = "",
    session_id: Annotated[str, typer.Option()] = "",
    event_type: Annotated[str, typer.Option("--type")] = "",
) -> None:
    """Put one dead event (EVENT_ID) or all matching dead events (--all-dead) back to pending."""
    if bool(event_id) == all_dead:
        raise _fail("give either an EVENT_ID or --all-dead (with optional filters)")
    settings = _settings()
    from ai_customer_service.errors import ServiceError
    from ai_customer_service.outbox import service

    try:
        if event_id:
            one = _uuid(event_id, "EVENT_ID")
            result = _run(_with_db(settings, lambda db: service.replay_one(db, one, actor_id=CLI_ACTOR)))
            typer.echo(json.dumps({"replayed": 1, "event": result}, indent=2, ensure_ascii=False))
        else:
            flt = _filter(status="", destination=destination, session_id=session_id, event_type=event_type)
            result = _run(_with_db(settings, lambda db: service.replay_matching(db, flt, actor_id=CLI_ACTOR)))
            typer.echo(json.dumps(result))
    except ServiceError as exc:
        raise _fail(f"{exc.code} {exc.message}") from None


def _uuid(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _fail(f"{name} must be a UUID") from None


def _filter(*, status: str, destination: str, session_id: str, event_type: str) -> Any:
    from ai_customer_service.outbox.events import EventType
    from ai_customer_service.outbox.models import OutboxStatus
    from ai_customer_service.outbox.repository import EventFilter

    if status and status not in {s.value for s in OutboxStatus}:
        raise _fail("--status must be pending, delivered or dead")
    if event_type and event_type not in {t.value for t in EventType}:
        raise _fail(f"--type must be one of {', '.join(t.value for t in EventType)}")
    return EventFilter(
        status=status or None,
        destination=destination or None,
        session_id=_uuid(session_id, "--session-id") if session_id else None,
        type=event_type or None,
    )
