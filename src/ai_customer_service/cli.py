"""The console script ``ai-customer-service``: serve, migrate, doctor (and, as they land, kb/eval/agents).

Commands are thin: they load settings, call one function, and turn known errors into one line on
stderr with exit code 1.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ai_customer_service import __version__
from ai_customer_service.config import Settings, load_settings
from ai_customer_service.errors import ConfigError, StartupError

app = typer.Typer(
    name="ai-customer-service",
    help="AI customer-service backend. With no command: serve.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> typer.Exit:
    typer.echo(f"ERROR {message}", err=True)
    return typer.Exit(code=1)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ai-customer-service {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Print the version and exit.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    if ctx.invoked_subcommand is None:
        serve()


@app.command()
def serve() -> None:
    """Validate config, connect, migrate, and serve HTTP with the background workers."""
    settings = settings_or_exit()
    from ai_customer_service.logs import configure_logging
    from ai_customer_service.server import serve as run_server

    configure_logging(settings)
    try:
        code = run_server(settings)
    except (ConfigError, StartupError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


@app.command()
def migrate(
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the PostgreSQL DDL instead of applying it.")
    ] = False,
) -> None:
    """Apply the migrations and exit (or print them as SQL for psql -f)."""
    if sql:
        from ai_customer_service.db.migrate import offline_sql

        sys.stdout.write(offline_sql())
        return
    settings = settings_or_exit()
    import asyncio

    from ai_customer_service.server import prepare_database

    async def _run() -> None:
        db = await prepare_database(settings)
        await db.dispose()

    try:
        asyncio.run(_run())
    except StartupError as exc:
        raise fail(str(exc)) from None
    from ai_customer_service.db.migrate import head_revision

    typer.echo(f"migrations applied; schema at revision {head_revision()}")


@app.command()
def doctor(
    url: Annotated[str, typer.Option(help="Base URL of a running instance to probe.")] = "",
    log_file: Annotated[str, typer.Option(help="Log file to scan for recent errors.")] = "",
) -> None:
    """The runbook's 60-second diagnostic; exit code 0 when healthy."""
    settings = settings_or_exit()
    from ai_customer_service.doctor import run_doctor

    ok = run_doctor(settings, url=url or f"http://127.0.0.1:{settings.port}", log_file=log_file or None)
    raise typer.Exit(0 if ok else 1)


def _register_subcommands() -> None:
    from ai_customer_service.outbox.cli import outbox_app

    app.add_typer(outbox_app, name="outbox")


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
