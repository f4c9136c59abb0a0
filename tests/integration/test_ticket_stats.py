"""GET /tickets/stats on a small fixture with known numbers."""

from __future__ import annotations

from datetime import timedelta

import httpx

from ai_customer_service.auth.models import Role
from ai_customer_service.conversation.models import Feedback
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.engine import Database
from ai_customer_service.ticket.states import Priority
from tests.support.tickets import open_ticket, principal


async def test_stats_numbers(api: httpx.AsyncClient, db: Database) -> None:
    sup = await principal(db, "sup", Role.SUPERVISOR)
    agent = await principal(db, "agent", Role.AGENT)
    t0 = utcnow() - timedelta(days=1)
    minutes = timedelta(minutes=1)
    # assigned after 1, 2, 3, 4 minutes; replied after 5 and 15; resolved after 60
    rated = []
    for i in range(1, 5):
        fields: dict[str, object] = {
            "status": "assigned",
            "assignee_id": agent.id,
            "first_assigned_at": t0 + i * minutes,
        }
        if i <= 2:
            fields.update(status="processing", first_agent_reply_at=t0 + (5 if i == 1 else 15) * minutes)
        if i == 1:
            fields.update(status="resolved", resolved_at=t0 + 60 * minutes, resolution="ok")
        ticket = await open_ticket(
            db, created_at=t0, priority=Priority.P1 if i == 1 else Priority.P2, **fields
        )
        rated.append(ticket.session_id)
    t5 = await open_ticket(db, created_at=t0, channel="wechat", reason="low_confidence")
    async with db.transaction() as tx:  # one rating per session
        for session_id, score in zip([t5.session_id, *rated], (5, 4, 3), strict=False):
            tx.add(Feedback(session_id=session_id, score=score))

    r = await api.get("/tickets/stats", headers=sup.headers)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["total"] == 5
    assert s["by_status"] == {"open": 1, "assigned": 2, "processing": 1, "resolved": 1, "closed": 0}
    assert s["by_priority"] == {"P1": 1, "P2": 4, "P3": 0, "P4": 0}
    assert s["by_channel"] == {"widget": 4, "wechat": 1}
    assert s["handoffs_by_reason"] == {"refund": 4, "low_confidence": 1}
    assert s["time_to_first_assignment_seconds"] == {"count": 4, "mean": 150.0, "p50": 150.0, "p90": 222.0}
    assert s["time_to_first_agent_reply_seconds"] == {"count": 2, "mean": 600.0, "p50": 600.0, "p90": 840.0}
    assert s["time_to_resolution_seconds"] == {"count": 1, "mean": 3600.0, "p50": 3600.0, "p90": 3600.0}
    assert s["csat"] == {"average": 4.0, "count": 3}

    later = (utcnow() + timedelta(minutes=1)).isoformat()
    empty = (await api.get("/tickets/stats", params={"created_from": later}, headers=sup.headers)).json()
    assert empty["total"] == 0 and empty["csat"] == {"average": None, "count": 0}
    assert (await api.get("/tickets/stats", headers=agent.headers)).status_code == 403
