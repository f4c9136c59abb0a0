"""Running the service: config → port → database → migrations → HTTP server and workers.

Every start-up failure ends the process with exit code 1 and one line naming the cause, never a
traceback. SIGTERM/SIGINT: readiness goes DOWN, in-flight requests finish (up to
``AI_CS_SHUTDOWN_GRACE_SECONDS``), workers stop, the pool is closed, exit 0.
"""

from __future__ import annotations

import errno
import socket
from types import FrameType

import uvicorn

from ai_customer_service.config import Settings, check_platform_rules, check_production_rules
from ai_customer_service.context import AppContext
from ai_customer_service.db.connect import check_database, describe_db_error
from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import upgrade
from ai_customer_service.errors import StartupError
from ai_customer_service.logs import get_logger
from ai_customer_service.main import create_app

log = get_logger(__name__)


def bind_socket(settings: Settings) -> socket.socket:
    host = settings.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, settings.port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"listen tcp {settings.addr}: bind: address already in use; stop the other process "
                f"or set AI_CS_ADDR to another port (e.g. :{settings.port + 1})"
            ) from exc
        raise StartupError(f"listen tcp {settings.addr}: {exc.strerror}; check AI_CS_ADDR") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn, with readiness turned DOWN before the listener closes."""

    def __init__(self, config: uvicorn.Config, ctx: AppContext) -> None:
        super().__init__(config)
        self._ctx = ctx

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._ctx.draining = True
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals after shutdown (exit status 128+n); a clean drain
        # is a normal exit for us, as the contract asks.
        self._captured_signals.clear()


async def prepare_database(settings: Settings) -> Database:
    """Connect, check and migrate; raises :class:`StartupError` with the runbook's diagnosis."""
    try:
        db = Database(settings)
    except OSError as exc:  # the embedded store's AI_CS_DATA_DIR cannot be created
        raise StartupError(
            f"cannot use AI_CS_DATA_DIR {settings.data_dir}: {exc.strerror or exc}; "
            "point it at a writable directory"
        ) from exc
    try:
        await check_database(db)
        try:
            await upgrade(db.engine)
        except Exception as exc:
            raise StartupError("migration failed: " + describe_db_error(exc, settings)) from exc
    except BaseException:
        await db.dispose()
        raise
    return db


async def load_demo_kb(db: Database) -> None:
    """``make run``: publish the bundled bilingual demo KB into an empty knowledge base."""
    from ai_customer_service.knowledge import service as knowledge
    from ai_customer_service.knowledge.importing import DEMO_KB, load_file

    count, _ = await knowledge.fingerprint(db)
    if count == 0:
        counts = await knowledge.import_entries(db, load_file(DEMO_KB), actor_id="demo")
        log.info("demo knowledge base loaded", **counts)


async def run(settings: Settings) -> int:
    check_production_rules(settings)
    check_platform_rules(settings)
    sock = bind_socket(settings)
    try:
        db = await prepare_database(settings)
    except BaseException:
        sock.close()
        raise
    if settings.demo_kb:
        await load_demo_kb(db)
    app = create_app(settings, db=db)
    ctx: AppContext = app.state.ctx
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="none",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    server = _Server(config, ctx)
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
        await db.dispose()
    return 0 if server.started else 1


def serve(settings: Settings) -> int:
    import uvloop

    return uvloop.run(run(settings))
