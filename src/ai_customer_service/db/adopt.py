"""Adopting a database the original Go service created (PostgreSQL only, like the original).

Recognised by its tables (``cs_sessions`` with the original's ``turn_count`` column, usually with its
``cs_schema_migrations`` bookkeeping) and no ``alembic_version`` of ours. Converted in place, in the migration
transaction and under the migration lock (:mod:`ai_customer_service.db.migrate`):

1. :func:`move_aside` moves the original's tables, untouched, into the schema ``cs_original`` (an
   archive that stays: nothing is dropped);
2. our migrations create our tables where they were;
3. :func:`copy_rows` converts every row into them: sessions (states mapped), messages, tickets (a
   free-text ``assigned_to`` becomes an external principal), audit rows, dedup records (each with a
   stored response, so a retry stays a duplicate) and the platform outbox (pending and retrying events
   keep their order; dead letters stay replayable). It then checks that every row arrived.

PostgreSQL's DDL is transactional, so an interrupted adoption leaves the original database exactly as
it was and the next start begins again; a finished one has an ``alembic_version`` and is never adopted
twice. :func:`plan` is the read-only preview ``migrate --dry-run`` prints.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ai_customer_service.auth.service import gateway_identity
from ai_customer_service.outbox.events import EventType
from ai_customer_service.security.tokens import generate_token, hash_token

ARCHIVE = "cs_original"
# every table the original's migrations create, in the order they are converted
ORIGINAL_TABLES = (
    "cs_sessions",
    "cs_messages",
    "cs_tickets",
    "cs_audit_logs",
    "cs_message_dedup",
    "cs_platform_callbacks",
    "cs_platform_event_outbox",
    "cs_platform_event_delivery_attempts",
    "cs_platform_event_dead_letters",
)
PLATFORM_CHANNELS = ("sub2api", "newapi")  # channels the original's 0003 added for its platforms
ACTIVE_TICKET = "('open', 'assigned', 'processing')"
# the reply of a duplicate whose original answer the original did not keep
DUPLICATE_REPLY = "该消息已处理，无需重复发送。This message was already processed."
SUPERSEDED_RESOLUTION = "closed when migrating: a newer ticket of the same conversation is still open"


class AdoptionError(RuntimeError):
    """The database cannot be adopted as it is (the message says why and what to do)."""


@dataclass
class Plan:
    """What adopting would do, counted on the original's rows (nothing is changed to count them)."""

    tables: dict[str, int] = field(default_factory=dict)  # original table -> rows
    versions: list[str] = field(default_factory=list)  # the original's cs_schema_migrations
    principals: list[str] = field(default_factory=list)  # external principals to create
    superseded_sessions: int = 0  # older open sessions of a customer, closed
    processing_sessions: int = 0  # 'processing' (a request cut short) becomes 'idle'
    superseded_tickets: int = 0  # older open tickets of a conversation, closed
    p0_tickets: int = 0  # P0 becomes P1 (our most urgent)
    outbox: dict[str, int] = field(default_factory=dict)  # the original's status -> events
    dedup_with_reply: int = 0  # dedup records whose reply is found in the original's audit rows
    unknown_event_types: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            "original database found (cs_schema_migrations: "
            + (", ".join(self.versions) or "missing or empty: its tables were created by hand")
            + ")",
            f"move the original's tables into schema {ARCHIVE} (kept as an archive, nothing dropped):",
        ]
        out += [f"  {name}: {count} rows" for name, count in self.tables.items()]
        out += [
            "create our schema and convert the rows:",
            f"  cs_sessions <- {self.tables.get('cs_sessions', 0)} sessions"
            f" ({self.superseded_sessions} older open duplicates closed,"
            f" {self.processing_sessions} 'processing' -> 'idle')",
            f"  cs_messages <- {self.tables.get('cs_messages', 0)} messages",
            f"  cs_principals <- {len(self.principals)} external principals"
            + (
                f" ({', '.join(self.principals[:10])}{', ...' if len(self.principals) > 10 else ''})"
                if self.principals
                else ""
            ),
            f"  cs_tickets <- {self.tables.get('cs_tickets', 0)} tickets"
            f" ({self.superseded_tickets} older open duplicates closed, {self.p0_tickets} P0 -> P1)",
            f"  cs_audit_logs <- {self.tables.get('cs_audit_logs', 0)} audit rows",
            f"  cs_message_dedup <- {self.tables.get('cs_message_dedup', 0)} dedup records"
            f" ({self.dedup_with_reply} with their original reply, the rest answered with a generic one)",
            f"  cs_platform_outbox <- {self.tables.get('cs_platform_event_outbox', 0)} events "
            + "("
            + ", ".join(f"{status}: {count}" for status, count in sorted(self.outbox.items()))
            + ")",
            f"  cs_platform_outbox_attempts <- {self.tables.get('cs_platform_event_delivery_attempts', 0)}"
            " delivery attempts",
            "record our versions in cs_schema_migrations (the original's stay)",
        ]
        if self.unknown_event_types:
            out.append(f"BLOCKED: unknown outbox event types {self.unknown_event_types}")
        return out


async def _tables(conn: AsyncConnection, schema_sql: str = "current_schema()") -> set[str]:
    rows = await conn.execute(
        text(f"SELECT table_name FROM information_schema.tables WHERE table_schema = {schema_sql}")
    )
    return set(rows.scalars())


async def is_original(conn: AsyncConnection) -> bool:
    """True for a database the original created and we have not adopted yet."""
    if conn.dialect.name != "postgresql":
        return False
    tables = await _tables(conn)
    if "alembic_version" in tables or "cs_sessions" not in tables:
        return False
    columns = set(
        (
            await conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'cs_sessions'"
                )
            )
        ).scalars()
    )
    # the original's cs_sessions has turn_count (ours never had); its cs_schema_migrations may be
    # missing when the runbook's `psql -f db/migration/0001_init.up.sql` created the tables by hand
    if "turn_count" in columns:
        return True
    raise AdoptionError(
        "the database has cs_sessions but neither our alembic_version nor the original's "
        "columns: it was created by something else; use an empty database or restore the "
        "original's backup"
    )


async def plan(conn: AsyncConnection) -> Plan:
    """Count what adopting would do (read-only)."""
    tables = await _tables(conn)
    result = Plan()
    for name in ORIGINAL_TABLES:
        if name in tables:
            result.tables[name] = await _count(conn, f"SELECT count(*) FROM {name}")
    if "cs_schema_migrations" in tables:
        result.versions = list(
            (await conn.execute(text("SELECT version FROM cs_schema_migrations ORDER BY version"))).scalars()
        )
    result.principals = await _assignees(conn, "")
    result.superseded_sessions = await _count(
        conn, f"SELECT count(*) FROM ({_SESSIONS_RANKED.format(src='')}) s WHERE s.rank > 1"
    )
    result.processing_sessions = await _count(
        conn, "SELECT count(*) FROM cs_sessions WHERE status = 'processing'"
    )
    if "cs_tickets" in tables:
        result.superseded_tickets = await _count(
            conn, f"SELECT count(*) FROM ({_TICKETS_RANKED.format(src='')}) t WHERE t.rank > 1"
        )
        result.p0_tickets = await _count(conn, "SELECT count(*) FROM cs_tickets WHERE priority = 'P0'")
    if "cs_platform_event_outbox" in tables:
        rows = await conn.execute(
            text("SELECT status, count(*) FROM cs_platform_event_outbox GROUP BY status")
        )
        result.outbox = {status: int(count) for status, count in rows}
        types = (
            await conn.execute(text("SELECT DISTINCT event_type FROM cs_platform_event_outbox"))
        ).scalars()
        known = {t.value for t in EventType}
        result.unknown_event_types = sorted(t for t in types if t not in known)
    if "cs_message_dedup" in tables and "cs_audit_logs" in tables:
        result.dedup_with_reply = await _count(
            conn,
            f"SELECT count(*) FROM ({_dedup_select('', tables)}) d WHERE d.response->>'reply' <> :fallback",
            fallback=DUPLICATE_REPLY,
        )
    return result


async def move_aside(conn: AsyncConnection) -> None:
    """Move the original's tables (with their indexes and constraints) into the archive schema."""
    if await _tables(conn, f"'{ARCHIVE}'"):
        raise AdoptionError(
            f"schema {ARCHIVE} already holds tables (an earlier adoption?): rename or drop it, "
            "or restore the original's backup into an empty database"
        )
    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {ARCHIVE}"))
    for name in await _original_tables(conn):
        await conn.execute(text(f"ALTER TABLE {name} SET SCHEMA {ARCHIVE}"))


async def copy_rows(conn: AsyncConnection) -> dict[str, int]:
    """Convert the archived rows into our (new, empty) tables; returns rows per table of ours."""
    archived = await _tables(conn, f"'{ARCHIVE}'")
    src = f"{ARCHIVE}."
    has_outbox = "cs_platform_event_outbox" in archived
    outbox_platform = (
        f"(SELECT o.platform FROM {src}cs_platform_event_outbox o WHERE o.session_id = s.id "
        "ORDER BY o.created_at LIMIT 1)"
        if has_outbox
        else "NULL"
    )
    await conn.execute(
        text(
            "INSERT INTO cs_sessions (id, channel, open_id, user_id, platform, status, low_confidence_streak,"
            " created_at, updated_at, last_message_at, closed_at, close_reason) "
            "SELECT s.id, s.channel, s.open_id, s.user_id, "
            f" COALESCE({outbox_platform},"
            f"          CASE WHEN s.channel IN {_in(PLATFORM_CHANNELS)} THEN s.channel END),"
            " CASE WHEN s.status = 'closed' OR s.rank > 1 THEN 'closed'"
            "      WHEN s.status = 'processing' THEN 'idle' ELSE s.status END,"
            " 0, s.created_at, s.updated_at, s.last_message_at,"
            " CASE WHEN s.status = 'closed' OR s.rank > 1 THEN s.updated_at END,"
            " CASE WHEN s.status = 'closed' THEN 'migrated' WHEN s.rank > 1 THEN 'superseded' END "
            f"FROM ({_SESSIONS_RANKED.format(src=src)}) s"
        )
    )
    # a conversation belongs to its source (migration 0010): a platform's session is keyed by it
    await conn.execute(text("UPDATE cs_sessions SET source = platform WHERE platform IS NOT NULL"))
    if "cs_messages" in archived:
        await conn.execute(
            text(
                "INSERT INTO cs_messages (id, session_id, direction, author_type, author_id, content,"
                " content_type, truncated, intent, confidence, decision, latency_ms, created_at) "
                "SELECT m.id, m.session_id,"
                " CASE m.direction WHEN 'in' THEN 'inbound' ELSE 'outbound' END,"
                " CASE m.direction WHEN 'in' THEN 'customer' ELSE 'bot' END,"
                " CASE m.direction WHEN 'in' THEN left(s.open_id, 64) END,"
                " m.content, m.content_type, false, m.intent, m.confidence::float8,"
                " CASE WHEN m.model_provider IS NOT NULL"
                "      THEN jsonb_build_object('model_provider', m.model_provider) END,"
                " m.latency_ms, m.created_at "
                f"FROM {src}cs_messages m JOIN {src}cs_sessions s ON s.id = m.session_id"
            )
        )
    if "cs_tickets" in archived:
        await _copy_tickets(conn, src, has_audit="cs_audit_logs" in archived)
    if "cs_audit_logs" in archived:
        await conn.execute(
            text(
                "INSERT INTO cs_audit_logs (id, tenant_id, object_type, object_id, action, actor_type,"
                " actor_id, before_state, after_state, source_ip, details, created_at) "
                "SELECT a.id, a.tenant_id, a.object_type, a.object_id, a.action,"
                " CASE WHEN a.actor_id = 'system' THEN 'system'"
                "      WHEN a.object_type = 'message_processed' THEN 'customer' ELSE 'gateway' END,"
                " a.actor_id, a.before_state, a.after_state, a.source_ip,"
                " jsonb_build_object('migrated_from', 'original'), a.created_at "
                f"FROM {src}cs_audit_logs a"
            )
        )
    if "cs_message_dedup" in archived:
        await conn.execute(
            text(
                "INSERT INTO cs_message_dedup (id, source, channel, message_id, session_id, response,"
                f" created_at) SELECT gen_random_uuid(), d.source, d.channel, d.message_id, d.session_id,"
                f" d.response, d.created_at FROM ({_dedup_select(src, archived)}) d"
            ),
            {"fallback": DUPLICATE_REPLY},
        )
    if has_outbox:
        await _copy_outbox(conn, src, archived)
    return await _check_counts(conn, archived)


# --- the pieces -----------------------------------------------------------------------------------

# the newest non-closed session of a customer keeps its state; older open ones (the original had no
# unique constraint) rank > 1 and are closed
_SESSIONS_RANKED = (
    "SELECT x.*, CASE WHEN x.status <> 'closed' THEN row_number() OVER ("
    " PARTITION BY x.channel, x.open_id, x.status <> 'closed'"
    " ORDER BY x.updated_at DESC, x.created_at DESC, x.id) ELSE 1 END AS rank "
    "FROM {src}cs_sessions x"
)
# likewise the newest active ticket of a session (ours allow one)
_TICKETS_RANKED = (
    f"SELECT x.*, CASE WHEN x.status IN {ACTIVE_TICKET} THEN row_number() OVER ("
    f" PARTITION BY x.session_id, x.status IN {ACTIVE_TICKET}"
    " ORDER BY x.created_at DESC, x.id) ELSE 1 END AS rank "
    "FROM {src}cs_tickets x"
)


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


async def _count(conn: AsyncConnection, sql: str, **params: object) -> int:
    return int((await conn.execute(text(sql), params)).scalar_one())


async def _original_tables(conn: AsyncConnection) -> list[str]:
    present = await _tables(conn)
    return [name for name in ORIGINAL_TABLES if name in present]


async def _assignees(conn: AsyncConnection, src: str) -> list[str]:
    tables = await _tables(conn, f"'{ARCHIVE}'" if src else "current_schema()")
    if "cs_tickets" not in tables:
        return []
    rows = await conn.execute(
        text(
            f"SELECT DISTINCT btrim(assigned_to) FROM {src}cs_tickets "
            "WHERE btrim(coalesce(assigned_to, '')) <> '' ORDER BY 1"
        )
    )
    return list(rows.scalars())


async def _copy_tickets(conn: AsyncConnection, src: str, *, has_audit: bool) -> None:
    """External principals for every ``assigned_to``, then the tickets pointing at them."""
    now = datetime.now(UTC)
    await conn.execute(
        text(
            "CREATE TEMPORARY TABLE cs_adopt_assignees (name TEXT PRIMARY KEY, principal_id UUID)"
            " ON COMMIT DROP"
        )
    )
    for name in await _assignees(conn, src):
        identity = gateway_identity(name)
        pid, principal_name = identity if identity is not None else (uuid.uuid4(), name[:64])
        await conn.execute(
            text(
                "INSERT INTO cs_principals (id, name, role, token_hash, token_prefix, active, available,"
                " capacity, created_at) VALUES (:id, :name, 'agent', :hash, 'gateway', true, true, 5, :now)"
            ),
            {"id": pid, "name": principal_name, "hash": hash_token(generate_token()), "now": now},
        )
        await conn.execute(
            text("INSERT INTO cs_adopt_assignees (name, principal_id) VALUES (:name, :id)"),
            {"name": name, "id": pid},
        )
    first_assigned = (
        f"(SELECT min(a.created_at) FROM {src}cs_audit_logs a WHERE a.object_type = 'ticket'"
        " AND a.object_id = t.id::text AND a.action = 'assign')"
        if has_audit
        else "NULL"
    )
    await conn.execute(
        text(
            "INSERT INTO cs_tickets (id, session_id, channel, open_id, status, priority, reason, subject,"
            " context, assignee_id, resolution, version, created_at, updated_at, first_assigned_at,"
            " resolved_at, closed_at) "
            "SELECT t.id, t.session_id, s.channel, s.open_id,"
            " CASE WHEN t.rank > 1 THEN 'closed' ELSE t.status END,"
            " CASE t.priority WHEN 'P0' THEN 'P1' ELSE t.priority END,"
            " left(t.handoff_reason, 64),"
            " left(coalesce(t.context_snapshot->>'last_message', t.context_snapshot->>'content',"
            "      t.context_snapshot->>'message', t.handoff_reason), 200),"
            " (CASE WHEN jsonb_typeof(t.context_snapshot) = 'object' THEN t.context_snapshot"
            "       ELSE jsonb_build_object('snapshot', t.context_snapshot) END)"
            " || jsonb_build_object('original', jsonb_strip_nulls(jsonb_build_object("
            "      'priority', t.priority, 'status', t.status, 'assigned_to', t.assigned_to,"
            "      'user_id', t.user_id))),"
            " m.principal_id,"
            f" CASE WHEN t.rank > 1 THEN coalesce(t.resolution, :superseded) ELSE t.resolution END,"
            " 1, t.created_at, t.updated_at,"
            f" CASE WHEN m.principal_id IS NOT NULL THEN coalesce({first_assigned}, t.updated_at) END,"
            " t.resolved_at,"
            " CASE WHEN t.status = 'closed' OR t.rank > 1 THEN t.updated_at END "
            f"FROM ({_TICKETS_RANKED.format(src=src)}) t JOIN {src}cs_sessions s ON s.id = t.session_id"
            " LEFT JOIN cs_adopt_assignees m ON m.name = btrim(t.assigned_to)"
        ),
        {"superseded": SUPERSEDED_RESOLUTION},
    )


def _dedup_select(src: str, archived: set[str] | None = None) -> str:
    """One row per dedup record with the response a retry will get: the original reply, read from the
    original's ``message_processed`` audit row that followed the record (same session, before the
    session's next record), else :data:`DUPLICATE_REPLY`. The source is the platform whose outbox
    event names the message (a platform's messages are deduplicated per platform), else ''."""
    has_outbox = archived is None or "cs_platform_event_outbox" in archived
    platform = (
        f"(SELECT o.platform FROM {src}cs_platform_event_outbox o WHERE o.source_message_id = d.message_id"
        " AND o.session_id IS NOT DISTINCT FROM d.session_id ORDER BY o.created_at LIMIT 1)"
        if has_outbox
        else "NULL"
    )
    return (
        "SELECT d.channel, d.message_id, d.session_id, d.created_at,"
        f" COALESCE({platform}, CASE WHEN d.channel IN {_in(PLATFORM_CHANNELS)} THEN d.channel ELSE '' END)"
        " AS source,"
        " jsonb_build_object('received', true, 'session_id', coalesce(d.session_id::text, ''),"
        "   'message_id', '', 'reply', coalesce(a.after_state->>'reply', :fallback),"
        "   'intent', coalesce(a.after_state->>'intent', ''), 'confidence', 0.0,"
        "   'handoff', coalesce(a.after_state->>'ticket_id', '') <> '',"
        "   'ticket_id', coalesce(a.after_state->>'ticket_id', ''), 'citations', '[]'::jsonb,"
        "   'duplicate', false)"
        " || CASE WHEN s.open_id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('_open_id', s.open_id) END"
        " AS response "
        "FROM (SELECT x.*, lead(x.created_at) OVER (PARTITION BY x.session_id ORDER BY x.created_at)"
        f"      AS next_at FROM {src}cs_message_dedup x) d"
        f" LEFT JOIN {src}cs_sessions s ON s.id = d.session_id"
        " LEFT JOIN LATERAL (SELECT l.after_state FROM "
        f"   {src}cs_audit_logs l WHERE l.object_type = 'message_processed'"
        "   AND l.object_id = d.session_id::text AND l.created_at >= d.created_at"
        "   AND (d.next_at IS NULL OR l.created_at < d.next_at)"
        "   AND jsonb_typeof(l.after_state) = 'object'"
        "   ORDER BY l.created_at LIMIT 1) a ON true"
    )


async def _copy_outbox(conn: AsyncConnection, src: str, archived: set[str]) -> None:
    """Events in the original's order (our ``seq`` orders delivery); attempts renumbered per event."""
    dead = "cs_platform_event_dead_letters" in archived
    attempts = "cs_platform_event_delivery_attempts" in archived
    last_status = (
        f"(SELECT a.response_status FROM {src}cs_platform_event_delivery_attempts a"
        " WHERE a.event_id = o.id ORDER BY a.created_at DESC, a.attempt_no DESC LIMIT 1)"
        if attempts
        else "NULL"
    )
    await conn.execute(
        text(
            "INSERT INTO cs_platform_outbox (id, destination, type, session_id, ticket_id, source_message_id,"
            " payload, status, attempts, replays, next_attempt_at, last_status, last_error, created_at,"
            " updated_at, delivered_at) "
            "SELECT o.id, o.platform, o.event_type, o.session_id, o.ticket_id, o.source_message_id,"
            " o.payload,"
            " CASE o.status WHEN 'delivered' THEN 'delivered' WHEN 'dead_letter' THEN 'dead'"
            "      ELSE 'pending' END,"
            f" o.attempt_count, 0, o.next_attempt_at, {last_status},"
            f" left({'coalesce(dl.final_error, o.last_error)' if dead else 'o.last_error'}, 200),"
            " o.occurred_at, o.updated_at, o.delivered_at "
            f"FROM {src}cs_platform_event_outbox o"
            + (f" LEFT JOIN {src}cs_platform_event_dead_letters dl ON dl.event_id = o.id" if dead else "")
            + " ORDER BY o.created_at, o.occurred_at, o.id"
        )
    )
    if attempts:
        await conn.execute(
            text(
                "INSERT INTO cs_platform_outbox_attempts (id, event_id, round, attempt, worker, status_code,"
                " error, duration_ms, response_excerpt, outcome, created_at) "
                "SELECT a.id, a.event_id, 0,"
                " row_number() OVER (PARTITION BY a.event_id ORDER BY a.created_at, a.attempt_no),"
                " 'original', a.response_status, left(a.error_message, 64), 0, left(a.response_body, 2048),"
                " CASE WHEN a.response_status BETWEEN 200 AND 299 THEN 'delivered' ELSE 'retry' END,"
                f" a.created_at FROM {src}cs_platform_event_delivery_attempts a"
            )
        )


_COUNTED = {  # ours <- the original's
    "cs_sessions": "cs_sessions",
    "cs_messages": "cs_messages",
    "cs_tickets": "cs_tickets",
    "cs_audit_logs": "cs_audit_logs",
    "cs_message_dedup": "cs_message_dedup",
    "cs_platform_outbox": "cs_platform_event_outbox",
    "cs_platform_outbox_attempts": "cs_platform_event_delivery_attempts",
}


async def _check_counts(conn: AsyncConnection, archived: set[str]) -> dict[str, int]:
    """Every row of the original arrived (else the whole adoption rolls back)."""
    counts: dict[str, int] = {}
    for ours, theirs in _COUNTED.items():
        counts[ours] = await _count(conn, f"SELECT count(*) FROM {ours}")
        expected = await _count(conn, f"SELECT count(*) FROM {ARCHIVE}.{theirs}") if theirs in archived else 0
        if counts[ours] != expected:
            raise AdoptionError(
                f"{ours} got {counts[ours]} rows of the original's {expected}; nothing changed"
            )
    counts["cs_principals"] = await _count(conn, "SELECT count(*) FROM cs_principals")
    return counts
