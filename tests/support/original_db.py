"""A PostgreSQL database in the original Go service's shape, written from
``shared/design/original-schema.md`` (its migrations 0001-0003, bookkeeping and rows as it wrote them).

:func:`create_original_schema` plays the original's migration runner; :func:`seed` writes the rows
the adoption tests read back: two sessions of one customer (the original had no unique constraint),
messages, a ticket assigned to ``li.lei``, audit rows in the original's shapes, dedup records and
outbox events (pending, retrying, delivered, dead letter).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

MIGRATIONS = {
    "0001_init": """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE IF NOT EXISTS cs_sessions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  channel VARCHAR(16) NOT NULL CONSTRAINT cs_sessions_channel_check
    CHECK (channel IN ('telegram', 'discord', 'wechat', 'widget')),
  open_id VARCHAR(128) NOT NULL,
  user_id VARCHAR(64),
  status VARCHAR(16) NOT NULL DEFAULT 'idle'
    CHECK (status IN ('idle', 'processing', 'waiting_feedback', 'handoff', 'closed')),
  turn_count INT NOT NULL DEFAULT 0,
  last_message_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_sessions_channel_openid ON cs_sessions (channel, open_id);
CREATE TABLE IF NOT EXISTS cs_messages (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id UUID NOT NULL REFERENCES cs_sessions(id) ON DELETE CASCADE,
  direction VARCHAR(8) NOT NULL CHECK (direction IN ('in', 'out')),
  content TEXT NOT NULL,
  content_type VARCHAR(16) NOT NULL DEFAULT 'text',
  intent VARCHAR(32),
  confidence NUMERIC(3,2),
  model_provider VARCHAR(32),
  latency_ms INT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_messages_session_id ON cs_messages (session_id, created_at DESC);
CREATE TABLE IF NOT EXISTS cs_tickets (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id UUID NOT NULL REFERENCES cs_sessions(id) ON DELETE CASCADE,
  user_id VARCHAR(64),
  priority VARCHAR(4) NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
  status VARCHAR(16) NOT NULL DEFAULT 'open'
    CHECK (status IN ('open', 'assigned', 'processing', 'resolved', 'closed')),
  handoff_reason VARCHAR(32) NOT NULL,
  assigned_to VARCHAR(64),
  context_snapshot JSONB NOT NULL DEFAULT '{}',
  resolution TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  resolved_at TIMESTAMPTZ,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_tickets_status_priority ON cs_tickets (status, priority, created_at);
CREATE TABLE IF NOT EXISTS cs_audit_logs (
  id UUID PRIMARY KEY,
  tenant_id VARCHAR(64) NOT NULL,
  object_type VARCHAR(32) NOT NULL,
  object_id VARCHAR(64) NOT NULL,
  action VARCHAR(16) NOT NULL,
  before_state JSONB,
  after_state JSONB,
  actor_id VARCHAR(64) NOT NULL,
  source_ip VARCHAR(45),
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_audit_object ON cs_audit_logs (object_type, object_id, created_at DESC);
CREATE TABLE IF NOT EXISTS cs_message_dedup (
  channel VARCHAR(16) NOT NULL,
  message_id VARCHAR(128) NOT NULL,
  session_id UUID REFERENCES cs_sessions(id) ON DELETE SET NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (channel, message_id)
);
""",
    "0002_platform_outbox": """
CREATE TABLE IF NOT EXISTS cs_platform_callbacks (
  platform VARCHAR(32) NOT NULL,
  target_name VARCHAR(64) NOT NULL,
  callback_url TEXT NOT NULL,
  callback_secret TEXT,
  is_active BOOLEAN NOT NULL DEFAULT TRUE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (platform, target_name)
);
CREATE TABLE IF NOT EXISTS cs_platform_event_outbox (
  id UUID PRIMARY KEY,
  platform VARCHAR(32) NOT NULL,
  event_type VARCHAR(64) NOT NULL,
  session_id UUID REFERENCES cs_sessions(id) ON DELETE SET NULL,
  ticket_id UUID REFERENCES cs_tickets(id) ON DELETE SET NULL,
  source_message_id VARCHAR(128),
  callback_target VARCHAR(64) NOT NULL,
  payload JSONB NOT NULL DEFAULT '{}',
  status VARCHAR(16) NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'retrying', 'delivered', 'dead_letter')),
  attempt_count INT NOT NULL DEFAULT 0,
  next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  occurred_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  delivered_at TIMESTAMPTZ,
  last_error TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_cs_platform_event_outbox_due
  ON cs_platform_event_outbox (status, next_attempt_at, created_at);
CREATE INDEX IF NOT EXISTS idx_cs_platform_event_outbox_platform
  ON cs_platform_event_outbox (platform, callback_target, created_at DESC);
CREATE TABLE IF NOT EXISTS cs_platform_event_delivery_attempts (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  event_id UUID NOT NULL REFERENCES cs_platform_event_outbox(id) ON DELETE CASCADE,
  attempt_no INT NOT NULL,
  response_status INT,
  response_body TEXT,
  error_message TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_cs_platform_event_delivery_attempts_event
  ON cs_platform_event_delivery_attempts (event_id, created_at DESC);
CREATE TABLE IF NOT EXISTS cs_platform_event_dead_letters (
  event_id UUID PRIMARY KEY REFERENCES cs_platform_event_outbox(id) ON DELETE CASCADE,
  platform VARCHAR(32) NOT NULL,
  event_type VARCHAR(64) NOT NULL,
  callback_target VARCHAR(64) NOT NULL,
  payload JSONB NOT NULL DEFAULT '{}',
  attempt_count INT NOT NULL DEFAULT 0,
  final_error TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
""",
    "0003_platform_channels": """
ALTER TABLE cs_sessions DROP CONSTRAINT IF EXISTS cs_sessions_channel_check;
ALTER TABLE cs_sessions ADD CONSTRAINT cs_sessions_channel_check
  CHECK (channel IN ('telegram', 'discord', 'wechat', 'widget', 'sub2api', 'newapi'));
""",
}


async def create_original_schema(dsn: str) -> None:
    """What the original's runner did at start-up: each file in its own transaction with its row."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS cs_schema_migrations ("
            " version VARCHAR(255) PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
        )
        for version, sql in MIGRATIONS.items():
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO cs_schema_migrations (version) VALUES ($1)", version)
    finally:
        await conn.close()


@dataclass
class Seeded:
    """The ids the tests read back."""

    session_id: uuid.UUID  # the customer's current session (handoff, with the open ticket)
    old_session_id: uuid.UUID  # an older, still 'idle' session of the same customer
    closed_session_id: uuid.UUID
    platform_session_id: uuid.UUID  # a platform's conversation (channel = the platform's name)
    ticket_id: uuid.UUID  # assigned to li.lei
    open_id: str = "cust-001"
    channel: str = "widget"
    processed_message_id: str = "wx-msg-0001"  # a message the original processed (with its reply)
    bare_message_id: str = "wx-msg-0000"  # processed, but no reply can be found for it
    reply: str = "您好，退款将在3个工作日内到账。"
    platform_message_id: str = "sub2api-msg-1"  # the platform's message the outbox events follow
    pending_event_ids: list[uuid.UUID] = field(default_factory=list)  # in their order
    dead_event_id: uuid.UUID | None = None
    delivered_event_id: uuid.UUID | None = None
    message_ids: list[uuid.UUID] = field(default_factory=list)


async def seed(dsn: str, *, platform: str = "sub2api") -> Seeded:
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(hours=2)
    ids = Seeded(
        session_id=uuid.uuid4(),
        old_session_id=uuid.uuid4(),
        closed_session_id=uuid.uuid4(),
        platform_session_id=uuid.uuid4(),
        ticket_id=uuid.uuid4(),
    )
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            sessions = [
                (ids.old_session_id, ids.channel, ids.open_id, "idle", t0, 2),
                (ids.closed_session_id, ids.channel, ids.open_id, "closed", t0 - timedelta(days=1), 1),
                (ids.session_id, ids.channel, ids.open_id, "handoff", t0 + timedelta(minutes=10), 3),
                (ids.platform_session_id, platform, "plat-user", "processing", t0, 1),
            ]
            for sid, channel, open_id, status, at, turns in sessions:
                await conn.execute(
                    "INSERT INTO cs_sessions (id, channel, open_id, user_id, status, turn_count,"
                    " last_message_at, created_at, updated_at) VALUES"
                    " ($1, $2, $3, 'u-1', $4, $5, $6, $6, $6)",
                    sid,
                    channel,
                    open_id,
                    status,
                    turns,
                    at,
                )
            # a conversation: the customer asks, the bot answers, the customer asks for a refund
            texts = [
                ("in", "怎么修改密码？", None, None, t0),
                ("out", "在“账号设置 → 安全”中修改密码。", "password-reset", 0.91, t0 + timedelta(seconds=1)),
                ("in", "我要退款", None, None, t0 + timedelta(minutes=10)),
                ("out", ids.reply, "refund", 0.88, t0 + timedelta(minutes=10, seconds=1)),
            ]
            for direction, content, intent, confidence, at in texts:
                mid = uuid.uuid4()
                ids.message_ids.append(mid)
                await conn.execute(
                    "INSERT INTO cs_messages (id, session_id, direction, content, intent, confidence,"
                    " model_provider, latency_ms, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    mid,
                    ids.session_id,
                    direction,
                    content,
                    intent,
                    confidence,
                    "offline" if direction == "out" else None,
                    12 if direction == "out" else None,
                    at,
                )
            await conn.execute(
                "INSERT INTO cs_tickets (id, session_id, user_id, priority, status, handoff_reason,"
                " assigned_to, context_snapshot, created_at, updated_at)"
                " VALUES ($1, $2, 'u-1', 'P1', 'assigned', 'refund', 'li.lei', $3, $4, $5)",
                ids.ticket_id,
                ids.session_id,
                json.dumps({"last_message": "我要退款", "intent": "refund"}),
                t0 + timedelta(minutes=10),
                t0 + timedelta(minutes=20),
            )
            # dedup records: recorded before processing, as the original did
            await conn.execute(
                "INSERT INTO cs_message_dedup (channel, message_id, session_id, created_at) VALUES"
                " ($1, $2, $3, $4), ($1, $5, $6, $7), ($8, $9, $10, $11)",
                ids.channel,
                ids.processed_message_id,
                ids.session_id,
                t0 + timedelta(minutes=10),
                ids.bare_message_id,
                ids.closed_session_id,
                t0 - timedelta(days=1),
                platform,
                ids.platform_message_id,
                ids.platform_session_id,
                t0 - timedelta(hours=1),
            )
            audit = [
                (
                    "message_processed",
                    str(ids.session_id),
                    "process",
                    ids.open_id,
                    {"intent": "refund", "reply": ids.reply, "ticket_id": str(ids.ticket_id)},
                    t0 + timedelta(minutes=10, seconds=1),
                ),
                (
                    "ticket",
                    str(ids.ticket_id),
                    "assign",
                    "zhang.wei",
                    {"assigned_to": "li.lei", "status": "assigned"},
                    t0 + timedelta(minutes=20),
                ),
                (
                    "ticket",
                    str(ids.ticket_id),
                    "assign",
                    "zhang.wei",
                    {"assigned_to": "li.lei", "status": "assigned"},
                    t0 + timedelta(minutes=20),
                ),  # the original wrote each transition twice
                (
                    "feedback",
                    str(ids.closed_session_id),
                    "submit",
                    "system",
                    {"score": 5, "comment": "好"},
                    t0 - timedelta(hours=20),
                ),
            ]
            for object_type, object_id, action, actor, after, at in audit:
                await conn.execute(
                    "INSERT INTO cs_audit_logs (id, tenant_id, object_type, object_id, action, before_state,"
                    " after_state, actor_id, source_ip, created_at)"
                    " VALUES ($1, 'default', $2, $3, $4, '{}', $5, $6, '10.0.0.7', $7)",
                    uuid.uuid4(),
                    object_type,
                    object_id,
                    action,
                    json.dumps(after, ensure_ascii=False),
                    actor,
                    at,
                )
            # the platform outbox: one delivered, two waiting (pending, retrying), one dead letter
            events = [
                ("delivered", "message.received", 0, t0),
                ("pending", "ticket.created", 0, t0 + timedelta(minutes=10)),
                ("retrying", "handoff.triggered", 2, t0 + timedelta(minutes=10, seconds=1)),
                ("dead_letter", "reply.generated", 9, t0 - timedelta(hours=1)),
            ]
            for status, event_type, attempts, at in events:
                eid = uuid.uuid4()
                if status in ("pending", "retrying"):
                    ids.pending_event_ids.append(eid)
                elif status == "dead_letter":
                    ids.dead_event_id = eid
                else:
                    ids.delivered_event_id = eid
                await conn.execute(
                    "INSERT INTO cs_platform_event_outbox (id, platform, event_type, session_id, ticket_id,"
                    " source_message_id, callback_target, payload, status, attempt_count, next_attempt_at,"
                    " occurred_at, delivered_at, last_error, created_at, updated_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, 'default', $7, $8, $9, $10, $10, $11, $12, $10, $10)",
                    eid,
                    platform,
                    event_type,
                    ids.platform_session_id,
                    None,
                    ids.platform_message_id,
                    json.dumps({"status": status, "note": "from the original"}),
                    status,
                    attempts,
                    at,
                    at if status == "delivered" else None,
                    "HTTP 502" if attempts else None,
                )
                for n in range(1, attempts + 1):
                    await conn.execute(
                        "INSERT INTO cs_platform_event_delivery_attempts (event_id, attempt_no,"
                        " response_status, response_body, error_message, created_at)"
                        " VALUES ($1, $2, 502, 'bad gateway', 'HTTP 502', $3)",
                        eid,
                        n,
                        at + timedelta(seconds=n),
                    )
                if status == "dead_letter":
                    await conn.execute(
                        "INSERT INTO cs_platform_event_dead_letters (event_id, platform, event_type,"
                        " callback_target, payload, attempt_count, final_error)"
                        " VALUES ($1, $2, $3, 'default', '{}', $4, 'HTTP 502 after 9 attempts')",
                        eid,
                        platform,
                        event_type,
                        attempts,
                    )
            await conn.execute(
                "INSERT INTO cs_platform_callbacks (platform, target_name, callback_url, callback_secret)"
                " VALUES ($1, 'default', 'http://old.example/cb', 'old-secret')",
                platform,
            )
    finally:
        await conn.close()
    return ids


async def snapshot(dsn: str) -> dict[str, object]:
    """Every table (any schema but the system's) with its row count, and cs_schema_migrations."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        )
        out: dict[str, object] = {}
        for row in tables:
            name = f'"{row["table_schema"]}"."{row["table_name"]}"'
            out[f"{row['table_schema']}.{row['table_name']}"] = await conn.fetchval(
                f"SELECT count(*) FROM {name}"
            )
        # in a stated order: revision numbers are assigned per branch, so the migration order (the rows'
        # physical order) need not be the numbers' order
        rows = await conn.fetch("SELECT version FROM cs_schema_migrations ORDER BY applied_at, version")
        out["versions"] = [r["version"] for r in rows]
        return out
    finally:
        await conn.close()
