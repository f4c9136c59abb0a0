"""The console's HTTP plumbing: the session cookie, CSRF tokens, page rendering and its errors.

CSRF: a signed-in form carries ``csrf_token`` = HMAC-SHA256(session token, "console-csrf"), which
only a page served to the cookie's holder can know; the sign-in form (no session yet) uses a
double-submit cookie (``cs_console_presign``, SameSite=Strict) whose value the form repeats. Every
state-changing console request without the right token is refused with 403 ``CS_AUTH_4036``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ai_customer_service.auth import sign_in
from ai_customer_service.auth.sign_in import ConsoleIdentity
from ai_customer_service.console.i18n import LANG_COOKIE, choose_language, translator, value_labeller
from ai_customer_service.errors import AUTH_CSRF, Forbidden
from ai_customer_service.http.deps import context_of

SESSION_COOKIE = "cs_console_session"
PRESIGN_COOKIE = "cs_console_presign"
CSRF_FIELD = "csrf_token"
CSRF_CODE = AUTH_CSRF
PATH = "/console"
HERE = Path(__file__).parent

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class SignInRequired(Exception):
    """No valid console session: pages redirect to the sign-in form, fragments and streams get 401."""


class CsrfRejected(Forbidden):
    def __init__(self) -> None:
        super().__init__("missing or invalid CSRF token; reload the page and try again", CSRF_CODE)


def csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"console-csrf", hashlib.sha256).hexdigest()


def language(request: Request) -> str:
    return choose_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def cookie_secure(request: Request) -> bool:
    return context_of(request).settings.console_cookie_is_secure


async def identity(request: Request) -> ConsoleIdentity:
    """The signed-in person of this request (a dependency); :class:`SignInRequired` otherwise."""
    cached = getattr(request.state, "console_identity", None)
    if isinstance(cached, ConsoleIdentity):
        return cached
    token = request.cookies.get(SESSION_COOKIE, "")
    found = await sign_in.identify(context_of(request).db, token) if token else None
    if found is None:
        raise SignInRequired()
    request.state.console_identity = found
    request.state.actor = found.actor
    return found


async def check_csrf(request: Request, given: str | None) -> None:
    """For a signed-in, state-changing request: the form's token must match the session's."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or not given or not hmac.compare_digest(csrf_for(token), given):
        raise CsrfRejected()


def check_presign_csrf(request: Request, given: str | None) -> None:
    expected = request.cookies.get(PRESIGN_COOKIE, "")
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise CsrfRejected()


def new_presign_token() -> str:
    return secrets.token_urlsafe(24)


def since(value: datetime | None, lang: str) -> str:
    """A short human duration from ``value`` until now ("5 min", "2 h 10 min", "3 d")."""
    if value is None:
        return ""
    return duration((datetime.now(UTC) - value).total_seconds(), lang)


def duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "–"
    s = max(0, int(seconds))
    zh = lang == "zh"
    if s < 60:
        return f"{s} 秒" if zh else f"{s} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} 分钟" if zh else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} 小时 {minutes} 分" if zh else f"{hours} h {minutes} min"
    return f"{hours // 24} 天" if zh else f"{hours // 24} d"


def render(
    request: Request,
    template: str,
    *,
    who: ConsoleIdentity | None = None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    lang = language(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    page = templates.get_template(template).render(
        request=request,
        lang=lang,
        t=translator(lang),
        label=value_labeller(lang),
        who=who,
        csrf=csrf_for(token) if who is not None and token else "",
        since=lambda v: since(v, lang),
        duration=lambda v: duration(v, lang),
        quote=quote,
        **values,
    )
    return HTMLResponse(page, status_code=status_code, headers=SECURITY_HEADERS)


def redirect(url: str, status_code: int = 303) -> Response:
    return Response(status_code=status_code, headers={"Location": url, "Cache-Control": "no-store"})
