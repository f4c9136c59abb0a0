"""Running the service: config → port → database → migrations → HTTP server and workers.

Every start-up failure ends the process with exit code 1 and one line naming the cause, never a
traceback. SIGTERM/SIGINT: readiness goes DOWN, in-flight requests finish (up to
``AI_CS_SHUTDOWN_GRACE_SECONDS``), workers stop, the pool is closed, exit 0.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import shutil
import signal
import socket
from types import FrameType

import uvicorn

from ai_customer_service.config import Settings, check_platform_rules, check_production_rules
from ai_customer_service.context import AppContext
from ai_customer_service.db.adopt import AdoptionError
from ai_customer_service.db.connect import check_database, describe_db_error
from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import upgrade
from ai_customer_service.errors import StartupError
from ai_customer_service.http.metrics import enable_multiprocess, process_exited, use_single_process
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

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # Everything built so far (app, models, caches, the KB index) lives as long as the process:
        # move it out of the collector's reach. A full collection of it took ~65 ms, an event-loop
        # stall every so often that showed up as p99 latency.
        gc.collect()
        gc.freeze()

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
    note_unused_settings(settings)
    try:
        await check_database(db)
        try:
            await upgrade(db.engine)
        except AdoptionError as exc:
            raise StartupError(f"cannot adopt the original's database: {exc}") from exc
        except Exception as exc:
            raise StartupError("migration failed: " + describe_db_error(exc, settings)) from exc
    except BaseException:
        await db.dispose()
        raise
    return db


def note_unused_settings(settings: Settings) -> None:
    """Say once, at start-up, which of the original's variables are accepted but have no effect."""
    if settings.postgres_migration_dir:
        log.info(
            "AI_CS_POSTGRES_MIGRATION_DIR is not used: the migrations ship inside the package "
            "(see `ai-customer-service migrate --sql`)",
            value=settings.postgres_migration_dir,
        )


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
    try:
        return await _serve_http(settings, sock, db)
    finally:
        sock.close()


async def _serve_http(settings: Settings, sock: socket.socket, db: Database) -> int:
    """Serve the app on ``sock`` until SIGTERM/SIGINT; closes the pool at the end."""
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
        await db.dispose()
    return 0 if server.started else 1


def serve(settings: Settings) -> int:
    import uvloop

    if settings.http_workers > 1:
        return serve_processes(settings)
    use_single_process()
    return uvloop.run(run(settings))


async def _prepare_once(settings: Settings) -> None:
    db = await prepare_database(settings)
    try:
        if settings.demo_kb:
            await load_demo_kb(db)
    finally:
        await db.dispose()


async def _worker(settings: Settings, sock: socket.socket) -> int:
    db = Database(settings)
    try:
        await check_database(db)
    except BaseException:
        await db.dispose()
        raise
    return await _serve_http(settings, sock, db)


def serve_processes(settings: Settings) -> int:
    """``AI_CS_HTTP_WORKERS`` > 1: check, bind and migrate once here, then fork the workers; they
    accept on the shared socket. SIGTERM/SIGINT is passed on to every worker (each drains); when a
    worker dies on its own, the others are stopped and the exit status is 1."""
    import uvloop

    check_production_rules(settings)
    check_platform_rules(settings)
    sock = bind_socket(settings)
    try:
        uvloop.run(_prepare_once(settings))
    except BaseException:
        sock.close()
        raise
    children: set[int] = set()
    stopping = False

    def stop_all(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    # before forking, so a signal during the fork loop cannot kill the parent and orphan children
    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    # one /metrics for the whole server: the workers write their values to files in one directory
    metrics_dir = enable_multiprocess()
    try:
        _fork_workers(settings, sock, children)
    except BaseException:
        stop_all(signal.SIGTERM, None)
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        raise
    log.info("server processes started", workers=len(children), pids=sorted(children))
    status = 0
    try:
        while children:
            pid, wait_status = os.wait()
            children.discard(pid)
            process_exited(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            # a worker stopped by our SIGTERM before its server started has nothing to drain
            clean = code == 0 or (stopping and code == -signal.SIGTERM)
            if not clean or not stopping:
                log.error("server process exited", pid=pid, exit_code=code)
                status = 1
                if not stopping:
                    stop_all(signal.SIGTERM, None)
    finally:
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return status


def _fork_workers(settings: Settings, sock: socket.socket, children: set[int]) -> None:
    """Fork ``AI_CS_HTTP_WORKERS`` processes serving on ``sock``; their pids go into ``children``."""
    import uvloop

    for _ in range(settings.http_workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            _become_worker()
            status = 1
            try:
                status = uvloop.run(_worker(settings, sock))
            except StartupError as exc:
                log.error("worker start-up failed", error=str(exc))
            except BaseException as exc:
                log.error("worker failed", exc_info=exc)
            finally:
                os._exit(status)
        children.add(pid)


def _become_worker() -> None:  # pragma: no cover - runs in the child
    """Signal set-up of a forked worker: default dispositions until uvicorn installs its own (a stop
    request before then simply ends the worker); its own process group, so a terminal's Ctrl-C
    reaches only the parent, which passes one SIGTERM on (two signals would make uvicorn skip the
    drain); and SIGTERM when the parent dies, so no worker outlives it holding the port."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
