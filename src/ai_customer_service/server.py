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

from ai_customer_service.config import (
    Settings,
    check_platform_rules,
    check_production_rules,
    production_warnings,
)
from ai_customer_service.context import AppContext
from ai_customer_service.db.adopt import AdoptionError
from ai_customer_service.db.connect import check_database, describe_db_error
from ai_customer_service.db.engine import Database
from ai_customer_service.db.migrate import upgrade
from ai_customer_service.errors import StartupError
from ai_customer_service.health.service import refresh_pool_metrics
from ai_customer_service.http.metrics_listener import start_metrics_listener
from ai_customer_service.http.slowclients import guarded_protocol
from ai_customer_service.logs import get_logger
from ai_customer_service.main import create_app
from ai_customer_service.metrics import enable_multiprocess, process_exited, use_single_process

log = get_logger(__name__)


def bind_socket(settings: Settings, addr: str | None = None, variable: str = "AI_CS_ADDR") -> socket.socket:
    """Bind and listen on ``addr`` (default ``AI_CS_ADDR``); refusals name ``variable``."""
    addr = addr or settings.addr
    host, port = addr.rsplit(":", 1)[0].strip("[]"), int(addr.rsplit(":", 1)[1])
    host = host or "0.0.0.0"  # noqa: S104 - ":8080" means every interface, as in the original
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"listen tcp {addr}: bind: address already in use; stop the other process "
                f"or set {variable} to another port (e.g. :{port + 1})"
            ) from exc
        raise StartupError(f"listen tcp {addr}: {exc.strerror}; check {variable}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def bind_sockets(settings: Settings) -> list[socket.socket]:
    """The service's socket, then the metrics socket when ``AI_CS_METRICS_ADDR`` is set."""
    socks = [bind_socket(settings)]
    if settings.metrics_addr:
        try:
            socks.append(bind_socket(settings, settings.metrics_addr, "AI_CS_METRICS_ADDR"))
        except BaseException:
            socks[0].close()
            raise
    return socks


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard limit (each connection holds a descriptor; a low
    soft limit let a few hundred slow sockets starve health checks). Returns the limit in force."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # an unlimited hard limit: a generous finite soft limit (the kernel caps descriptors anyway)
        target = 1_048_576 if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        return int(soft)
    except (ImportError, OSError, ValueError):
        return -1


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


async def load_demo_site(settings: Settings, db: Database) -> None:
    """``make run`` (development only): the widget's ``demo`` site for this port's local origins."""
    if settings.is_production:
        return
    from ai_customer_service.widget.service import ensure_demo_site

    extra = [o.strip() for o in settings.widget_demo_origins.split(",") if o.strip()]
    local = [f"http://127.0.0.1:{settings.port}", f"http://localhost:{settings.port}"]
    site = await ensure_demo_site(db, [*local, *extra])
    log.info("widget demo site ready", page=f"{local[0]}/demo/", site_key=site.public_key)


def _check(settings: Settings) -> None:
    """The start-up refusals (ConfigError), then one WARNING line per accepted weakness."""
    check_production_rules(settings)
    check_platform_rules(settings)
    for warning in production_warnings(settings):
        log.warning(warning)


async def run(settings: Settings) -> int:
    _check(settings)
    socks = bind_sockets(settings)
    try:
        db = await prepare_database(settings)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    if settings.demo_kb:
        await load_demo_kb(db)
        await load_demo_site(settings, db)
    try:
        return await _serve_http(settings, socks, db)
    finally:
        for sock in socks:
            sock.close()


async def _serve_http(settings: Settings, socks: list[socket.socket], db: Database) -> int:
    """Serve the app on ``socks[0]`` (and ``/metrics`` on ``socks[1]`` when ``AI_CS_METRICS_ADDR`` is
    set) until SIGTERM/SIGINT; closes the pool at the end."""
    app = create_app(settings, db=db)
    ctx: AppContext = app.state.ctx
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="none",
        # uvicorn's httptools protocol plus a header deadline and a minimum body rate
        http=guarded_protocol(settings.http_header_timeout_seconds, settings.http_body_min_bytes_per_second),
        limit_concurrency=settings.http_max_connections or None,
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    server = _Server(config, ctx)
    listener = None
    if len(socks) > 1:

        def exposition() -> bytes:
            refresh_pool_metrics(ctx)
            return ctx.metrics.exposition()

        listener = await start_metrics_listener(
            socks[1],
            token=settings.metrics_token,
            exposition=exposition,
            header_timeout=settings.http_header_timeout_seconds,
        )
    try:
        await server.serve(sockets=socks[:1])
    finally:
        if listener is not None:
            listener.close()
        await db.dispose()
    return 0 if server.started else 1


def serve(settings: Settings) -> int:
    import uvloop

    limit = raise_open_files_limit()
    log.info("open files limit", limit=limit)
    if settings.server_processes > 1:
        return serve_processes(settings)
    use_single_process()
    return uvloop.run(run(settings))


async def _prepare_once(settings: Settings) -> None:
    db = await prepare_database(settings)
    try:
        if settings.demo_kb:
            await load_demo_kb(db)
            await load_demo_site(settings, db)
    finally:
        await db.dispose()


async def _worker(settings: Settings, socks: list[socket.socket]) -> int:
    db = Database(settings)
    try:
        await check_database(db)
    except BaseException:
        await db.dispose()
        raise
    return await _serve_http(settings, socks, db)


def serve_processes(settings: Settings) -> int:
    """``AI_CS_HTTP_WORKERS`` > 1: check, bind and migrate once here, then fork the workers; they
    accept on the shared socket. SIGTERM/SIGINT is passed on to every worker (each drains); when a
    worker dies on its own, the others are stopped and the exit status is 1."""
    import uvloop

    _check(settings)
    socks = bind_sockets(settings)
    try:
        uvloop.run(_prepare_once(settings))
    except BaseException:
        for sock in socks:
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
        _fork_workers(settings, socks, children)
    except BaseException:
        stop_all(signal.SIGTERM, None)
        for sock in socks:
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
        for sock in socks:
            sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return status


def _fork_workers(settings: Settings, socks: list[socket.socket], children: set[int]) -> None:
    """Fork ``AI_CS_HTTP_WORKERS`` processes serving on ``socks``; their pids go into ``children``."""
    import uvloop

    for _ in range(settings.server_processes):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            _become_worker()
            status = 1
            try:
                status = uvloop.run(_worker(settings, socks))
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
