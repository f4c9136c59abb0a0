"""The agent console over HTTP (in process): sign-in, CSRF, inbox, conversation actions, KB, views."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from ai_customer_service.audit.models import AuditLog
from ai_customer_service.auth.models import ConsoleSession, Principal, Role
from ai_customer_service.auth.service import revoke_principal
from ai_customer_service.auth.sign_in import set_password
from ai_customer_service.conversation.models import Message
from ai_customer_service.db.engine import Database
from ai_customer_service.ticket.states import Priority
from tests.support.console import PASSWORD, csrf_of, make_person, sign_in
from tests.support.tickets import get_ticket, open_ticket


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # https: the session cookie is Secure outside development, and httpx honours that
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield c


async def _signed_in(browser: httpx.AsyncClient, db: Database, name: str, role: Role) -> str:
    pid = await make_person(db, name, role)
    answer = await sign_in(browser, name)
    assert answer.status_code == 303, answer.text
    return pid


async def test_login_form_carries_a_csrf_token_and_sign_in_sets_a_safe_cookie(
    browser: httpx.AsyncClient, db: Database
) -> None:
    await make_person(db, "alice", Role.AGENT)
    form = await browser.get("/console/login")
    assert form.status_code == 200
    assert 'name="csrf_token"' in form.text and 'name="username"' in form.text
    answer = await sign_in(browser, "alice")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/"
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "cs_console_session" in v
    )
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "secure" in lowered
    assert "path=/console" in lowered
    token = cookie.split("=", 1)[1].split(";", 1)[0]
    async with db.sessionmaker() as read:
        stored = (await read.execute(select(ConsoleSession.token_hash))).scalars().all()
    assert len(stored) == 1 and token not in stored[0]  # only a hash is stored
    inbox = await browser.get("/console/")
    assert inbox.status_code == 200 and "alice" in inbox.text


async def test_pages_need_a_session(browser: httpx.AsyncClient) -> None:
    answer = await browser.get("/console/?tab=mine")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login?next=")
    assert (await browser.get("/console/events", headers={"Accept": "text/event-stream"})).status_code == 401


async def test_wrong_password_is_refused_slowly_audited_and_then_blocked(
    browser: httpx.AsyncClient, db: Database, settings: object
) -> None:
    await make_person(db, "bob", Role.AGENT)
    for _ in range(5):
        answer = await sign_in(browser, "bob", "wrong password!")
        assert answer.status_code == 401
        assert "Wrong user name or password" in answer.text
    blocked = await sign_in(browser, "bob")  # even the right password, while blocked
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    unknown = await sign_in(browser, "nobody-here", "whatever1")
    assert unknown.status_code == 401
    async with db.sessionmaker() as read:
        failures = (
            await read.execute(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "console_sign_in_failed")
            )
        ).scalar_one()
        text = " ".join(str(d) for d in (await read.execute(select(AuditLog.details))).scalars())
    assert failures == 7
    assert "wrong password" not in text  # the password itself is never written anywhere


async def test_a_form_without_the_csrf_token_is_refused(browser: httpx.AsyncClient, db: Database) -> None:
    await _signed_in(browser, db, "carol", Role.AGENT)
    ticket = await open_ticket(db)
    refused = await browser.post(f"/console/tickets/{ticket.id}/claim", data={})
    assert refused.status_code == 403
    assert "CS_AUTH_4036" in refused.text
    wrong = await browser.post(f"/console/tickets/{ticket.id}/claim", data={"csrf_token": "x" * 64})
    assert wrong.status_code == 403
    assert (await get_ticket(db, ticket.id)).status == "open"  # nothing changed
    login = await browser.post("/console/login", data={"username": "carol", "password": PASSWORD})
    assert login.status_code == 403


async def test_revoked_principal_and_reset_password_sign_out_at_once(
    browser: httpx.AsyncClient, db: Database
) -> None:
    await _signed_in(browser, db, "dave", Role.AGENT)
    assert (await browser.get("/console/")).status_code == 200
    await set_password(db, "dave", "a brand new password")
    assert (await browser.get("/console/")).status_code == 303
    assert (await sign_in(browser, "dave", "a brand new password")).status_code == 303
    assert (await browser.get("/console/")).status_code == 200
    await revoke_principal(db, "dave")
    assert (await browser.get("/console/")).status_code == 303
    assert (await sign_in(browser, "dave", "a brand new password")).status_code == 401


async def test_sign_out_ends_the_session(browser: httpx.AsyncClient, db: Database) -> None:
    await _signed_in(browser, db, "erin", Role.AGENT)
    page = await browser.get("/console/")
    out = await browser.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert (await browser.get("/console/")).status_code == 303
    async with db.sessionmaker() as read:
        ended = (await read.execute(select(ConsoleSession.ended_at))).scalar_one()
    assert ended is not None


async def test_inbox_tabs_order_and_filters(browser: httpx.AsyncClient, db: Database) -> None:
    me = await _signed_in(browser, db, "frank", Role.SUPERVISOR)
    low = await open_ticket(
        db, priority=Priority.P3, customer_message="slow question", reason="low_confidence"
    )
    high = await open_ticket(db, priority=Priority.P1, customer_message="urgent thing", reason="sensitive")
    mine = await open_ticket(db, channel="wechat", customer_message="my own case")
    async with db.transaction() as tx:
        t = await tx.get(type(mine), mine.id)
        assert t is not None
        t.assignee_id, t.status = __import__("uuid").UUID(me), "assigned"
    page = (await browser.get("/console/?tab=all")).text
    assert page.index("urgent thing") < page.index("slow question")  # P1 first
    assert "sensitive topic" in page and "bot not confident" in page  # the handoff reasons
    mine_tab = (await browser.get("/console/?tab=mine")).text
    assert "my own case" in mine_tab and "urgent thing" not in mine_tab
    unassigned = (await browser.get("/console/?tab=unassigned")).text
    assert "my own case" not in unassigned and "urgent thing" in unassigned
    by_channel = (await browser.get("/console/?channel=wechat")).text
    assert "my own case" in by_channel and "slow question" not in by_channel
    by_priority = (await browser.get("/console/?priority=P3")).text
    assert "slow question" in by_priority and "urgent thing" not in by_priority
    partial = await browser.get("/console/?tab=all&partial=1")
    assert "<html" not in partial.text and str(high.id) in partial.text and str(low.id) in partial.text


async def test_claim_reply_resolve_close_through_the_ticket_services(
    browser: httpx.AsyncClient, db: Database
) -> None:
    agent_id = await _signed_in(browser, db, "gina", Role.AGENT)
    ticket = await open_ticket(db)
    page = await browser.get(f"/console/tickets/{ticket.id}")
    assert page.status_code == 200 and "我要退款" in page.text
    csrf = csrf_of(page.text)
    assert (
        await browser.post(f"/console/tickets/{ticket.id}/claim", data={"csrf_token": csrf})
    ).status_code == 303
    assert str((await get_ticket(db, ticket.id)).assignee_id) == agent_id
    page = await browser.get(f"/console/tickets/{ticket.id}")
    assert 'aria-label="Reply"' in page.text or '<label for="reply-content">Reply</label>' in page.text
    assert "Send reply" in page.text
    sent = await browser.post(
        f"/console/tickets/{ticket.id}/reply", data={"csrf_token": csrf, "content": "已为您办理退款"}
    )
    assert sent.status_code == 303
    async with db.sessionmaker() as read:
        replies = (
            (await read.execute(select(Message.content).where(Message.author_type == "agent")))
            .scalars()
            .all()
        )
    assert replies == ["已为您办理退款"]
    noted = await browser.post(f"/console/tickets/{ticket.id}/note", data={"csrf_token": csrf, "body": "vip"})
    assert noted.status_code == 303
    resolved = await browser.post(
        f"/console/tickets/{ticket.id}/resolve", data={"csrf_token": csrf, "resolution": "refunded"}
    )
    assert resolved.status_code == 303
    assert (await get_ticket(db, ticket.id)).status == "resolved"
    # an agent may not close: the service says 403 and the page says so in a sentence
    refused = await browser.post(f"/console/tickets/{ticket.id}/close", data={"csrf_token": csrf})
    assert refused.status_code == 403
    assert "not allowed" in refused.text


async def test_a_conflict_shows_as_a_plain_sentence(browser: httpx.AsyncClient, db: Database) -> None:
    await _signed_in(browser, db, "hank", Role.SUPERVISOR)
    ticket = await open_ticket(db)
    page = await browser.get(f"/console/tickets/{ticket.id}")
    answer = await browser.post(
        f"/console/tickets/{ticket.id}/close", data={"csrf_token": csrf_of(page.text)}
    )
    assert answer.status_code == 409
    assert "Only a resolved ticket can be closed." in answer.text


async def test_customer_text_is_escaped(browser: httpx.AsyncClient, db: Database) -> None:
    await _signed_in(browser, db, "ivan", Role.AGENT)
    ticket = await open_ticket(db, customer_message="<script>alert(1)</script>")
    page = await browser.get(f"/console/tickets/{ticket.id}")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    inbox = await browser.get("/console/")
    assert "<script>alert(1)</script>" not in inbox.text


async def test_agents_cannot_open_another_agents_ticket(browser: httpx.AsyncClient, db: Database) -> None:
    await _signed_in(browser, db, "judy", Role.AGENT)
    other = await make_person(db, "kim", Role.AGENT)
    ticket = await open_ticket(db)
    async with db.transaction() as tx:
        t = await tx.get(type(ticket), ticket.id)
        assert t is not None
        t.assignee_id, t.status = __import__("uuid").UUID(other), "assigned"
    assert (await browser.get(f"/console/tickets/{ticket.id}")).status_code == 403
    assert (await browser.get("/console/tickets/not-a-uuid")).status_code == 404


async def test_kb_edit_changes_the_try_answer(browser: httpx.AsyncClient, db: Database, app: FastAPI) -> None:
    await _signed_in(browser, db, "lena", Role.SUPERVISOR)
    page = await browser.get("/console/kb/new")
    created = await browser.post(
        "/console/kb",
        data={
            "csrf_token": csrf_of(page.text),
            "title": "Opening hours",
            "answer": "We are open 9:00-18:00.",
            "questions": "when are you open\nopening hours",
            "tags": "hours",
            "publish": "1",
        },
    )
    assert created.status_code == 303
    entry_url = created.headers["location"]
    await app.state.ctx.knowledge.refresh()
    tried = await browser.get("/console/kb", params={"ask": "when are you open"})
    assert "We are open 9:00-18:00." in tried.text
    edit = await browser.get(entry_url)
    version = edit.text.split('name="version" value="')[1].split('"')[0]
    saved = await browser.post(
        entry_url,
        data={
            "csrf_token": csrf_of(edit.text),
            "version": version,
            "title": "Opening hours",
            "answer": "We are open 8:00-20:00 every day.",
            "questions": "when are you open\nopening hours",
            "tags": "hours",
            "publish": "1",
        },
    )
    assert saved.status_code == 303
    await app.state.ctx.knowledge.refresh()
    tried = await browser.get("/console/kb", params={"ask": "when are you open"})
    assert "8:00-20:00" in tried.text and "9:00-18:00" not in tried.text
    stale = await browser.post(
        entry_url,
        data={"csrf_token": csrf_of(edit.text), "version": version, "title": "x", "answer": "y"},
    )
    assert stale.status_code == 409 and "changed this entry" in stale.text


async def test_agents_may_not_edit_the_kb_or_open_supervisor_pages(
    browser: httpx.AsyncClient, db: Database
) -> None:
    await _signed_in(browser, db, "mona", Role.AGENT)
    page = await browser.get("/console/kb/new")
    assert "Only supervisors and admins" in page.text
    refused = await browser.post(
        "/console/kb", data={"csrf_token": csrf_of(page.text), "title": "t", "answer": "a"}
    )
    assert refused.status_code == 403
    assert (await browser.get("/console/supervisor")).status_code == 403
    assert (await browser.get("/console/admin")).status_code == 403


async def test_supervisor_and_admin_views(browser: httpx.AsyncClient, db: Database) -> None:
    await _signed_in(browser, db, "nina", Role.ADMIN)
    agent = await make_person(db, "omar", Role.AGENT)
    await open_ticket(db, reason="sensitive")
    page = await browser.get("/console/supervisor?period=30")
    assert page.status_code == 200
    assert "sensitive" in page.text and "omar" in page.text and "<svg" in page.text
    away = await browser.post(
        f"/console/agents/{agent}/availability", data={"csrf_token": csrf_of(page.text), "available": "false"}
    )
    assert away.status_code == 303
    async with db.sessionmaker() as read:
        assert (
            await read.execute(select(Principal.available).where(Principal.name == "omar"))
        ).scalar_one() is False
    admin = await browser.get("/console/admin")
    assert admin.status_code == 200 and "No dead-letter events." in admin.text


async def test_language_from_accept_language_and_the_switch(browser: httpx.AsyncClient, db: Database) -> None:
    await _signed_in(browser, db, "pia", Role.AGENT)
    zh = await browser.get("/console/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "收件箱" in zh.text and 'lang="zh-CN"' in zh.text
    switched = await browser.get("/console/lang", params={"to": "en", "next": "/console/"})
    assert switched.status_code == 303 and switched.headers["location"] == "/console/"
    en = await browser.get("/console/", headers={"Accept-Language": "zh-CN"})
    assert "Inbox" in en.text and 'lang="en"' in en.text
    evil = await browser.get("/console/lang", params={"to": "zh", "next": "https://evil.example/"})
    assert evil.headers["location"] == "/console/"


async def test_agent_assist_offers_the_best_kb_answer_as_a_draft(
    browser: httpx.AsyncClient, db: Database, app: FastAPI
) -> None:
    from ai_customer_service.knowledge import service as kb
    from ai_customer_service.knowledge.schemas import EntryCreate

    await kb.create(
        db,
        EntryCreate(
            title="Invoice copies",
            answer="Download invoices under Billing → Invoices.",
            questions=["where can I download my invoice", "invoice copy"],
            status="published",
        ),
        actor_id="test",
    )
    await app.state.ctx.knowledge.refresh()
    await _signed_in(browser, db, "quinn", Role.AGENT)
    ticket = await open_ticket(db, customer_message="where can I download my invoice")
    page = await browser.get(f"/console/tickets/{ticket.id}")
    assert page.status_code == 200
    assert "Suggested answer" in page.text
    assert 'id="assist-text">Download invoices under Billing → Invoices.</blockquote>' in page.text


async def test_admin_replays_a_dead_letter(browser: httpx.AsyncClient, db: Database) -> None:
    from sqlalchemy import update

    from ai_customer_service.outbox.events import EventType, emit
    from ai_customer_service.outbox.models import OutboxEvent

    async with db.transaction() as tx:
        event_id = emit(tx, destination="widget", type=EventType.AGENT_REPLIED, session_id=None, data={})
    async with db.transaction() as tx:
        await tx.execute(
            update(OutboxEvent).where(OutboxEvent.id == event_id).values(status="dead", attempts=3)
        )
    await _signed_in(browser, db, "rita", Role.ADMIN)
    page = await browser.get("/console/admin")
    assert str(event_id) in page.text and "agent.replied" in page.text
    replayed = await browser.post(
        "/console/admin/replay", data={"csrf_token": csrf_of(page.text), "event_id": str(event_id)}
    )
    assert replayed.status_code == 303
    async with db.sessionmaker() as read:
        status = (
            await read.execute(select(OutboxEvent.status).where(OutboxEvent.id == event_id))
        ).scalar_one()
    assert status == "pending"
