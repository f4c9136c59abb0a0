"""Bad input on back-office routes is a 400 (or the resource's 404), never a 500: NUL characters,
extreme pages and dates, malformed ids; plus ``/kb/{id_or_key}`` and the order of ``/audit``.

Every case ran into a database error (500 ``CS_SYS_5001``) on PostgreSQL or on both stores before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from ai_customer_service.audit import repository as audit_rows
from ai_customer_service.auth.models import Role
from ai_customer_service.conversation.models import Session
from ai_customer_service.db.engine import Database
from tests.conftest import TEST_SECRET
from tests.integration.conftest import MakeClient
from tests.support.tickets import Who, open_ticket, principal
from tests.support.webhooks import signed

ADMIN_TOKEN = "hygiene-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NUL = "a\u0000b"


@pytest.fixture
async def client(make_client: MakeClient) -> httpx.AsyncClient:
    return await make_client(admin_token=ADMIN_TOKEN)


@pytest.fixture
async def sup(db: Database) -> Who:
    return await principal(db, "sup", Role.SUPERVISOR)


async def idle_session(db: Database) -> uuid.UUID:
    async with db.transaction() as tx:
        session = Session(channel="widget", open_id=uuid.uuid4().hex, status="idle")
        tx.add(session)
        await tx.flush()
        return session.id


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert "error" in body, body
    return dict(body["error"])


def assert_invalid(response: httpx.Response, field: str, message: str) -> None:
    assert response.status_code == 400, response.text
    err = error(response)
    assert err["code"] == "CS_REQ_4001", err
    assert any(d["field"] == field and message in d["message"] for d in err.get("details", [])), err
    assert message in err["message"]  # the top-level message names the first problem


async def test_validation_messages_say_what_is_wrong(client: httpx.AsyncClient, sup: Who) -> None:
    bad_json = await client.post(
        "/kb", content=b'{"title": ', headers={**sup.headers, "Content-Type": "application/json"}
    )
    assert_invalid(bad_json, "", "request body is not valid JSON")
    no_body = await client.post("/kb/search", headers=sup.headers)
    assert_invalid(no_body, "", "a JSON request body is required")
    missing = await client.post("/kb", json={"answer": "a"}, headers=sup.headers)
    assert_invalid(missing, "title", "Field required")


def assert_not_found(response: httpx.Response, code: str) -> None:
    assert response.status_code == 404, response.text
    err = error(response)
    assert err["code"] == code and "details" not in err, err


# --- 1. NUL characters ----------------------------------------------------------------------------


async def test_nul_in_bodies_is_400(client: httpx.AsyncClient, db: Database, sup: Who) -> None:
    sid = await idle_session(db)
    ticket = await open_ticket(db)
    entry = (await client.post("/kb", json={"title": "Refunds", "answer": "7 days"}, headers=ADMIN)).json()
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/kb", {"title": NUL, "answer": "x"}, "title"),
        ("POST", "/kb", {"title": "t", "answer": NUL}, "answer"),
        ("POST", "/kb", {"title": "t", "answer": "x", "questions": ["ok", NUL]}, "questions"),
        ("POST", "/kb", {"title": "t", "answer": "x", "tags": [NUL]}, "tags"),
        ("POST", "/kb", {"title": "t", "answer": "x", "locale": NUL}, "locale"),
        ("PUT", f"/kb/{entry['id']}", {"title": "Refunds", "answer": NUL, "version": 1}, "answer"),
        ("POST", "/kb/search", {"query": NUL}, "query"),
        ("POST", f"/sessions/{sid}/handoff", {"reason": NUL}, "reason"),
        ("POST", f"/tickets/{ticket.id}/notes", {"body": NUL}, "body"),
        ("POST", f"/tickets/{ticket.id}/reply", {"content": NUL}, "content"),
        ("POST", f"/tickets/{ticket.id}/resolve", {"resolution": NUL}, "resolution"),
        ("POST", "/principals", {"name": NUL, "role": "agent"}, "name"),
        ("POST", "/outbox/replay", {"destination": NUL}, "destination"),
    ]
    for method, path, body, field in cases:
        response = await client.request(method, path, json=body, headers=ADMIN)
        assert_invalid(response, field, "must not contain NUL characters")
    listed = (await client.get("/kb", headers=ADMIN)).json()
    assert [e["title"] for e in listed["items"]] == ["Refunds"]  # nothing else was stored


async def test_nul_in_query_parameters_is_400(client: httpx.AsyncClient, db: Database) -> None:
    ticket = await open_ticket(db)
    cases = [
        ("GET", "/tickets?channel=a%00b", "channel"),
        ("GET", "/kb?q=a%00b", "q"),
        ("GET", "/audit?object_id=a%00b", "object_id"),
        ("GET", "/audit?object_type=a%00b", "object_type"),
        ("GET", "/outbox/events?destination=a%00b", "destination"),
        ("POST", f"/tickets/{ticket.id}/resolve?resolution=a%00b", "resolution"),
    ]
    for method, path, field in cases:
        response = await client.request(method, path, headers=ADMIN)
        assert_invalid(response, field, "must not contain NUL characters")


async def test_signed_feedback_comment_with_nul_or_a_lone_surrogate_is_400(
    client: httpx.AsyncClient, db: Database
) -> None:
    sid = await idle_session(db)
    path = f"/sessions/{sid}/feedback"
    for raw_body, message in (
        (b'{"score": 3, "comment": "a\\u0000b"}', "comment must not contain NUL characters"),
        (b'{"score": 3, "comment": "a\\ud800b"}', "comment must be valid Unicode text"),
    ):
        raw, headers = signed(raw_body, TEST_SECRET)
        response = await client.post(path, content=raw, headers=headers)
        assert response.status_code == 400, response.text
        assert error(response)["code"] == "CS_REQ_4001" and message in error(response)["message"]
    raw, headers = signed({"score": 3, "comment": "fine"}, TEST_SECRET)
    assert (await client.post(path, content=raw, headers=headers)).status_code == 200


async def test_import_with_nul_is_an_invalid_file(client: httpx.AsyncClient) -> None:
    lines = [
        b'{"id": "ok", "title": "Fine", "answer": "yes"}',
        b'{"id": "bad", "title": "a\\u0000b", "answer": "no"}',
    ]
    response = await client.post(
        "/kb/import", content=b"\n".join(lines), headers={**ADMIN, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 400, response.text
    err = error(response)
    assert err["code"] == "CS_KB_4004"
    assert "entry 2 ('bad'): title must not contain NUL characters" in err["message"]
    assert (await client.get("/kb", headers=ADMIN)).json()["total"] == 0  # all or nothing


# --- 2. extreme pages and dates ------------------------------------------------------------------


async def test_extreme_pages_are_400(client: httpx.AsyncClient, db: Database) -> None:
    sid = await idle_session(db)
    huge = 9223372036854775807
    for path in ("/tickets", "/kb", "/outbox/events", f"/sessions/{sid}/messages", "/audit"):
        assert_invalid(await client.get(path, params={"page": huge}, headers=ADMIN), "page", "less than")
        last = await client.get(path, params={"page": 1_000_000}, headers=ADMIN)
        assert last.status_code == 200 and last.json()["items"] == [], last.text


async def test_dates_outside_utc_are_400(client: httpx.AsyncClient, db: Database) -> None:
    await open_ticket(db)
    for path in ("/tickets", "/tickets/stats"):
        for name, value in (
            ("created_from", "0001-01-01T00:00:00+14:00"),
            ("created_to", "9999-12-31T23:59:59-14:00"),
        ):
            response = await client.get(path, params={name: value}, headers=ADMIN)
            assert_invalid(response, name, "out of range")
        naive = await client.get(path, params={"created_from": "2026-01-01T00:00:00"}, headers=ADMIN)
        assert_invalid(naive, "created_from", "time zone")
    # the extremes that do exist in UTC are fine, on both stores
    wide = {"created_from": "0001-01-01T00:00:00Z", "created_to": "9999-12-31T23:59:59Z"}
    response = await client.get("/tickets", params=wide, headers=ADMIN)
    assert response.status_code == 200 and response.json()["total"] == 1
    stats = await client.get("/tickets/stats", params=wide, headers=ADMIN)
    assert stats.status_code == 200 and stats.json()["total"] == 1
    # another zone still means the same instant
    soon = (datetime.now(UTC) + timedelta(hours=1)).astimezone(timezone(timedelta(hours=14)))
    until = await client.get("/tickets", params={"created_to": soon.isoformat()}, headers=ADMIN)
    since = await client.get("/tickets", params={"created_from": soon.isoformat()}, headers=ADMIN)
    assert (until.json()["total"], since.json()["total"]) == (1, 0)


async def test_kb_version_beyond_the_column_is_400(client: httpx.AsyncClient) -> None:
    entry = (await client.post("/kb", json={"title": "T", "answer": "A"}, headers=ADMIN)).json()
    response = await client.put(
        f"/kb/{entry['id']}", json={"title": "T", "answer": "B", "version": 2**63 - 1}, headers=ADMIN
    )
    assert_invalid(response, "version", "less than")


# --- 3. malformed ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["abc", "not a uuid!", "a%00b", "x" * 300])
async def test_malformed_ids_are_the_resources_404(client: httpx.AsyncClient, bad: str) -> None:
    for method, path, body, code in (
        ("GET", f"/kb/{bad}", None, "CS_KB_4001"),
        ("PUT", f"/kb/{bad}", {"title": "t", "answer": "a", "version": 1}, "CS_KB_4001"),
        ("DELETE", f"/kb/{bad}", None, "CS_KB_4001"),
        ("POST", f"/kb/{bad}/publish", None, "CS_KB_4001"),
        ("GET", f"/outbox/events/{bad}", None, "CS_OUTBOX_4041"),
        ("POST", f"/outbox/events/{bad}/replay", None, "CS_OUTBOX_4041"),
        ("POST", f"/principals/{bad}/revoke", None, "CS_AUTH_4041"),
        ("PUT", f"/principals/{bad}/availability", {"available": True}, "CS_AUTH_4041"),
    ):
        assert_not_found(await client.request(method, path, json=body, headers=ADMIN), code)


async def test_unknown_ids_keep_their_404(client: httpx.AsyncClient) -> None:
    unknown = uuid.uuid4()
    assert_not_found(await client.get(f"/kb/{unknown}", headers=ADMIN), "CS_KB_4001")
    assert_not_found(await client.get(f"/outbox/events/{unknown}", headers=ADMIN), "CS_OUTBOX_4041")
    assert_not_found(await client.post(f"/principals/{unknown}/revoke", headers=ADMIN), "CS_AUTH_4041")


# --- 4. /kb/{id_or_key} --------------------------------------------------------------------------


async def test_kb_entries_are_addressed_by_id_or_key(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/kb",
        json={"key": "api-key-create", "title": "Create an API key", "answer": "Settings."},
        headers=ADMIN,
    )
    entry = created.json()
    by_key = await client.get("/kb/api-key-create", headers=ADMIN)
    assert by_key.status_code == 200 and by_key.json() == entry
    by_id = await client.get(f"/kb/{entry['id']}", headers=ADMIN)
    assert by_id.json() == entry

    update = {"title": "Create an API key", "answer": "Settings → API.", "version": 1}
    updated = await client.put("/kb/api-key-create", json=update, headers=ADMIN)
    assert updated.status_code == 200 and updated.json()["version"] == 2
    published = await client.post("/kb/api-key-create/publish", headers=ADMIN)
    assert published.status_code == 200 and published.json()["status"] == "published"

    # a key that happens to look like a UUID is still reachable (an id would win)
    uuid_key = str(uuid.uuid4())
    odd = (
        await client.post("/kb", json={"key": uuid_key, "title": "Odd", "answer": "x"}, headers=ADMIN)
    ).json()
    assert odd["id"] != uuid_key
    assert (await client.get(f"/kb/{uuid_key}", headers=ADMIN)).json()["id"] == odd["id"]

    assert (await client.delete("/kb/api-key-create", headers=ADMIN)).status_code == 204
    assert_not_found(await client.get("/kb/api-key-create", headers=ADMIN), "CS_KB_4001")
    assert_not_found(await client.get(f"/kb/{entry['id']}", headers=ADMIN), "CS_KB_4001")


# --- 5. /audit: newest first, paged --------------------------------------------------------------


async def test_audit_is_newest_first_and_paged(client: httpx.AsyncClient, db: Database, sup: Who) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.transaction() as tx:
        for n in range(5):
            row = audit_rows.record(
                tx, object_type="probe", object_id=f"p{n}", action="poke", actor_type="system"
            )
            row.created_at = start + timedelta(minutes=n)
    probes = {"object_type": "probe"}

    async def objects(**params: Any) -> list[str]:
        response = await client.get("/audit", params={**probes, **params}, headers=sup.headers)
        assert response.status_code == 200, response.text
        return [item["object_id"] for item in response.json()["items"]]

    assert await objects(limit=3) == ["p4", "p3", "p2"]  # the newest rows, newest first
    assert await objects(page_size=3, page=2) == ["p1", "p0"]
    assert await objects(order="asc", page_size=2) == ["p0", "p1"]
    assert await objects(order="asc", page_size=2, page=3) == ["p4"]
    assert await objects(unknown_param="ignored") == ["p4", "p3", "p2", "p1", "p0"]
    body = (await client.get("/audit", params={**probes, "page_size": 2}, headers=sup.headers)).json()
    assert (body["total"], body["page"], body["page_size"]) == (5, 1, 2)
    assert_invalid(await client.get("/audit", params={"order": "sideways"}, headers=sup.headers), "order", "")
    assert_invalid(
        await client.get("/audit", params={"page_size": 1001}, headers=sup.headers), "page_size", ""
    )


# --- 6. request-body messages --------------------------------------------------------------------


async def test_a_body_that_is_not_an_object_says_so(client: httpx.AsyncClient, db: Database) -> None:
    ticket = await open_ticket(db)
    for method, path in (("POST", "/kb"), ("POST", f"/tickets/{ticket.id}/notes"), ("POST", "/principals")):
        for raw in (b"[]", b'"text"', b"3"):
            response = await client.request(
                method, path, content=raw, headers={**ADMIN, "Content-Type": "application/json"}
            )
            assert_invalid(response, "", "request body must be a JSON object")
