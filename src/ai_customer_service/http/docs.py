"""Interactive API docs served from this process: Swagger UI at ``/docs``, ReDoc at ``/redoc``.

FastAPI's defaults load the Swagger UI and ReDoc scripts from a CDN, so the pages stay blank on a
host without internet access (an air-gapped deployment, a developer on a plane). The scripts come
instead from the pinned ``fastapi-offline`` package (Swagger UI 5, which renders OpenAPI 3.1, and
ReDoc), served under ``/docs/static``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_PATH = "/docs/static"


def _assets_dir() -> Path:
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the fastapi-offline package (API docs assets) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` with local assets (the app is created with docs_url=None)."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(STATIC_PATH, StaticFiles(directory=_assets_dir()), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API",
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API",
            redoc_js_url=f"{STATIC_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_PATH}/favicon.png",
            with_google_fonts=False,
        )
