"""CORS for the public widget API, decided per request by the site's allowed origins.

The widget routes check the request's ``Origin`` against the site (``router.widget_site``) and,
when it is allowed, leave it in ``request.state.widget_cors_origin``; this middleware then adds
``Access-Control-Allow-Origin`` for exactly that origin to whatever response follows — errors
included, so the widget can read their ``CS_*`` codes. A refused origin gets no CORS headers, so a
browser on another site cannot read anything.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATE_KEY = "widget_cors_origin"
ALLOWED_HEADERS = "Content-Type, X-CS-Visitor-Token, Last-Event-ID, X-Request-ID"
EXPOSED_HEADERS = "Retry-After, X-Request-ID"


class WidgetCorsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                origin = state.get(STATE_KEY)
                if origin:
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"access-control-allow-origin", origin.encode("latin-1")),
                        (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
                        (b"vary", b"Origin"),
                    ]
            await send(message)

        await self.app(scope, receive, send_wrapper)
