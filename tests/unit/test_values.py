import uuid

import pytest

from ai_customer_service.errors import NotFound
from ai_customer_service.values import parse_uuid, require_uuid, unstorable_reason


def test_parse_uuid_accepts_uuids_and_refuses_anything_else() -> None:
    value = uuid.uuid4()
    assert parse_uuid(str(value)) == value
    assert parse_uuid(value.hex) == value
    for raw in ("", "42", "not-a-uuid", str(value) + "x"):
        assert parse_uuid(raw) is None


def test_require_uuid_makes_a_malformed_id_the_resource_404() -> None:
    value = uuid.uuid4()
    assert require_uuid(str(value), "ticket", "CS_TICKET_4001") == value
    with pytest.raises(NotFound) as caught:
        require_uuid("nope", "ticket", "CS_TICKET_4001")
    assert caught.value.code == "CS_TICKET_4001"
    assert str(caught.value) == "ticket not found"


def test_unstorable_reason_names_nul_and_lone_surrogates() -> None:
    assert unstorable_reason("hello 你好") is None
    assert unstorable_reason("a\x00b") == "must not contain NUL characters"
    assert unstorable_reason("\ud800") == "must be valid Unicode text (no unpaired surrogates)"
