"""Every ``CS_*`` code is a constant in ``errors.py``: no stray literal in the source, no duplicate
value, and the contract's and the runbook's codes keep their exact spelling."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import httpx
from fastapi import FastAPI

from ai_customer_service import errors
from ai_customer_service.http.errors import install_error_handlers

SRC = Path(errors.__file__).parent
CODE = re.compile(r"CS_[A-Z]+_\d{3,4}")

# contract §12 and ../shared/seed/RUNBOOK.md: these spellings are what upstreams match on
CONTRACT = {
    "CS_HTTP_405",
    *(f"CS_REQ_{n}" for n in (4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008, 4009, 4010, 4131)),
    "CS_AUTH_4001",
    *(f"CS_AUTH_{n}" for n in (4031, 4032, 4033, 4034)),
    "CS_SES_4001",
    "CS_SES_4002",
    "CS_TICKET_4001",
    "CS_TKT_4002",
    "CS_TICKET_4092",
    "CS_TICKET_4093",
    "CS_KB_4001",
    "CS_KB_4002",
    "CS_LLM_5001",
    "CS_LLM_5002",
    "CS_PLATFORM_4041",
    "CS_SYS_5001",
}


def _declared() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(errors).items()
        if name.isupper() and isinstance(value, str) and CODE.fullmatch(value)
    }


def test_codes_are_unique_and_the_contracts_are_kept() -> None:
    declared = _declared()
    assert len(set(declared.values())) == len(declared), "two constants with one code"
    assert set(declared.values()) >= CONTRACT
    assert errors.all_codes() == set(declared.values()) | {"CS_TICKET_4091", "CS_TKT_4003"}


def test_one_ticket_prefix_but_the_contracts_spelling() -> None:
    tickets = {v for k, v in _declared().items() if k.startswith("TICKET_")}
    assert {v for v in tickets if not v.startswith("CS_TICKET_")} == {"CS_TKT_4002"}
    assert errors.ALIASES[errors.TICKET_AGENT_NOT_ACTIVE] == ("CS_TKT_4003",)


def test_every_code_literal_in_the_source_is_declared() -> None:
    known = errors.all_codes() | {errors.AUTH_SIGNATURE_PREFIX}
    stray = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for code in CODE.findall(node.value):
                    if code not in known:
                        stray.append(f"{path.relative_to(SRC)}:{node.lineno} {code}")
    assert stray == []


async def test_the_envelope_carries_a_renamed_codes_old_spelling() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/{code}")
    async def fail(code: str) -> None:
        raise errors.Conflict("no", code)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assigned = (await client.get(f"/{errors.TICKET_ASSIGN_CONFLICT}")).json()["error"]
        resolved = (await client.get(f"/{errors.TICKET_RESOLVE_CONFLICT}")).json()["error"]
    assert assigned["code"] == "CS_TKT_4002" and assigned["aliases"] == ["CS_TICKET_4091"]
    assert resolved["code"] == "CS_TICKET_4092" and "aliases" not in resolved
