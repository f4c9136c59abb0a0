"""Repeated failed authentication from one client is slowed down and audited (issue #12, item 3).

Before: 500 wrong bearer tokens in 3.6 s were all simply 401, and nothing was audited."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from ai_customer_service.audit.models import AuditLog
from ai_customer_service.config import Settings
from ai_customer_service.db.engine import Database
from ai_customer_service.main import create_app
from tests.conftest import TEST_SECRET
from tests.support.webhooks import WEBHOOK, message, signed

ADMIN_TOKEN = "throttle-admin-token-0123456789abcdef"
LIMIT = 5


@pytest.fixture
async def throttled_app(settings: Settings, db: Database):
    effective = settings.model_copy(
        update={
            "admin_token": ADMIN_TOKEN,
            "auth_failure_limit": LIMIT,
            "auth_failure_window_seconds": 60,
            "auth_failure_block_seconds": 30,
            "auth_failure_exempt_networks": "10.9.0.0/16",
        }
    )
    app = create_app(effective, db=db)
    async with app.router.lifespan_context(app):
        yield app


def client_from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def audit_rows(db: Database) -> list[AuditLog]:
    async with db.sessionmaker() as tx:
        rows = await tx.execute(select(AuditLog).where(AuditLog.object_type == "auth"))
        return list(rows.scalars())


async def test_bad_tokens_are_throttled_then_audited_once(throttled_app: FastAPI, db: Database) -> None:
    bad = {"Authorization": "Bearer not-the-token"}
    good = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with (
        client_from(throttled_app, "192.0.2.10") as attacker,
        client_from(throttled_app, "192.0.2.20") as other,
    ):
        for _ in range(LIMIT):
            assert (await attacker.get("/api/v1/customer-service/me", headers=bad)).status_code == 401
        for _ in range(200):  # a flood while blocked: every answer is a cheap 429
            blocked = await attacker.get("/api/v1/customer-service/me", headers=bad)
            assert blocked.status_code == 429
        assert blocked.json()["error"]["code"] == "CS_AUTH_4291"
        assert 0 < int(blocked.headers["Retry-After"]) <= 30
        assert blocked.headers["x-request-id"]
        # the blocked client's valid credentials wait too; its health checks do not
        assert (await attacker.get("/api/v1/customer-service/me", headers=good)).status_code == 429
        assert (await attacker.get("/actuator/health/live")).status_code == 200
        # another client is not affected
        assert (await other.get("/api/v1/customer-service/me", headers=good)).status_code == 200
    assert await throttled_app.state.auth_throttle.flush(db) == 1
    assert await throttled_app.state.auth_throttle.flush(db) == 0  # nothing new: no row
    rows = await audit_rows(db)
    assert len(rows) == 1
    assert rows[0].action == "throttled" and rows[0].code == "CS_AUTH_4291"
    assert rows[0].details["clients"] == [{"client": "192.0.2.10", "failures": LIMIT}]
    metrics = throttled_app.state.ctx.metrics.exposition().decode()
    assert "cs_auth_throttled_total 201.0" in metrics


async def test_bad_webhook_signatures_count_and_good_ones_do_not(throttled_app: FastAPI) -> None:
    async with client_from(throttled_app, "198.51.100.7") as gateway:
        for i in range(LIMIT * 3):  # a gateway's own traffic never trips the throttle
            raw, headers = signed(message("hello", open_id=f"g-{i}"), TEST_SECRET)
            assert (await gateway.post(WEBHOOK, content=raw, headers=headers)).status_code == 200
    async with client_from(throttled_app, "198.51.100.8") as forger:
        for i in range(LIMIT):
            raw, headers = signed(message("hello", open_id=f"f-{i}"), "wrong-secret")
            assert (await forger.post(WEBHOOK, content=raw, headers=headers)).status_code == 403
        raw, headers = signed(message("hello", open_id="f-last"), TEST_SECRET)
        assert (await forger.post(WEBHOOK, content=raw, headers=headers)).status_code == 429


async def test_an_exempt_gateway_network_is_never_blocked(throttled_app: FastAPI) -> None:
    async with client_from(throttled_app, "10.9.3.4") as shared_nat:
        for _ in range(LIMIT * 2):
            response = await shared_nat.get(
                "/api/v1/customer-service/me", headers={"Authorization": "Bearer x"}
            )
            assert response.status_code == 401


async def test_ipv6_clients_are_grouped_by_64(throttled_app: FastAPI) -> None:
    for i in range(LIMIT):
        async with client_from(throttled_app, f"2001:db8:1:2::{i + 1}") as rotating:
            await rotating.get("/api/v1/customer-service/me", headers={"Authorization": "Bearer x"})
    async with client_from(throttled_app, "2001:db8:1:2::ffff") as same_block:
        assert (await same_block.get("/api/v1/customer-service/me")).status_code == 429


def test_audit_rows_never_exceed_one_per_flush(settings: Settings) -> None:
    from ai_customer_service.http.auth_throttle import AUDIT_SAMPLE, AuthThrottle

    throttle = AuthThrottle(limit=1, window_seconds=60, block_seconds=60)
    for i in range(5000):
        throttle.failed(f"203.0.{i // 250}.{i % 250}")
    assert throttle.pending_total == 5000 and len(throttle.pending) == AUDIT_SAMPLE
