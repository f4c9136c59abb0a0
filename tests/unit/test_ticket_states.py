"""The ticket state machine over every (state, action) pair (contract §8)."""

from __future__ import annotations

import pytest

from ai_customer_service.errors import Conflict
from ai_customer_service.ticket.states import Action, TicketStatus, next_status

S = TicketStatus
ALLOWED = {
    (S.OPEN, Action.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, Action.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, Action.START): S.PROCESSING,
    (S.ASSIGNED, Action.RESOLVE): S.RESOLVED,
    (S.PROCESSING, Action.RESOLVE): S.RESOLVED,
    (S.RESOLVED, Action.CLOSE): S.CLOSED,
    (S.RESOLVED, Action.REOPEN): S.OPEN,
    (S.CLOSED, Action.REOPEN): S.OPEN,
}
CODES = {
    Action.ASSIGN: "CS_TKT_4002",
    Action.START: "CS_TICKET_4095",
    Action.RESOLVE: "CS_TICKET_4092",
    Action.CLOSE: "CS_TICKET_4093",
    Action.REOPEN: "CS_TICKET_4094",
}


@pytest.mark.parametrize("state", list(TicketStatus))
@pytest.mark.parametrize("action", list(Action))
def test_every_pair(state: TicketStatus, action: Action) -> None:
    if (state, action) in ALLOWED:
        assert next_status(state, action) is ALLOWED[(state, action)]
    else:
        with pytest.raises(Conflict) as info:
            next_status(state, action)
        assert info.value.code == CODES[action]
        assert info.value.status_code == 409
        assert state.value in info.value.message
