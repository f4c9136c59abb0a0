"""Back-office authentication (contract §10)."""

from __future__ import annotations

import httpx

from ai_customer_service.auth.models import Role
from ai_customer_service.auth.service import revoke_principal
from ai_customer_service.db.engine import Database
from tests.integration.conftest import MakeClient
from tests.support.tickets import principal


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "CS_AUTH_4011"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_bearer_token_me_and_401s(api: httpx.AsyncClient, db: Database) -> None:
    alice = await principal(db, "alice", Role.AGENT)
    me = await api.get("/me", headers=alice.headers)
    assert me.status_code == 200
    assert me.json() == {"id": str(alice.id), "name": "alice", "role": "agent", "auth": "token"}

    assert_401(await api.get("/me"))
    assert_401(await api.get("/me", headers={"Authorization": "Bearer cst_nope"}))
    assert_401(await api.get("/me", headers={"Authorization": f"Basic {alice.token}"}))
    # the original's headers are not trusted unless header mode is on
    forged = {"X-CS-Actor-ID": "mallory", "X-CS-Actor-Role": "admin"}
    assert_401(await api.get("/me", headers=forged))
    assert_401(await api.get("/principals", headers=forged))


async def test_revoked_token_is_refused_and_last_use_is_recorded(
    api: httpx.AsyncClient, db: Database
) -> None:
    bob = await principal(db, "bob", Role.SUPERVISOR)
    assert (await api.get("/me", headers=bob.headers)).status_code == 200
    await revoke_principal(db, "bob")
    assert_401(await api.get("/me", headers=bob.headers))


async def test_role_not_allowed_is_403(api: httpx.AsyncClient, db: Database) -> None:
    agent = await principal(db, "agent1", Role.AGENT)
    response = await api.get("/principals", headers=agent.headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "CS_AUTH_4001"
    assert (await api.get("/audit", headers=agent.headers)).status_code == 403


async def test_bootstrap_admin_token_manages_principals(make_client: MakeClient, db: Database) -> None:
    api = await make_client(admin_token="bootstrap-secret-1")
    admin = {"Authorization": "Bearer bootstrap-secret-1"}
    assert_401(await api.get("/principals", headers={"Authorization": "Bearer bootstrap-secret-2"}))

    created = await api.post(
        "/principals", json={"name": "carol", "role": "agent", "capacity": 3}, headers=admin
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["token"].startswith("cst_") and body["token_prefix"] == body["token"][:12]
    carol = {"Authorization": f"Bearer {body['token']}"}
    assert (await api.get("/me", headers=carol)).json()["name"] == "carol"

    dup = await api.post("/principals", json={"name": "carol", "role": "agent"}, headers=admin)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "CS_AUTH_4091"
    bad = await api.post("/principals", json={"name": "dave", "role": "boss"}, headers=admin)
    assert bad.status_code == 400

    listed = (await api.get("/principals", headers=admin)).json()["items"]
    assert [p["name"] for p in listed] == ["carol"]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is not None

    # agents set themselves away; only staff change capacity or someone else's availability
    away = await api.put(f"/principals/{body['id']}/availability", json={"available": False}, headers=carol)
    assert away.status_code == 200 and away.json()["available"] is False
    cap = await api.put(f"/principals/{body['id']}/availability", json={"capacity": 9}, headers=carol)
    assert cap.status_code == 403
    cap = await api.put(f"/principals/{body['id']}/availability", json={"capacity": 9}, headers=admin)
    assert cap.json()["capacity"] == 9

    revoked = await api.post(f"/principals/{body['id']}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert_401(await api.get("/me", headers=carol))
    missing = await api.post("/principals/00000000-0000-0000-0000-000000000001/revoke", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "CS_AUTH_4041"


async def test_trusted_header_mode_when_enabled(make_client: MakeClient, db: Database) -> None:
    api = await make_client(auth_trusted_headers=True)
    headers = {"X-CS-Actor-ID": "gateway-sup", "X-CS-Actor-Role": "supervisor"}
    me = await api.get("/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "supervisor" and me.json()["auth"] == "trusted_headers"
    again = await api.get("/me", headers=headers)
    assert again.json()["id"] == me.json()["id"]  # mirrored once as a principal
    assert_401(await api.get("/me", headers={"X-CS-Actor-ID": "x", "X-CS-Actor-Role": "root"}))
    # a bearer token still wins and is still checked
    assert_401(await api.get("/me", headers={**headers, "Authorization": "Bearer cst_bad"}))


async def test_gateway_actor_ids_name_principals_wherever_one_is_named(
    make_client: MakeClient, db: Database
) -> None:
    """The original's assign?agent_id=li.lei in header mode (issue #15)."""
    from tests.support.tickets import open_ticket

    api = await make_client(auth_trusted_headers=True)
    sup = {"X-CS-Actor-ID": "zhang.wei", "X-CS-Actor-Role": "supervisor"}
    first = await open_ticket(db)
    assigned = await api.post(f"/tickets/{first.id}/assign?agent_id=li.lei", headers=sup)
    assert assigned.status_code == 200, assigned.text
    admin = {"X-CS-Actor-ID": "root", "X-CS-Actor-Role": "admin"}
    listed = (await api.get("/principals", headers=admin)).json()["items"]
    mirrored = {p["name"]: p for p in listed}
    assert mirrored["li.lei"]["role"] == "agent"
    assert assigned.json()["assignee_id"] == mirrored["li.lei"]["id"]
    # li.lei, arriving through the gateway later, is that principal and may resolve the ticket
    me = await api.get("/me", headers={"X-CS-Actor-ID": "li.lei", "X-CS-Actor-Role": "agent"})
    assert me.json()["id"] == mirrored["li.lei"]["id"]
    mine = await api.get("/tickets", params={"assignee": "li.lei"}, headers=sup)
    assert [t["id"] for t in mine.json()["items"]] == [str(first.id)]
    # any printable id up to 64 characters; control characters or 65 characters are refused
    second = await open_ticket(db)
    assert (
        await api.post(f"/tickets/{second.id}/assign", json={"agent_id": "李雷"}, headers=sup)
    ).status_code == 200
    assert_401(await api.get("/me", headers={"X-CS-Actor-ID": "x" * 65, "X-CS-Actor-Role": "agent"}))
    assert_401(await api.get("/me", headers={"X-CS-Actor-ID": "a\x01b", "X-CS-Actor-Role": "agent"}))
    too_long = await api.post(f"/tickets/{second.id}/assign?agent_id={'y' * 65}", headers=sup)
    assert too_long.status_code == 400


async def test_with_bearer_tokens_an_unknown_name_is_not_provisioned(
    api: httpx.AsyncClient, db: Database
) -> None:
    from tests.support.tickets import open_ticket

    sup = await principal(db, "sup-b", Role.SUPERVISOR)
    agent = await principal(db, "agent.b")
    ticket = await open_ticket(db)
    unknown = await api.post(f"/tickets/{ticket.id}/assign?agent_id=nobody", headers=sup.headers)
    # renamed (one ticket prefix): the old spelling comes along in ``aliases`` (CHANGELOG)
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "CS_TICKET_4003"
    assert unknown.json()["error"]["aliases"] == ["CS_TKT_4003"]
    by_name = await api.post(f"/tickets/{ticket.id}/assign?agent_id=agent.b", headers=sup.headers)
    assert by_name.status_code == 200 and by_name.json()["assignee_id"] == str(agent.id)
