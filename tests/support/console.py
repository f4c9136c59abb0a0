"""Signing in to the agent console over HTTP, as a browser does (form, CSRF token, cookie)."""

from __future__ import annotations

import re

import httpx

from ai_customer_service.auth.models import Role
from ai_customer_service.auth.service import create_principal
from ai_customer_service.auth.sign_in import hash_new_password
from ai_customer_service.db.engine import Database

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


async def make_person(db: Database, name: str, role: Role, password: str = PASSWORD) -> str:
    created = await create_principal(
        db, name=name, role=role, password_hash=await hash_new_password(password)
    )
    return str(created.principal.id)


async def sign_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/console/login")
    assert form.status_code == 200
    return await client.post(
        "/console/login",
        data={"username": name, "password": password, "csrf_token": csrf_of(form.text)},
    )
