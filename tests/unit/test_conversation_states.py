"""The conversation life cycle over every (state, action) and every (state, state) pair."""

from __future__ import annotations

import pytest

from ai_customer_service.conversation.states import (
    BOT_STATUSES,
    TRANSITIONS,
    SessionAction,
    SessionStatus,
    bot_owns,
    can_transition,
    next_status,
)
from ai_customer_service.errors import Conflict

S = SessionStatus
A = SessionAction
BOT = (S.IDLE, S.PROCESSING, S.WAITING_FEEDBACK)  # idle and the original's two legacy values

ALLOWED_ACTIONS = {
    **{(s, A.HAND_OFF): S.HANDOFF for s in (*BOT, S.HANDOFF)},
    (S.HANDOFF, A.HAND_BACK): S.IDLE,
    **{(s, A.CLOSE): S.CLOSED for s in (*BOT, S.HANDOFF)},
    **{(s, A.TIME_OUT): S.CLOSED for s in BOT},
}

ALLOWED_PAIRS = {
    *((s, S.HANDOFF) for s in (*BOT, S.HANDOFF)),
    (S.HANDOFF, S.IDLE),
    *((s, S.CLOSED) for s in (*BOT, S.HANDOFF)),
}


@pytest.mark.parametrize("state", list(SessionStatus))
@pytest.mark.parametrize("action", list(SessionAction))
def test_every_state_and_action(state: SessionStatus, action: SessionAction) -> None:
    if (state, action) in ALLOWED_ACTIONS:
        assert next_status(state, action) is ALLOWED_ACTIONS[(state, action)]
        assert next_status(state.value, action) is ALLOWED_ACTIONS[(state, action)]
    else:
        with pytest.raises(Conflict) as info:
            next_status(state, action)
        assert info.value.code == "CS_SES_4091"
        assert info.value.status_code == 409


@pytest.mark.parametrize("current", list(SessionStatus))
@pytest.mark.parametrize("target", list(SessionStatus))
def test_every_pair_of_states(current: SessionStatus, target: SessionStatus) -> None:
    assert can_transition(current, target) is ((current, target) in ALLOWED_PAIRS)


def test_closed_is_terminal_and_nothing_leads_to_the_legacy_states() -> None:
    assert not any(can_transition(S.CLOSED, t) for t in SessionStatus)
    for legacy in (S.PROCESSING, S.WAITING_FEEDBACK):
        assert not any(can_transition(s, legacy) for s in SessionStatus)


def test_the_legacy_states_mean_the_bot_owns_the_conversation() -> None:
    assert frozenset(BOT) == BOT_STATUSES
    assert [s for s in SessionStatus if bot_owns(s)] == list(BOT)


def test_conditional_changes_write_only_rows_that_change() -> None:
    # a ticket reopened while the session is already with a human does not touch the session
    assert TRANSITIONS[A.HAND_OFF].changing == frozenset(BOT)
    assert TRANSITIONS[A.HAND_BACK].changing == frozenset({S.HANDOFF})
    assert TRANSITIONS[A.TIME_OUT].changing == frozenset(BOT)


def test_the_messages_the_api_has_always_given() -> None:
    with pytest.raises(Conflict, match="session is already closed"):
        next_status(S.CLOSED, A.CLOSE)
    with pytest.raises(Conflict, match="session is closed"):
        next_status(S.CLOSED, A.HAND_OFF)
