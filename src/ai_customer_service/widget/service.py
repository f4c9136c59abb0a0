"""Widget use cases: sites (create, list, revoke), visitors (start or resume), messages through the
webhook's ingest pipeline, history, CSAT, and the database-enforced per-site rate limits.

A widget customer is the session customer ``("widget", open_id)`` where ``open_id`` is
``w:<site key>:v:<visitor id>`` (anonymous) or ``w:<site key>:u:<user id>`` (a user the host site
vouched for), so every rule of the signed webhook applies unchanged: one open session per customer,
exactly-once by message id, per-customer rate limit, rules, knowledge base, handoff, tickets, audit,
outbox and live events.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.audit import repository as audit
from ai_customer_service.auth.models import Principal
from ai_customer_service.config import Settings
from ai_customer_service.conversation import service as conversations
from ai_customer_service.conversation.models import Message, Session
from ai_customer_service.conversation.sources import widget_source
from ai_customer_service.conversation.states import AuthorType, SessionStatus
from ai_customer_service.db.engine import Database
from ai_customer_service.db.statements import increment_counter, insert_ignore
from ai_customer_service.dialog import replies
from ai_customer_service.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited, Unauthenticated
from ai_customer_service.values import parse_uuid, unstorable_reason
from ai_customer_service.webhook.schemas import InboundMessage
from ai_customer_service.webhook.service import IngestService
from ai_customer_service.widget import tokens
from ai_customer_service.widget.models import WidgetCounter, WidgetKey, WidgetSite

CHANNEL = "widget"
KEY_PREFIX = "ws_"
DEMO_SITE_NAME = "demo"
DEMO_SITE_KEY = "ws_demo"
HISTORY_LIMIT = 100
MAX_CLIENT_MESSAGE_ID = 64
MAX_USER_ID = 64
RATE_WINDOW_SECONDS = 60
COUNTER_RETENTION = timedelta(hours=1)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_USER_ID_RE = re.compile(r"^[\x21-\x7e]{1,64}$")  # printable ASCII, no spaces
_SUGGESTION_HEADERS = {replies.text(lang, "suggestions") for lang in ("en", "zh")}


@dataclass(frozen=True)
class Site:
    """A site as the request path sees it (a detached snapshot of the row)."""

    id: uuid.UUID
    name: str
    public_key: str
    origins: tuple[str, ...]
    identity_secret: str | None
    rate_limit_messages: int
    rate_limit_visitors: int
    active: bool
    created_at: datetime

    def view(self) -> dict[str, Any]:
        """For the operator (CLI): never the identity secret itself."""
        return {
            "id": str(self.id),
            "name": self.name,
            "public_key": self.public_key,
            "origins": list(self.origins),
            "identity_verification": self.identity_secret is not None,
            "rate_limit_messages": self.rate_limit_messages,
            "rate_limit_visitors": self.rate_limit_visitors,
            "active": self.active,
            "created_at": self.created_at.isoformat(),
        }


def _site(row: WidgetSite) -> Site:
    return Site(
        id=row.id,
        name=row.name,
        public_key=row.public_key,
        origins=tuple(row.origins),
        identity_secret=row.identity_secret,
        rate_limit_messages=row.rate_limit_messages,
        rate_limit_visitors=row.rate_limit_visitors,
        active=row.active,
        created_at=row.created_at,
    )


def normalize_origin(raw: str) -> str:
    """``scheme://host[:port]`` in lower case, default ports dropped; ValueError when not an origin."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) origin: {raw!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an origin has no path, query or user: {raw!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def customer_open_id(site: Site, visitor: tokens.Visitor) -> str:
    return f"w:{site.public_key}:{visitor.kind}:{visitor.subject}"


# ---------------------------------------------------------------------------------------------------
# sites (operator: CLI)


async def create_site(
    db: Database,
    *,
    name: str,
    origins: list[str],
    identity_secret: str | None = None,
    rate_limit_messages: int = 600,
    rate_limit_visitors: int = 120,
    public_key: str | None = None,
) -> Site:
    name = name.strip()
    if not _NAME_RE.match(name):
        raise BadRequest("site name: 1-64 letters, digits, space, '.', '_' or '-'", "CS_REQ_4001")
    if not origins:
        raise BadRequest("a site needs at least one allowed origin (--origin https://...)", "CS_REQ_4001")
    try:
        allowed = sorted({normalize_origin(o) for o in origins})
    except ValueError as exc:
        raise BadRequest(str(exc), "CS_REQ_4001") from exc
    if identity_secret is not None and len(identity_secret.strip()) < 16:
        raise BadRequest("the identity secret must have at least 16 characters", "CS_REQ_4001")
    if rate_limit_messages < 0 or rate_limit_visitors < 0:
        raise BadRequest("rate limits must be 0 (unlimited) or positive", "CS_REQ_4001")
    row = WidgetSite(
        id=uuid.uuid4(),
        name=name,
        public_key=public_key or KEY_PREFIX + secrets.token_urlsafe(18),
        origins=allowed,
        identity_secret=identity_secret.strip() if identity_secret else None,
        rate_limit_messages=rate_limit_messages,
        rate_limit_visitors=rate_limit_visitors,
        active=True,
        created_at=datetime.now(UTC),
    )
    try:
        async with db.transaction() as tx:
            tx.add(row)
            await tx.flush()
            _audit_site(tx, row, "create", after="active", details={"name": name, "origins": allowed})
    except IntegrityError as exc:
        raise Conflict(f"a site named {name!r} already exists", "CS_WGT_4091") from exc
    return _site(row)


def _audit_site(
    tx: AsyncSession,
    row: WidgetSite,
    action: str,
    *,
    after: str,
    before: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """The audit row of a site change (made with the ``widget sites`` command: actor ``cli``)."""
    audit.record(
        tx,
        object_type="widget_site",
        object_id=row.id,
        action=action,
        actor_type="system",
        actor_id="cli",
        before_state=before,
        after_state=after,
        details=details,
    )


async def list_sites(db: Database) -> list[Site]:
    async with db.reader() as tx:
        rows = (await tx.execute(select(WidgetSite).order_by(WidgetSite.created_at))).scalars()
        return [_site(r) for r in rows]


async def revoke_site(db: Database, key_or_name: str) -> Site:
    async with db.transaction() as tx:
        row = (
            await tx.execute(
                select(WidgetSite)
                .where((WidgetSite.public_key == key_or_name) | (WidgetSite.name == key_or_name))
                .with_for_update()
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound("no site with that key or name", "CS_WGT_4041")
        if not row.active:
            raise Conflict("the site is already revoked", "CS_WGT_4092")
        row.active = False
        row.revoked_at = datetime.now(UTC)
        _audit_site(tx, row, "revoke", before="active", after="revoked")
        return _site(row)


async def ensure_demo_site(db: Database, origins: list[str]) -> Site:
    """Development only: the ``demo`` site (key ``ws_demo``) for ``/demo/``, its origins kept current."""
    allowed = sorted({normalize_origin(o) for o in origins})
    async with db.transaction() as tx:
        row = (
            await tx.execute(select(WidgetSite).where(WidgetSite.public_key == DEMO_SITE_KEY))
        ).scalar_one_or_none()
        if row is not None:
            if row.active and sorted(row.origins) != allowed:
                row.origins = sorted(set(row.origins) | set(allowed))
            return _site(row)
    try:
        return await create_site(db, name=DEMO_SITE_NAME, origins=allowed, public_key=DEMO_SITE_KEY)
    except Conflict:  # another process created it meanwhile
        async with db.reader() as tx:
            found = (
                await tx.execute(select(WidgetSite).where(WidgetSite.public_key == DEMO_SITE_KEY))
            ).scalar_one()
            return _site(found)


# ---------------------------------------------------------------------------------------------------
# the visitor-facing service


async def _agent_names(tx: AsyncSession, messages: list[Message]) -> dict[str, str]:
    """The display names of the agents who wrote ``messages`` (their principal names)."""
    ids = {parse_uuid(m.author_id or "") for m in messages if m.author_type == AuthorType.AGENT.value}
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = await tx.execute(select(Principal.id, Principal.name).where(Principal.id.in_(wanted)))
    return {str(pid): name for pid, name in rows.all()}


def _message_view(message: Message, names: dict[str, str] | None = None) -> dict[str, Any]:
    author = {
        AuthorType.CUSTOMER.value: "customer",
        AuthorType.BOT.value: "bot",
        AuthorType.AGENT.value: "agent",
    }.get(message.author_type, "system")
    return message_payload(
        message_id=str(message.id),
        author=author,
        content=message.content,
        citations=message.citations or [],
        created_at=message.created_at.isoformat(),
        session_id=str(message.session_id),
        author_name=(names or {}).get(message.author_id or "") if author == "agent" else None,
    )


def message_payload(
    *,
    message_id: str,
    author: str,
    content: str,
    citations: list[dict[str, Any]] | None = None,
    created_at: str | None = None,
    session_id: str | None = None,
    author_name: str | None = None,
) -> dict[str, Any]:
    """What a visitor sees of a message: never intents, scores, decisions or internal ids."""
    text, choices = split_choices(content) if author == "bot" else (content, [])
    return {
        "id": message_id,
        "session_id": session_id,
        "author": author,
        "author_name": author_name,
        "content": text,
        "citations": [
            {"id": str(c.get("id", "")), "title": str(c.get("title", ""))}
            for c in (citations or [])
            if isinstance(c, dict)
        ],
        "choices": choices,
        "created_at": created_at,
    }


def split_choices(content: str) -> tuple[str, list[str]]:
    """A clarifying reply's "did you mean" titles (``- title`` lines after the suggestions header)
    as choices, and the text without them."""
    lines = content.split("\n")
    kept: list[str] = []
    choices: list[str] = []
    in_list = False
    for line in lines:
        if line.strip() in _SUGGESTION_HEADERS:
            in_list = True
            kept.append(line)
            continue
        if in_list and line.startswith("- "):
            choices.append(line[2:].strip())
            continue
        in_list = False
        kept.append(line)
    return "\n".join(kept), choices


class WidgetService:
    def __init__(self, *, db: Database, settings: Settings, ingest: IngestService) -> None:
        self.db = db
        self.settings = settings
        self.ingest = ingest
        secret = settings.widget_token_secret
        self._key: bytes | None = secret.encode("utf-8") if secret else None

    # -- sites and tokens --------------------------------------------------------------------------

    async def site(self, public_key: str) -> Site:
        """The active site with this key: 404 ``CS_WGT_4041`` unknown, 403 ``CS_WGT_4031`` revoked."""
        if not public_key or len(public_key) > 40:
            raise NotFound("unknown site key", "CS_WGT_4041")
        async with self.db.reader() as tx:
            row = (
                await tx.execute(select(WidgetSite).where(WidgetSite.public_key == public_key))
            ).scalar_one_or_none()
        if row is None:
            raise NotFound("unknown site key", "CS_WGT_4041")
        if not row.active:
            raise Forbidden("this site key has been revoked", "CS_WGT_4031")
        return _site(row)

    async def token_key(self) -> bytes:
        """``AI_CS_WIDGET_TOKEN_SECRET``, else one random key stored in the database (the first
        process creates it; every replica reads the same row)."""
        if self._key is None:
            async with self.db.transaction() as tx:
                await insert_ignore(
                    tx,
                    WidgetKey.__table__,  # type: ignore[arg-type]
                    {"id": 1, "secret": secrets.token_urlsafe(48), "created_at": datetime.now(UTC)},
                    index_elements=["id"],
                )
            async with self.db.reader() as tx:
                secret = (await tx.execute(select(WidgetKey.secret).where(WidgetKey.id == 1))).scalar_one()
            self._key = secret.encode("utf-8")
        return self._key

    async def visitor(self, site: Site, token: str | None) -> tokens.Visitor:
        if not token:
            raise Unauthenticated("the visitor token is missing (X-CS-Visitor-Token)", "CS_WGT_4011")
        try:
            visitor = tokens.verify(await self.token_key(), token)
        except tokens.TokenError as exc:
            raise Forbidden("the visitor token is invalid", "CS_WGT_4033") from exc
        if visitor.site_id != str(site.id):
            raise Forbidden("the visitor token belongs to another site", "CS_WGT_4034")
        return visitor

    async def _limit(self, key: str, limit: int, code: str, what: str) -> None:
        """Count one request against ``key``'s fixed one-minute window; 429 over ``limit``."""
        if limit <= 0:
            return
        now = datetime.now(UTC)
        start = now.replace(second=0, microsecond=0)
        async with self.db.transaction() as tx:
            count = await increment_counter(
                tx,
                WidgetCounter.__table__,  # type: ignore[arg-type]
                {"id": uuid.uuid4(), "key": key, "window_start": start},
                index_elements=["key", "window_start"],
            )
        if count > limit:
            wait = max(1, int((start + timedelta(seconds=RATE_WINDOW_SECONDS) - now).total_seconds() + 0.999))
            raise RateLimited(
                f"{what} rate limit of this site exceeded", code, headers={"Retry-After": str(wait)}
            )

    async def purge_counters(self) -> int:
        async with self.db.transaction() as tx:
            result = await tx.execute(
                delete(WidgetCounter).where(
                    WidgetCounter.window_start < datetime.now(UTC) - COUNTER_RETENTION
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # -- use cases ---------------------------------------------------------------------------------

    async def start(
        self, site: Site, *, token: str | None, user_id: str | None, user_hash: str | None
    ) -> dict[str, Any]:
        """Resume the visitor of ``token`` (or the verified user), or welcome a new visitor."""
        key = await self.token_key()
        visitor: tokens.Visitor | None = None
        if user_id is not None or user_hash is not None:
            visitor = self._identified(site, user_id or "", user_hash or "")
        elif token:
            visitor = await self.visitor(site, token)
        else:
            await self._limit(
                f"site:{site.id}:visitors", site.rate_limit_visitors, "CS_WGT_4291", "new-visitor"
            )
            visitor = tokens.Visitor(site_id=str(site.id), visitor_id=tokens.new_visitor_id())
        history = await self.history(site, visitor)
        return {"visitor_token": tokens.issue(key, visitor), "site": {"name": site.name}, **history}

    def _identified(self, site: Site, user_id: str, user_hash: str) -> tokens.Visitor:
        if site.identity_secret is None:
            raise Forbidden("this site does not verify user identities", "CS_WGT_4035")
        if not _USER_ID_RE.match(user_id) or not user_hash:
            raise Forbidden("user_id and user_hash are required to identify a user", "CS_WGT_4035")
        if not tokens.user_hash_matches(site.identity_secret, user_id, user_hash):
            raise Forbidden("user_hash does not match user_id", "CS_WGT_4035")
        return tokens.Visitor(site_id=str(site.id), user_id=user_id)

    async def history(self, site: Site, visitor: tokens.Visitor) -> dict[str, Any]:
        """The customer's latest messages over all their sessions, oldest first, and the current session."""
        open_id = customer_open_id(site, visitor)
        async with self.db.reader() as tx:
            sessions = (
                (
                    await tx.execute(
                        select(Session)
                        .where(
                            Session.channel == CHANNEL,
                            Session.open_id == open_id,
                            Session.source == widget_source(site.public_key),
                        )
                        .order_by(Session.created_at.desc())
                        .limit(20)
                    )
                )
                .scalars()
                .all()
            )
            latest = sessions[0] if sessions else None
            messages: list[Message] = []
            if sessions:
                messages = list(
                    (
                        await tx.execute(
                            select(Message)
                            .where(Message.session_id.in_([s.id for s in sessions]))
                            .order_by(Message.created_at.desc(), Message.id.desc())
                            .limit(HISTORY_LIMIT)
                        )
                    ).scalars()
                )
            names = await _agent_names(tx, messages)
        messages.reverse()
        return {
            "session": _session_view(latest),
            "messages": [_message_view(m, names) for m in messages],
        }

    async def owned_session(self, site: Site, visitor: tokens.Visitor, raw_session_id: str) -> uuid.UUID:
        """The session id if it is this visitor's; 404 ``CS_WGT_4042`` otherwise (whoever's it is)."""
        session_id = parse_uuid(raw_session_id or "")
        if session_id is None:
            raise NotFound("conversation not found", "CS_WGT_4042")
        async with self.db.reader() as tx:
            session = await tx.get(Session, session_id)
        if (
            session is None
            or session.channel != CHANNEL
            or session.open_id != customer_open_id(site, visitor)
            or session.source != widget_source(site.public_key)
        ):
            raise NotFound("conversation not found", "CS_WGT_4042")
        return session_id

    async def send(
        self,
        site: Site,
        visitor: tokens.Visitor,
        *,
        client_message_id: str,
        content: str,
        request_id: str,
    ) -> dict[str, Any]:
        """One visitor message through the webhook's ingest pipeline, exactly once per client id."""
        if not _CLIENT_ID_RE.match(client_message_id or ""):
            raise BadRequest(
                "client_message_id: 1-64 characters of letters, digits, '.', '_', ':' or '-'",
                "CS_REQ_4001",
                details=[{"field": "client_message_id", "message": "invalid"}],
            )
        text = (content or "").strip()
        if not text:
            raise BadRequest(
                "content is required", "CS_REQ_4002", details=[{"field": "content", "message": "required"}]
            )
        if len(text) > self.settings.max_content_chars:
            raise BadRequest(
                f"a message is at most {self.settings.max_content_chars} characters",
                "CS_WGT_4001",
                details=[
                    {"field": "content", "message": f"at most {self.settings.max_content_chars} characters"}
                ],
            )
        reason = unstorable_reason(text)
        if reason is not None:
            raise BadRequest(
                f"content {reason}", "CS_REQ_4001", details=[{"field": "content", "message": reason}]
            )
        open_id = customer_open_id(site, visitor)
        await self._limit(f"site:{site.id}:messages", site.rate_limit_messages, "CS_WGT_4291", "message")
        digest = hashlib.sha256(open_id.encode("utf-8")).hexdigest()[:24]
        message = InboundMessage(
            channel=CHANNEL,
            open_id=open_id,
            content=text,
            content_type="text",
            message_id=f"w:{digest}:{client_message_id}",
            user_id=visitor.user_id,
            sent_at=None,
            reply_to=None,
            truncated=False,
            original_length=len(text),
        )
        source = widget_source(site.public_key)
        result = await self.ingest.ingest(message, source=source, request_id=request_id)
        response = result.response
        inbound_id = uuid.UUID(response["message_id"])
        async with self.db.reader() as tx:
            rows = (
                (
                    await tx.execute(
                        select(Message)
                        .where(
                            Message.session_id == uuid.UUID(response["session_id"]),
                            (Message.id == inbound_id) | (Message.reply_to == str(inbound_id)),
                        )
                        .order_by(Message.created_at, Message.id)
                    )
                )
                .scalars()
                .all()
            )
            session = await tx.get(Session, uuid.UUID(response["session_id"]))
        return {
            "duplicate": result.duplicate,
            "handoff": bool(response.get("handoff")),
            "session": _session_view(session),
            "messages": [_message_view(m) for m in rows],
        }

    async def feedback(
        self,
        site: Site,
        visitor: tokens.Visitor,
        *,
        session_id: str,
        score: int,
        comment: str | None,
        request_id: str,
    ) -> dict[str, Any]:
        owned = await self.owned_session(site, visitor, session_id)
        stored = await conversations.feedback(
            self.ingest.store, owned, score=score, comment=comment, request_id=request_id
        )
        return {"session_id": stored["session_id"], "score": stored["score"], "comment": stored["comment"]}


def _session_view(session: Session | None) -> dict[str, Any] | None:
    if session is None:
        return None
    return {
        "id": str(session.id),
        "status": session.status,
        "with_agent": session.status == SessionStatus.HANDOFF.value,
        "closed": session.status == SessionStatus.CLOSED.value,
    }


# ---------------------------------------------------------------------------------------------------
# the live stream: what a visitor may see of their session's live events


def visitor_event(
    event_type: str, data: dict[str, Any], created_at: str
) -> tuple[str, dict[str, Any]] | None:
    """A live event as the widget's SSE event ``(name, data)``, or None when visitors do not see it.

    Only the conversation's own words and a few state changes pass; intents, scores, decisions,
    agent ids, open ids and ticket internals never reach the browser.
    """
    if event_type == "message.received":
        return "message", message_payload(
            message_id=str(data.get("message_id", "")),
            author="customer",
            content=str(data.get("content", "")),
            created_at=created_at,
        )
    if event_type == "reply.generated":
        return "message", message_payload(
            message_id=str(data.get("message_id", "")),
            author="bot",
            content=str(data.get("reply", "")),
            citations=data.get("citations") or [],
            created_at=created_at,
        )
    if event_type == "agent.replied":
        return "message", message_payload(
            message_id=str(data.get("message_id", "")),
            author="agent",
            content=str(data.get("content", "")),
            author_name=str(data["agent_name"]) if data.get("agent_name") else None,
            created_at=created_at,
        )
    if event_type == "ticket.assigned":
        return "agent_joined", {}
    if event_type == "handoff.triggered":
        return "handoff", {}
    if event_type in ("ticket.resolved", "ticket.closed", "ticket.reopened"):
        return "status", {"status": str(data.get("status", ""))}
    if event_type == TYPING and data.get("author") == "agent":
        return "typing", {"active": bool(data.get("active"))}
    return None


TYPING = "typing"
