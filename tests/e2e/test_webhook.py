"""The inbound webhook over HTTP (in-process app, real database): contract §5, §6 and §12."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ai_customer_service.audit.models import AuditLog
from ai_customer_service.conversation.models import Feedback, Message, MessageDedup, Session
from ai_customer_service.db.engine import Database
from ai_customer_service.ticket.models import Ticket
from tests.conftest import TEST_SECRET
from tests.support.webhooks import WEBHOOK, message, signed

ADMIN = {"Authorization": "Bearer admin-token"}


@pytest.fixture
def db_env(db_env: dict[str, str]) -> dict[str, str]:
    return {**db_env, "AI_CS_ADMIN_TOKEN": "admin-token"}


async def post(
    client: httpx.AsyncClient, body: dict[str, Any] | bytes, path: str = WEBHOOK, **kw: Any
) -> httpx.Response:
    raw, headers = signed(body, TEST_SECRET, **kw)
    return await client.post(path, content=raw, headers=headers)


async def count(db: Database, model: Any) -> int:
    async with db.sessionmaker() as tx:
        return int((await tx.execute(select(func.count()).select_from(model))).scalar_one())


# --- signature ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "CS_AUTH_4031"),
        ({"X-CS-Timestamp": "1700000000"}, "CS_AUTH_4031"),
        ({"X-CS-Signature": "abc"}, "CS_AUTH_4031"),
        ({"X-CS-Timestamp": " ", "X-CS-Signature": "abc"}, "CS_AUTH_4031"),
        ({"X-CS-Timestamp": "yesterday", "X-CS-Signature": "abc"}, "CS_AUTH_4032"),
        ({"X-CS-Timestamp": "now-301", "X-CS-Signature": "abc"}, "CS_AUTH_4033"),
        ({"X-CS-Timestamp": "now+400", "X-CS-Signature": "abc"}, "CS_AUTH_4033"),
        ({"X-CS-Timestamp": "now", "X-CS-Signature": "0" * 64}, "CS_AUTH_4034"),
    ],
)
async def test_signature_failures(
    client: httpx.AsyncClient, db: Database, headers: dict[str, str], code: str
) -> None:
    stamp = headers.get("X-CS-Timestamp", "")
    if stamp.startswith("now"):  # relative to the moment the test runs
        headers = {**headers, "X-CS-Timestamp": str(int(time.time()) + int(stamp[3:] or 0))}
    response = await client.post(WEBHOOK, json=message("hi"), headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == code
    assert await count(db, Message) == 0


async def test_signature_with_prefix_and_the_wrong_secret(client: httpx.AsyncClient) -> None:
    raw, headers = signed(message("hi", message_id="p1"), TEST_SECRET)
    headers["X-CS-Signature"] = "sha256=" + headers["X-CS-Signature"]
    assert (await client.post(WEBHOOK, content=raw, headers=headers)).status_code == 200
    raw, headers = signed(message("hi", message_id="p2"), "another-secret")
    response = await client.post(WEBHOOK, content=raw, headers=headers)
    assert response.json()["error"]["code"] == "CS_AUTH_4034"


async def test_rejections_are_counted_and_audited_in_aggregate(
    app: Any, client: httpx.AsyncClient, db: Database
) -> None:
    for _ in range(19):  # below AI_CS_AUTH_FAILURE_LIMIT (20): the 20th failure would throttle /metrics too
        await client.post(WEBHOOK, json=message("hi"))
    assert await count(db, AuditLog) == 0  # no write per rejection
    metrics = (await client.get("/metrics")).text
    assert 'cs_webhook_rejections_total{code="CS_AUTH_4031"} 19.0' in metrics
    assert await app.state.ctx.rejections.flush(db) == 1
    async with db.sessionmaker() as tx:
        row = (await tx.execute(select(AuditLog))).scalar_one()
    assert (row.action, row.code, row.details["count"]) == ("rejected", "CS_AUTH_4031", 19)


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "CS_REQ_4001"),
        (b"[1, 2]", "CS_REQ_4001"),
        (message("hi", test="payload"), "CS_REQ_4001"),
        (message("hi", timestamp="yesterday at noon"), "CS_REQ_4001"),
        (message("hi", timestamp="2026-05-04T00:00:00"), "CS_REQ_4001"),
        (message("hi", open_id="x" * 129), "CS_REQ_4001"),
        (message("hi", message_id="m" * 129), "CS_REQ_4001"),
        (message("hi", user_id=12345), "CS_REQ_4001"),
        ({"channel": "widget", "content": "hi"}, "CS_REQ_4002"),
        (message("   "), "CS_REQ_4002"),
        ({"open_id": "a", "content": "hi"}, "CS_REQ_4002"),
        (message("hi", channel="sms"), "CS_REQ_4008"),
    ],
)
async def test_bad_bodies_are_400_with_their_code(
    client: httpx.AsyncClient, db: Database, body: Any, code: str
) -> None:
    response = await post(client, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert await count(db, Session) == 0


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    raw, headers = signed(message("x" * 1_100_000), TEST_SECRET)
    response = await client.post(WEBHOOK, content=raw, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "CS_REQ_4131"


async def test_the_path_channel_wins(client: httpx.AsyncClient) -> None:
    response = await post(client, message("hi", channel="sms"), path=f"{WEBHOOK}/telegram")
    assert response.status_code == 200
    session = await client.get(
        f"/api/v1/customer-service/sessions/{response.json()['session_id']}", headers=ADMIN
    )
    assert session.json()["channel"] == "telegram"


async def test_long_content_is_cut_at_2000_characters_and_audited(
    client: httpx.AsyncClient, db: Database
) -> None:
    content = "退" * 1999 + "😀" + "tail"
    response = await post(client, message(content.replace("退", "字"), message_id="long"))
    assert response.status_code == 200
    async with db.sessionmaker() as tx:
        inbound = (await tx.execute(select(Message).where(Message.direction == "inbound"))).scalar_one()
        audit_row = (
            await tx.execute(select(AuditLog).where(AuditLog.object_type == "message_processed"))
        ).scalar_one()
    assert len(inbound.content) == 2000 and inbound.content.endswith("😀") and inbound.truncated
    assert audit_row.code == "CS_REQ_4003"
    assert audit_row.details["original_length"] == 2004


async def test_each_processed_message_has_one_audit_row_in_the_originals_shape(
    client: httpx.AsyncClient, db: Database
) -> None:
    """object_type message_processed, action process, object = session, actor = the customer's open_id,
    after_state {intent, reply, ticket_id}: what the original's operational queries read."""
    answered = (await post(client, message("hello", message_id="shape-1", open_id="shape"))).json()
    handed = (await post(client, message("我要投诉，转人工", message_id="shape-2", open_id="shape"))).json()
    await post(client, message("我要投诉，转人工", message_id="shape-2", open_id="shape"))  # a duplicate
    assert handed["handoff"] is True and handed["ticket_id"]
    async with db.sessionmaker() as tx:
        rows = list(
            (
                await tx.execute(
                    select(AuditLog)
                    .where(AuditLog.object_type == "message_processed")
                    .order_by(AuditLog.created_at)
                )
            ).scalars()
        )
    assert len(rows) == 2  # one per processed message, none for the duplicate
    for row, response in zip(rows, (answered, handed), strict=True):
        assert (row.action, row.object_id, row.actor_id, row.actor_type, row.tenant_id) == (
            "process",
            response["session_id"],
            "shape",
            "customer",
            "default",
        )
        assert row.before_state == {}
        assert row.after_state["intent"] == response["intent"]
        assert row.after_state["reply"] == response["reply"]
        assert row.details["message_id"] == response["message_id"]  # our richer fields stay
    assert "ticket_id" not in rows[0].after_state
    assert rows[1].after_state["ticket_id"] == handed["ticket_id"]
    assert (rows[1].details["session_status_before"], rows[1].details["session_status_after"]) == (
        "idle",
        "handoff",
    )


async def test_non_text_gets_a_polite_reply_in_the_customer_language(client: httpx.AsyncClient) -> None:
    response = await post(client, message("[图片]", content_type="image", message_id="img"))
    assert response.status_code == 200
    assert "文字" in response.json()["reply"]
    response = await post(client, message("[photo]", content_type="image", message_id="img2", open_id="c2"))
    assert "text" in response.json()["reply"]
    assert response.json()["handoff"] is False and response.json()["intent"] == "clarify"


# --- processing ----------------------------------------------------------------------------------


async def test_duplicate_returns_the_original_response_and_changes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = await post(client, message("hello", message_id="dup-1"))
    counts = [await count(db, m) for m in (Message, Session, MessageDedup, AuditLog)]
    again = await post(client, message("hello", message_id="dup-1"))
    assert first.json()["duplicate"] is False
    assert again.json() == {**first.json(), "duplicate": True}
    assert [await count(db, m) for m in (Message, Session, MessageDedup, AuditLog)] == counts


async def test_refund_hands_off_and_the_bot_then_stays_silent(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = (await post(client, message("我要退款", message_id="r1"))).json()
    assert first["handoff"] is True and first["ticket_id"]
    assert first["reply"]  # the customer is told a human will take over
    async with db.sessionmaker() as tx:
        ticket = await tx.get(Ticket, uuid.UUID(first["ticket_id"]))
        session = await tx.get(Session, uuid.UUID(first["session_id"]))
    assert ticket is not None and (ticket.priority, ticket.status, ticket.reason) == ("P1", "open", "refund")
    assert session is not None and session.status == "handoff"

    second = (await post(client, message("还在吗？", message_id="r2"))).json()
    assert second["reply"] == "" and second["handoff"] is True
    assert second["ticket_id"] == first["ticket_id"]
    assert await count(db, Ticket) == 1

    messages = (
        await client.get(f"/api/v1/customer-service/sessions/{first['session_id']}/messages", headers=ADMIN)
    ).json()
    inbound = [m["content"] for m in messages["items"] if m["direction"] == "inbound"]
    assert inbound == ["我要退款", "还在吗？"]
    assert [m["author_type"] for m in messages["items"]] == ["customer", "bot", "customer"]
    assert messages["items"][1]["decision"]["reason"] == "rule:refund"


@pytest.mark.parametrize(
    ("text", "handoff"),
    [
        ("is humanity doomed?", False),
        ("I want a human agent", True),
        ("转人工", True),
        ("my account was hacked", True),
        ("how do I reset my password", False),
    ],
)
async def test_rules_respect_word_boundaries(client: httpx.AsyncClient, text: str, handoff: bool) -> None:
    body = (await post(client, message(text, open_id=f"c-{uuid.uuid4().hex[:8]}"))).json()
    assert body["handoff"] is handoff


async def test_another_customers_message_id_is_refused_not_answered_with_their_reply(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Some gateways number messages per chat: the same message_id from another customer is not a
    duplicate of the first customer's message, and must never return the first customer's reply."""
    first = await post(client, message("how do I reset my password", open_id="alice", message_id="42"))
    assert first.status_code == 200 and first.json()["duplicate"] is False
    other = await post(client, message("where is my invoice", open_id="bob", message_id="42"))
    assert other.status_code == 409 and other.json()["error"]["code"] == "CS_REQ_4091"
    assert first.json()["session_id"] not in other.text and first.json()["reply"] not in other.text
    retry = await post(client, message("how do I reset my password", open_id="alice", message_id="42"))
    assert retry.json() == {**first.json(), "duplicate": True}  # hidden dedup fields never leak
    assert await count(db, Message) == 2  # alice's message and its reply; nothing of bob's was stored


async def test_a_replayed_signed_request_without_message_id_is_a_duplicate(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Without a message_id the signed request is the key: the same bytes again (an attacker's or a
    proxy's replay within the skew window) change nothing; a new request is a new message."""
    raw, headers = signed(message("hello there", open_id="no-ids"), TEST_SECRET)
    first = await client.post(WEBHOOK, content=raw, headers=headers)
    replay = await client.post(WEBHOOK, content=raw, headers=headers)
    assert first.json()["duplicate"] is False and replay.json() == {**first.json(), "duplicate": True}
    raw2, headers2 = signed(message("hello there", open_id="no-ids"), TEST_SECRET, ts=int(time.time()) + 1)
    again = await client.post(WEBHOOK, content=raw2, headers=headers2)  # the customer wrote it again
    assert again.json()["duplicate"] is False
    async with db.sessionmaker() as tx:
        inbound = (
            await tx.execute(select(func.count()).select_from(Message).where(Message.direction == "inbound"))
        ).scalar_one()
    assert inbound == 2


async def test_rate_limit_per_customer_spares_duplicates(
    settings: Any, app: Any, client: httpx.AsyncClient, db: Database
) -> None:
    settings.rate_limit_messages = 3
    for i in range(3):
        assert (await post(client, message(f"m{i}", message_id=f"rl-{i}"))).status_code == 200
    limited = await post(client, message("one too many", message_id="rl-3"))
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "CS_SES_4002"
    assert 1 <= int(limited.headers["Retry-After"]) <= 10
    # an upstream retry of a processed message is still answered, not limited
    retry = await post(client, message("m0", message_id="rl-0"))
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    # another customer is not affected
    assert (await post(client, message("hi", open_id="other", message_id="o-1"))).status_code == 200
    # the refused message left nothing behind: its later retry is processed normally
    async with db.sessionmaker() as tx:
        assert (
            await tx.execute(select(MessageDedup).where(MessageDedup.message_id == "rl-3"))
        ).first() is None


async def test_failure_after_the_ticket_insert_rolls_everything_back(
    app: Any, client: httpx.AsyncClient, db: Database
) -> None:
    app.state.ctx.ingest.faults.remaining["after_ticket_insert"] = 1
    failed = await post(client, message("我要退款", message_id="f-1"))
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "CS_SYS_5001"
    for model in (MessageDedup, Session, Ticket, Message, AuditLog):
        assert await count(db, model) == 0, model
    retried = await post(client, message("我要退款", message_id="f-1"))
    assert retried.status_code == 200
    assert retried.json()["duplicate"] is False and retried.json()["handoff"] is True
    assert await count(db, Ticket) == 1


# --- sessions API ------------------------------------------------------------------------------


async def test_back_office_routes_need_credentials(client: httpx.AsyncClient) -> None:
    sid = (await post(client, message("hi"))).json()["session_id"]
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"X-CS-Actor-Role": "admin", "X-CS-Actor-ID": "x"},
    ):
        response = await client.get(f"/api/v1/customer-service/sessions/{sid}", headers=headers)
        assert response.status_code == 401
    assert (await client.get(f"/api/v1/customer-service/sessions/{uuid.uuid4()}", headers=ADMIN)).json()[
        "error"
    ]["code"] == "CS_SES_4001"


async def test_malformed_session_ids_name_no_session(client: httpx.AsyncClient) -> None:
    base = "/api/v1/customer-service/sessions/not-a-uuid"
    for method, path, body in (
        ("GET", base, None),
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/close", None),
        ("POST", f"{base}/handoff", {"reason": "vip"}),
    ):
        response = await client.request(method, path, json=body, headers=ADMIN)
        assert response.status_code == 404 and response.json()["error"]["code"] == "CS_SES_4001"
    # the signed feedback route checks the signature before it looks at the id
    assert (await client.post(f"{base}/feedback", json={"score": 5})).json()["error"][
        "code"
    ] == "CS_AUTH_4031"
    signed_bad = await post(client, {"score": 5}, path=f"{base}/feedback")
    assert signed_bad.status_code == 404 and signed_bad.json()["error"]["code"] == "CS_SES_4001"


async def test_feedback_is_signed_and_validated(client: httpx.AsyncClient) -> None:
    sid = (await post(client, message("hi"))).json()["session_id"]
    path = f"/api/v1/customer-service/sessions/{sid}/feedback"
    assert (await client.post(path, json={"score": 5})).json()["error"]["code"] == "CS_AUTH_4031"
    for score in (0, 6, "5", None, 4.5):
        response = await post(client, {"score": score}, path=path)
        assert response.status_code == 400 and response.json()["error"]["code"] == "CS_REQ_4009"
    ok = await post(client, {"score": 4, "comment": "快"}, path=path)
    assert ok.status_code == 200 and ok.json()["score"] == 4


async def test_one_rating_per_session_and_replays_change_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    sid = (await post(client, message("hi"))).json()["session_id"]
    path = f"/api/v1/customer-service/sessions/{sid}/feedback"
    now = int(time.time())
    raw, headers = signed({"score": 2, "comment": "slow"}, TEST_SECRET, ts=now - 1)
    first = await client.post(path, content=raw, headers=headers)
    replay = await client.post(path, content=raw, headers=headers)  # the same signed request again
    assert first.status_code == replay.status_code == 200 and first.json() == replay.json()
    changed = await post(client, {"score": 5}, path=path, ts=now)  # the customer changes their mind
    assert changed.json() == {"id": first.json()["id"], "session_id": sid, "score": 5, "comment": None}
    stale = await client.post(path, content=raw, headers=headers)  # the older request replayed later
    assert stale.json()["score"] == 5  # an older rating never overwrites a newer one
    async with db.sessionmaker() as tx:
        assert (await tx.execute(select(Feedback.score))).scalars().all() == [5]
        audits = (
            (
                await tx.execute(
                    select(AuditLog.details)
                    .where(AuditLog.action == "feedback")
                    .order_by(AuditLog.created_at)
                )
            )
            .scalars()
            .all()
        )
    assert audits == [{"score": 2}, {"score": 5, "previous_score": 2}]
    missing = await post(
        client, {"score": 4}, path=f"/api/v1/customer-service/sessions/{uuid.uuid4()}/feedback"
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "CS_SES_4001"


async def test_manual_handoff_and_close(client: httpx.AsyncClient) -> None:
    sid = (await post(client, message("hi"))).json()["session_id"]
    base = f"/api/v1/customer-service/sessions/{sid}"
    empty = await client.post(f"{base}/handoff", json={"reason": "  "}, headers=ADMIN)
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "CS_REQ_4010"
    no_body = await client.post(f"{base}/handoff", headers=ADMIN)
    assert no_body.status_code == 400 and no_body.json()["error"]["code"] == "CS_REQ_4010"
    unknown = await client.post(
        f"/api/v1/customer-service/sessions/{uuid.uuid4()}/handoff", json={"reason": "vip"}, headers=ADMIN
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "CS_SES_4001"
    done = await client.post(
        f"{base}/handoff", json={"reason": "vip customer", "priority": "P1"}, headers=ADMIN
    )
    assert done.status_code == 200 and done.json()["session"]["status"] == "handoff"
    assert (await client.post(f"{base}/close", headers=ADMIN)).status_code == 409


async def test_idle_sessions_are_swept(client: httpx.AsyncClient, db: Database) -> None:
    from datetime import UTC, datetime, timedelta

    from ai_customer_service.conversation.service import sweep_idle
    from tests.support.tickets import units

    sid = (await post(client, message("hi"))).json()["session_id"]
    assert await sweep_idle(units(db), idle_seconds=1800) == 0
    assert await sweep_idle(units(db), idle_seconds=1800, now=datetime.now(UTC) + timedelta(hours=1)) == 1
    async with db.sessionmaker() as tx:
        session = await tx.get(Session, uuid.UUID(sid))
    assert session is not None and (session.status, session.close_reason) == ("closed", "timeout")
    fresh = (await post(client, message("back again"))).json()
    assert fresh["session_id"] != sid


@pytest.mark.parametrize("content", ["hi\ud800 there", "nul\x00byte"])
async def test_unstorable_text_is_a_400_not_a_500(
    client: httpx.AsyncClient, db: Database, content: str
) -> None:
    raw = json.dumps(message(content, message_id="bad-chars")).encode()  # json escapes keep it ASCII
    raw, headers = signed(raw, TEST_SECRET)
    response = await client.post(WEBHOOK, content=raw, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "CS_REQ_4001"
    assert await count(db, Session) == 0


async def test_a_long_request_id_is_replaced_and_the_message_still_processed(
    client: httpx.AsyncClient,
) -> None:
    raw, headers = signed(message("hello", message_id="long-rid"), TEST_SECRET)
    response = await client.post(WEBHOOK, content=raw, headers={**headers, "X-Request-ID": "r" * 100})
    assert response.status_code == 200
    assert len(response.headers["x-request-id"]) == 32


async def test_manual_handoff_publishes_its_events(db_env: dict[str, str], db: Database) -> None:
    from ai_customer_service.config import load_settings
    from ai_customer_service.main import create_app
    from ai_customer_service.outbox.models import OutboxEvent

    configured = load_settings(
        {
            **db_env,
            "AI_CS_CHANNEL_WIDGET_CALLBACK_URL": "http://127.0.0.1:9/cb",
            "AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET": "s",
            "AI_CS_OUTBOX_WORKER_ENABLED": "false",
        },
        env_file=None,
    )
    app = create_app(configured, db=db)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        await app.state.ctx.knowledge.refresh()
        raw, headers = signed(message("hi", open_id="manual"), TEST_SECRET)
        sid = (await c.post(WEBHOOK, content=raw, headers=headers)).json()["session_id"]
        done = await c.post(
            f"/api/v1/customer-service/sessions/{sid}/handoff", json={"reason": "vip"}, headers=ADMIN
        )
        assert done.status_code == 200
    async with db.sessionmaker() as tx:
        types = (await tx.execute(select(OutboxEvent.type).order_by(OutboxEvent.seq))).scalars().all()
    assert types[-2:] == ["handoff.triggered", "ticket.created"]
