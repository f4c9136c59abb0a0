"""Issue #12 items 1, 2 and 5 on the inbound path: a platform cannot take over another source's
customer; signed bytes are bound to the path they were sent to (v1 claims, opt-in v2, two secrets
during a rotation); duplicates cost one read and no write; the dialog's analysis never runs for a
duplicate or while a human owns the conversation."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from ai_customer_service.auth.models import Role
from ai_customer_service.conversation.models import Feedback, Session
from ai_customer_service.db.engine import Database
from ai_customer_service.db.models import metadata
from ai_customer_service.dialog.engine import Analysis
from ai_customer_service.outbox.models import OutboxEvent
from ai_customer_service.security.signing import sign, sign_v2
from ai_customer_service.ticket.models import Ticket
from tests.conftest import TEST_SECRET
from tests.support.tickets import principal
from tests.support.webhooks import WEBHOOK, message, signed

API = "/api/v1/customer-service"
SUB2API_SECRET = "sub2api-ingress-1"
SUB2API_PREVIOUS = "sub2api-ingress-0"
WEBHOOK_PREVIOUS = "old-webhook-secret-0"
# the one write a duplicate may cause: its message.deduplicated event (outbox and live stream)
ONE_DEDUP_EVENT = {"cs_platform_outbox": 1, "cs_live_events": 1}


@pytest.fixture
def db_env(db_env: dict[str, str]) -> dict[str, str]:
    return {
        **db_env,
        "AI_CS_WEBHOOK_SECRET_PREVIOUS": WEBHOOK_PREVIOUS,
        "AI_CS_PLATFORM_ADAPTERS_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_ENABLED": "true",
        "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET": SUB2API_SECRET,
        "AI_CS_PLATFORM_SUB2API_INGRESS_SECRET_PREVIOUS": SUB2API_PREVIOUS,
        "AI_CS_PLATFORM_SUB2API_CALLBACK_BASE_URL": "http://127.0.0.1:9/sub2api",
        "AI_CS_PLATFORM_SUB2API_CALLBACK_SECRET": "cb-sub2api",
        # the widget's own callback subscription: where the widget customer's events must go
        "AI_CS_CHANNEL_WIDGET_CALLBACK_URL": "http://127.0.0.1:9/widget",
        "AI_CS_CHANNEL_WIDGET_CALLBACK_SECRET": "cb-widget",
        "AI_CS_OUTBOX_WORKER_ENABLED": "false",
        "AI_CS_RATE_LIMIT_MESSAGES": "1000",
    }


class CountingDialog:
    """Wraps the app's dialog engine and counts ``analyze`` calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.analyzed: list[str] = []

    async def analyze(self, text: str, content_type: str) -> Analysis:
        self.analyzed.append(text)
        return await self.inner.analyze(text, content_type)

    def decide(self, analysis: Analysis, *, low_confidence_streak: int) -> Any:
        return self.inner.decide(analysis, low_confidence_streak=low_confidence_streak)

    async def explain(self, query: str, *, top_k: int = 5) -> dict[str, Any]:
        return await self.inner.explain(query, top_k=top_k)


@pytest.fixture
def counting(app: FastAPI) -> CountingDialog:
    ctx = app.state.ctx
    fake = CountingDialog(ctx.ingest.dialog)
    ctx.ingest.dialog = fake
    return fake


async def post_signed(
    client: httpx.AsyncClient, path: str, body: dict[str, Any] | bytes, secret: str = TEST_SECRET
) -> httpx.Response:
    raw, headers = signed(body, secret)
    return await client.post(API + path, content=raw, headers=headers)


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def row_counts(db: Database) -> dict[str, int]:
    async with db.sessionmaker() as tx:
        return {
            name: int((await tx.execute(text(f"SELECT count(*) FROM {name}"))).scalar_one())
            for name in sorted(metadata.tables)
        }


async def outbox(db: Database, session_id: str | None = None) -> list[OutboxEvent]:
    async with db.sessionmaker() as tx:
        stmt = select(OutboxEvent).order_by(OutboxEvent.seq)
        if session_id is not None:
            stmt = stmt.where(OutboxEvent.session_id == uuid.UUID(session_id))
        return list((await tx.execute(stmt)).scalars())


# --- item 1: a conversation belongs to the source that started it ---------------------------------


async def test_a_platform_cannot_take_over_a_widget_customer(client: httpx.AsyncClient, db: Database) -> None:
    victim = await post_signed(
        client, "/webhook", message("I want a refund", open_id="v-1", message_id="w-1")
    )
    assert victim.status_code == 200, victim.text
    victim_session, victim_ticket = victim.json()["session_id"], victim.json()["ticket_id"]
    assert victim_ticket  # the refund rule handed the victim to a human

    # the attack: sub2api signs with its own ingress secret, same channel and open_id
    attack = await post_signed(
        client,
        "/platforms/sub2api/webhook/widget",
        {"open_id": "v-1", "message_id": "s-1", "content": "hello, what is my ticket?"},
        SUB2API_SECRET,
    )
    assert attack.status_code == 200, attack.text
    assert attack.json()["session_id"] != victim_session
    assert attack.json()["ticket_id"] != victim_ticket

    # the victim writes again and an agent answers: both still go to the widget, never to sub2api
    later = await post_signed(client, "/webhook", message("any news?", open_id="v-1", message_id="w-2"))
    assert later.json()["session_id"] == victim_session and later.json()["ticket_id"] == victim_ticket
    sup = await principal(db, "sup-1", Role.SUPERVISOR)
    agent = await principal(db, "agent-1", Role.AGENT)
    assign = await client.post(
        f"{API}/tickets/{victim_ticket}/assign", json={"agent_id": str(agent.id)}, headers=sup.headers
    )
    assert assign.status_code == 200, assign.text
    reply = await client.post(
        f"{API}/tickets/{victim_ticket}/reply", json={"content": "we are on it"}, headers=agent.headers
    )
    assert reply.status_code == 200, reply.text

    async with db.sessionmaker() as tx:
        session = await tx.get(Session, uuid.UUID(victim_session))
        assert session is not None and session.platform is None and session.source == ""
        ticket = await tx.get(Ticket, uuid.UUID(victim_ticket))
        assert ticket is not None and ticket.session_id == session.id
    victim_events = await outbox(db, victim_session)
    assert {e.destination for e in victim_events} == {"channel:widget"}
    assert "agent.replied" in [e.type for e in victim_events]
    attacker_events = await outbox(db, attack.json()["session_id"])
    assert attacker_events and {e.destination for e in attacker_events} == {"sub2api"}
    assert all("we are on it" not in str(e.payload) for e in attacker_events)
    assert any("we are on it" in str(e.payload) for e in victim_events)


async def test_the_generic_webhook_does_not_take_over_a_platform_customer(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = await post_signed(
        client, "/platforms/sub2api/webhook/widget", message("hello", open_id="p-1"), SUB2API_SECRET
    )
    second = await post_signed(client, "/webhook", message("hello", open_id="p-1"))
    assert first.json()["session_id"] != second.json()["session_id"]
    async with db.sessionmaker() as tx:
        rows = (await tx.execute(select(Session.source, Session.platform).order_by(Session.source))).all()
    assert [tuple(r) for r in rows] == [("", None), ("sub2api", "sub2api")]


# --- item 2: signed bytes are bound to where they were sent ---------------------------------------


async def test_a_signed_message_resent_to_other_channel_paths_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    raw, headers = signed({"open_id": "c-1", "message_id": "m-1", "content": "hello"}, TEST_SECRET)
    first = await client.post(f"{API}/webhook/widget", content=raw, headers=headers)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    before = await row_counts(db)
    for path in ("/webhook/telegram", "/webhook/discord", "/webhook/WIDGET"):
        other = await client.post(API + path, content=raw, headers=headers)
        assert other.status_code == 403 and code(other) == "CS_AUTH_4035", (path, other.text)
    retry = await client.post(f"{API}/webhook/widget", content=raw, headers=headers)
    assert retry.status_code == 200 and retry.json() == {**first.json(), "duplicate": True}
    after = await row_counts(db)
    # the refusals wrote nothing; the retry only its one message.deduplicated event (the widget's
    # callback subscription)
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == ONE_DEDUP_EVENT


async def test_a_platform_request_resent_to_another_channel_is_refused(client: httpx.AsyncClient) -> None:
    raw, headers = signed({"open_id": "c-9", "content": "hi"}, SUB2API_SECRET)
    ok = await client.post(f"{API}/platforms/sub2api/webhook/widget", content=raw, headers=headers)
    assert ok.status_code == 200
    other = await client.post(f"{API}/platforms/sub2api/webhook/telegram", content=raw, headers=headers)
    assert other.status_code == 403 and code(other) == "CS_AUTH_4035"
    again = await client.post(f"{API}/platforms/sub2api/webhook/widget", content=raw, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True


async def test_a_signed_rating_resent_to_another_session_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    a = (await post_signed(client, "/webhook", message("hello", open_id="r-a"))).json()["session_id"]
    b = (await post_signed(client, "/webhook", message("hello", open_id="r-b"))).json()["session_id"]
    raw, headers = signed({"score": 1, "comment": "bad"}, TEST_SECRET)
    rated = await client.post(f"{API}/sessions/{a}/feedback", content=raw, headers=headers)
    assert rated.status_code == 200, rated.text
    stolen = await client.post(f"{API}/sessions/{b}/feedback", content=raw, headers=headers)
    assert stolen.status_code == 403 and code(stolen) == "CS_AUTH_4035"
    retry = await client.post(f"{API}/sessions/{a}/feedback", content=raw, headers=headers)
    assert retry.status_code == 200 and retry.json() == rated.json()
    async with db.sessionmaker() as tx:
        rated_sessions = (await tx.execute(select(Feedback.session_id))).scalars().all()
    assert [str(s) for s in rated_sessions] == [a]


def v2_headers(secret: str, path: str, raw: bytes, ts: str, method: str = "POST") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-CS-Timestamp": ts,
        "X-CS-Signature": "sha256=" + sign_v2(secret, ts, method, path, raw),
        "X-CS-Signature-Version": "2",
    }


async def test_signature_v2_covers_method_and_path(client: httpx.AsyncClient, db: Database) -> None:
    ts = str(int(time.time()))
    raw = b'{"open_id": "v2-1", "message_id": "v2-m", "content": "hello"}'
    path = f"{API}/webhook/widget"
    headers = v2_headers(TEST_SECRET, path, raw, ts)
    ok = await client.post(path, content=raw, headers=headers)
    assert ok.status_code == 200, ok.text
    other = await client.post(f"{API}/webhook/telegram", content=raw, headers=headers)
    assert other.status_code == 403 and code(other) == "CS_AUTH_4034"
    retry = await client.post(path, content=raw, headers=headers)
    assert retry.json()["duplicate"] is True
    # a v1 signature declared as v2 (or a v2 one as v1) does not verify; an unknown version is refused
    wrong = {**headers, "X-CS-Signature": sign(TEST_SECRET, ts, raw)}
    assert code(await client.post(path, content=raw, headers=wrong)) == "CS_AUTH_4034"
    bad = {**headers, "X-CS-Signature-Version": "3"}
    assert code(await client.post(path, content=raw, headers=bad)) == "CS_AUTH_4034"
    # v2 requests are bound by their signature: nothing is claimed for them
    async with db.sessionmaker() as tx:
        assert (await tx.execute(text("SELECT count(*) FROM cs_signature_uses"))).scalar_one() == 0


async def test_v2_signed_feedback_cannot_be_moved_to_another_session(client: httpx.AsyncClient) -> None:
    a = (await post_signed(client, "/webhook", message("hello", open_id="f2-a"))).json()["session_id"]
    b = (await post_signed(client, "/webhook", message("hello", open_id="f2-b"))).json()["session_id"]
    raw, ts = b'{"score": 5}', str(int(time.time()))
    headers = v2_headers(TEST_SECRET, f"{API}/sessions/{a}/feedback", raw, ts)
    assert (
        await client.post(f"{API}/sessions/{a}/feedback", content=raw, headers=headers)
    ).status_code == 200
    moved = await client.post(f"{API}/sessions/{b}/feedback", content=raw, headers=headers)
    assert moved.status_code == 403 and code(moved) == "CS_AUTH_4034"


async def test_two_secrets_are_accepted_during_a_rotation(client: httpx.AsyncClient) -> None:
    assert (
        await post_signed(client, "/webhook", message("a", open_id="k-1"), TEST_SECRET)
    ).status_code == 200
    old = await post_signed(client, "/webhook", message("b", open_id="k-2"), WEBHOOK_PREVIOUS)
    assert old.status_code == 200, old.text
    wrong = await post_signed(client, "/webhook", message("c", open_id="k-3"), "never-configured")
    assert wrong.status_code == 403 and code(wrong) == "CS_AUTH_4034"
    # a platform's previous ingress secret too, but never another source's secret
    path = "/platforms/sub2api/webhook/widget"
    assert (await post_signed(client, path, message("d", open_id="k-4"), SUB2API_PREVIOUS)).status_code == 200
    assert code(await post_signed(client, path, message("e", open_id="k-5"), WEBHOOK_PREVIOUS)) == (
        "CS_AUTH_4034"
    )


async def test_version_1_can_be_refused_once_gateways_sign_version_2(make_client: Any) -> None:
    client = await make_client(webhook_signature_min_version=2)
    raw, headers = signed(message("hello", open_id="mv-1"), TEST_SECRET)
    v1 = await client.post("/webhook", content=raw, headers=headers)
    assert (
        v1.status_code == 403 and code(v1) == "CS_AUTH_4034" and "version 2" in v1.json()["error"]["message"]
    )
    ts = str(int(time.time()))
    v2 = await client.post(
        "/webhook", content=raw, headers=v2_headers(TEST_SECRET, f"{API}/webhook", raw, ts)
    )
    assert v2.status_code == 200, v2.text


# --- item 5 and #17: duplicates are cheap; no analysis when the result would be thrown away --------


async def test_a_duplicate_flood_costs_no_writes_and_no_analysis(
    client: httpx.AsyncClient, db: Database, counting: CountingDialog
) -> None:
    raw, headers = signed(message("how do I reset my password", open_id="d-1", message_id="d-m"), TEST_SECRET)
    first = await client.post(WEBHOOK, content=raw, headers=headers)
    assert first.status_code == 200 and len(counting.analyzed) == 1
    before = await row_counts(db)
    for _ in range(30):
        replay = await client.post(WEBHOOK, content=raw, headers=headers)
        assert replay.status_code == 200 and replay.json() == {**first.json(), "duplicate": True}
    after = await row_counts(db)
    assert len(counting.analyzed) == 1  # no analysis for any duplicate
    # the only write of 30 replays: one message.deduplicated event for the widget's subscription
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == ONE_DEDUP_EVENT
    events = [e.type for e in await outbox(db, first.json()["session_id"])]
    assert events.count("message.deduplicated") == 1
    # the same without a message_id (the signature is the key), through a platform
    raw, headers = signed({"open_id": "d-2", "content": "hello"}, SUB2API_SECRET)
    path = f"{API}/platforms/sub2api/webhook/widget"
    assert (await client.post(path, content=raw, headers=headers)).json()["duplicate"] is False
    before = await row_counts(db)
    for _ in range(10):
        assert (await client.post(path, content=raw, headers=headers)).json()["duplicate"] is True
    after = await row_counts(db)
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == ONE_DEDUP_EVENT
    assert len(counting.analyzed) == 2


async def test_the_dedup_event_goes_out_again_after_its_window(make_client: Any, db: Database) -> None:
    client = await make_client(dedup_event_window_seconds=1)
    raw, headers = signed(message("hello", open_id="w-1", message_id="w-m"), TEST_SECRET)
    await client.post("/webhook", content=raw, headers=headers)
    await client.post("/webhook", content=raw, headers=headers)
    await client.post("/webhook", content=raw, headers=headers)
    async with db.transaction() as tx:  # as if the window had passed
        await tx.execute(text("UPDATE cs_message_dedup SET notified_at = created_at"))
    await asyncio.sleep(1.1)
    await client.post("/webhook", content=raw, headers=headers)
    types = [e.type for e in await outbox(db)]
    assert types.count("message.deduplicated") == 2


async def test_no_analysis_while_a_human_owns_the_conversation(
    client: httpx.AsyncClient, db: Database, counting: CountingDialog
) -> None:
    first = await post_signed(client, "/webhook", message("I want a refund", open_id="h-1", message_id="h-1"))
    assert first.json()["ticket_id"] and len(counting.analyzed) == 1
    for i in range(3):
        later = await post_signed(
            client, "/webhook", message(f"hello? {i}", open_id="h-1", message_id=f"h-{i + 2}")
        )
        assert later.status_code == 200
        assert later.json()["handoff"] is True and later.json()["reply"] == ""
    assert len(counting.analyzed) == 1
    # the platform's own conversation with the same open_id is the bot's: analysed
    await post_signed(
        client, "/platforms/sub2api/webhook/widget", message("hi", open_id="h-1"), SUB2API_SECRET
    )
    assert len(counting.analyzed) == 2


async def test_a_stale_human_owns_hint_still_gets_an_answer(
    client: httpx.AsyncClient, db: Database, counting: CountingDialog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ai_customer_service.webhook import facts

    real = facts.pre_read

    async def stale(*args: Any, **kwargs: Any) -> facts.PreRead:
        read = await real(*args, **kwargs)
        read.human_owns = True  # as if a ticket was closed between the pre-read and the transaction
        return read

    monkeypatch.setattr(facts, "pre_read", stale)
    answer = await post_signed(client, "/webhook", message("how do I reset my password", open_id="s-1"))
    assert answer.status_code == 200 and answer.json()["reply"] and answer.json()["handoff"] is False
    assert len(counting.analyzed) == 1
    async with db.sessionmaker() as tx:
        assert (await tx.execute(select(func.count()).select_from(Session))).scalar_one() == 1


async def test_a_platform_flooding_with_a_customers_open_id_does_not_rate_limit_that_customer(
    make_client: Any,
) -> None:
    client = await make_client(rate_limit_messages=2, rate_limit_window_seconds=60)
    path = "/platforms/sub2api/webhook/widget"
    codes = []
    for i in range(5):
        raw, headers = signed(message(f"spam {i}", open_id="rl-1"), SUB2API_SECRET)
        codes.append((await client.post(path, content=raw, headers=headers)).status_code)
    assert codes == [200, 200, 429, 429, 429]
    raw, headers = signed(message("hello", open_id="rl-1"), TEST_SECRET)
    assert (await client.post("/webhook", content=raw, headers=headers)).status_code == 200


async def test_concurrent_sends_of_one_signed_request_to_several_paths_process_it_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    raw, headers = signed({"open_id": "cc-1", "message_id": "cc-m", "content": "hello"}, TEST_SECRET)
    paths = ["/webhook/widget", "/webhook/telegram", "/webhook/discord", "/webhook/wechat"] * 2
    answers = await asyncio.gather(*(client.post(API + p, content=raw, headers=headers) for p in paths))
    outcomes = sorted(
        (r.status_code, r.json().get("duplicate"), r.json().get("error", {}).get("code")) for r in answers
    )
    processed = [o for o in outcomes if o == (200, False, None)]
    assert len(processed) == 1, outcomes
    winner = next(p for p, r in zip(paths, answers, strict=True) if r.status_code == 200)
    assert all(o[0] == 200 or o[2] == "CS_AUTH_4035" for o in outcomes), outcomes
    assert sum(1 for o in outcomes if o[0] == 200) == paths.count(winner)  # its twin is the duplicate
    async with db.sessionmaker() as tx:
        stmt = select(func.count()).select_from(Session)
        assert (await tx.execute(stmt)).scalar_one() == 1


async def test_a_claimed_signature_whose_dedup_record_was_purged_is_processed_again(
    client: httpx.AsyncClient, db: Database
) -> None:
    raw, headers = signed(message("hello", open_id="pg-1", message_id="pg-m"), TEST_SECRET)
    assert (await client.post(WEBHOOK, content=raw, headers=headers)).json()["duplicate"] is False
    async with db.transaction() as tx:  # as a retention of 0 days would
        await tx.execute(text("DELETE FROM cs_message_dedup"))
    again = await client.post(WEBHOOK, content=raw, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is False
    moved = await client.post(f"{API}/webhook/telegram", content=raw, headers=headers)
    assert moved.status_code == 403 and code(moved) == "CS_AUTH_4035"
