"""The console script ``ai-customer-service``: serve, migrate, doctor (and, as they land, kb/eval/agents).

Commands are thin: they load settings, call one function, and turn known errors into one line on
stderr with exit code 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from ai_customer_service import __version__
from ai_customer_service.auth.models import Role
from ai_customer_service.config import Settings, load_settings
from ai_customer_service.errors import ConfigError, ServiceError, StartupError

if TYPE_CHECKING:
    from ai_customer_service.auth.service import CreatedPrincipal
    from ai_customer_service.db.engine import Database

T = TypeVar("T")

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
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print what would change (migrations, adopting the original's database, with row "
            "counts) and change nothing.",
        ),
    ] = False,
) -> None:
    """Apply the migrations and exit (or print them as SQL for psql -f, or preview them)."""
    if sql:
        from ai_customer_service.db.migrate import offline_sql

        sys.stdout.write(offline_sql())
        return
    settings = settings_or_exit()
    import asyncio

    from ai_customer_service.db.migrate import current_revision, head_revision, is_newer
    from ai_customer_service.server import prepare_database

    if dry_run:
        from ai_customer_service.db.adopt import AdoptionError
        from ai_customer_service.db.connect import check_database
        from ai_customer_service.db.engine import Database
        from ai_customer_service.db.migrate import dry_run as preview

        async def _preview() -> list[str]:
            db = Database(settings)
            try:
                await check_database(db)
                return await preview(db.engine)
            finally:
                await db.dispose()

        try:
            lines = asyncio.run(_preview())
        except StartupError as exc:
            raise fail(str(exc)) from None
        except AdoptionError as exc:
            raise fail(f"cannot adopt the original's database: {exc}") from None
        typer.echo("dry run: nothing was changed")
        for line in lines:
            typer.echo(line)
        return

    async def _run() -> str | None:
        db = await prepare_database(settings)
        try:
            async with db.engine.connect() as conn:
                return await current_revision(conn)
        finally:
            await db.dispose()

    try:
        revision = asyncio.run(_run())
    except StartupError as exc:
        raise fail(str(exc)) from None
    if is_newer(revision):
        typer.echo(f"schema at revision {revision}, newer than this build's {head_revision()}: nothing to do")
    else:
        typer.echo(f"migrations applied; schema at revision {revision}")


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


agents_app = typer.Typer(help="Back-office principals: agents, supervisors, admins.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    import asyncio

    from ai_customer_service.server import prepare_database

    async def _run() -> T:
        db = await prepare_database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(_run())
    except StartupError as exc:
        raise fail(str(exc)) from None
    except ServiceError as exc:
        raise fail(f"{exc.code} {exc.message}") from None


@agents_app.command("create")
def agents_create(
    name: Annotated[str, typer.Option("--name", help="Unique name, e.g. alice.")],
    role: Annotated[Role, typer.Option("--role", help="agent, supervisor or admin.")] = Role.AGENT,
    capacity: Annotated[int, typer.Option(help="Active tickets auto-assignment may give this agent.")] = 5,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read a console password from standard input (first line)."),
    ] = False,
) -> None:
    """Create a principal and print its API token once (alone on the last line)."""
    from ai_customer_service.auth.service import create_principal
    from ai_customer_service.auth.sign_in import hash_new_password

    password = _read_password(confirm=False) if password_stdin else None

    async def work(db: Database) -> CreatedPrincipal:
        encoded = await hash_new_password(password) if password is not None else None
        return await create_principal(db, name=name, role=role, capacity=capacity, password_hash=encoded)

    created = _with_database(settings_or_exit(), work)
    p = created.principal
    typer.echo(f"created {p.role} {p.name} id={p.id}; the token below is shown once, store it now:")
    typer.echo(created.token)


def _read_password(*, confirm: bool) -> str:
    """A password from standard input: typed twice, hidden, on a terminal; else the first line."""
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))
    line = sys.stdin.readline()
    if not line:
        raise fail("no password on standard input")
    return line.rstrip("\r\n")


@agents_app.command("set-password")
def agents_set_password(
    id_or_name: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="Principal id or name.")],
) -> None:
    """Set or reset a principal's console password (read from standard input); ends its console sessions."""
    from ai_customer_service.auth.sign_in import set_password

    password = _read_password(confirm=True)
    p = _with_database(settings_or_exit(), lambda db: set_password(db, id_or_name, password))
    typer.echo(f"password set for {p.role} {p.name} id={p.id}; its console sessions were signed out")


@agents_app.command("list")
def agents_list() -> None:
    """List principals (never their tokens)."""
    from ai_customer_service.auth.service import list_principals

    rows = _with_database(settings_or_exit(), list_principals)
    typer.echo(f"{'ID':36}  {'NAME':20}  {'ROLE':10}  {'STATE':9}  {'AVAIL':9}  CAP  TOKEN        LAST_USED")
    for p in rows:
        state = "active" if p.active else "revoked"
        avail = "available" if p.available else "away"
        used = p.last_used_at.isoformat(timespec="seconds") if p.last_used_at else "-"
        typer.echo(
            f"{p.id!s:36}  {p.name:20}  {p.role:10}  {state:9}  {avail:9}  {p.capacity:3}  "
            f"{p.token_prefix:12} {used}"
        )


@agents_app.command("revoke")
def agents_revoke(
    id_or_name: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="Principal id or name.")],
) -> None:
    """Revoke a principal's token (it gets 401 from now on)."""
    from ai_customer_service.auth.service import revoke_principal

    p = _with_database(settings_or_exit(), lambda db: revoke_principal(db, id_or_name))
    typer.echo(f"revoked {p.role} {p.name} id={p.id}")


def _register_subcommands() -> None:
    from ai_customer_service.outbox.cli import outbox_app

    app.add_typer(outbox_app, name="outbox")


_register_subcommands()


# Numeric threads for a server: one BLAS thread per matrix-vector product (requests give the
# parallelism; extra BLAS threads only fight over two cores), and OpenMP threads of the embedding
# engine that sleep instead of spinning while they wait. Set before numpy or the engine load; an
# operator's own values win.
_THREAD_DEFAULTS = {"OPENBLAS_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def main() -> None:
    for key, value in _THREAD_DEFAULTS.items():
        os.environ.setdefault(key, value)
    app()


if __name__ == "__main__":
    main()


kb_app = typer.Typer(help="The knowledge base.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")


@kb_app.command("import")
def kb_import(
    path: Annotated[
        Path, typer.Argument(help="A .jsonl or .csv file, a .md file, or a folder of .md files.")
    ],
    draft: Annotated[bool, typer.Option("--draft", help="Import as drafts instead of publishing.")] = False,
) -> None:
    """Bulk-load entries (upsert by id, else by title); published unless --draft."""
    from ai_customer_service.knowledge.importing import load_file
    from ai_customer_service.knowledge.service import import_entries

    try:
        docs = load_file(path)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    counts = _with_database(
        settings_or_exit(), lambda db: import_entries(db, docs, actor_id="cli", publish_all=not draft)
    )
    typer.echo(
        f"imported {len(docs)} entries: {counts['created']} created, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged"
    )


@app.command("eval")
def evaluate(
    kb: Annotated[Path, typer.Option("--kb", help="KB file (JSONL, one entry a line).")],
    cases: Annotated[
        Path | None, typer.Option("--cases", help="Cases file (JSONL: text, expected); or --self-test.")
    ] = None,
    llm: Annotated[bool, typer.Option("--llm", help="Also use the configured LLM.")] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write one JSON line per case (decision, entry, top 3 with scores)."),
    ] = None,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep", help="Add the metrics at every threshold (0.05 steps, the operating point marked)."
        ),
    ] = False,
    self_test: Annotated[
        bool,
        typer.Option(
            "--self-test",
            help="No cases file: ask the KB's own example questions, each held out of the index in turn.",
        ),
    ] = False,
    folds: Annotated[
        int, typer.Option("--folds", help="Folds of --self-test (each rebuilds the index once).")
    ] = 5,
) -> None:
    """Run the webhook's dialog engine on labelled cases (or --self-test); print the metrics as one
    JSON object on stdout, and the worst-confused entry pairs (and the --sweep table) on stderr."""
    import asyncio
    import json

    from ai_customer_service.knowledge.evaluation import confusion_summary, run_eval
    from ai_customer_service.logs import configure_logging

    settings = settings_or_exit()
    configure_logging(settings)  # logs go to stderr; stdout carries only the JSON
    try:
        result = asyncio.run(
            run_eval(
                settings,
                kb,
                cases,
                use_llm=llm,
                report=report,
                with_sweep=sweep,
                self_test=self_test,
                folds=folds,
            )
        )
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    point = result["operating_point"]
    lines = [
        f"operating point: threshold {point['threshold']} ({point['source']}), expected precision "
        f"{_cell(point['expected_precision'])}, answer rate {_cell(point['expected_answer_rate'])}, "
        f"fitted on {point['positives']} answerable and {point['negatives']} unanswerable questions",
        *confusion_summary(result["confusions"]),
    ]
    if sweep:
        lines.append("threshold  in-scope-acc  oos-recall  precision  answer-rate")
        for row in result["sweep"]:
            mark = f"  <- {row['operating_point']}" if "operating_point" in row else ""
            lines.append(
                f"{row['threshold']:>9}  {_cell(row['in_scope_accuracy']):>12}  "
                f"{_cell(row['out_of_scope_recall']):>10}  {_cell(row['answer_precision']):>9}  "
                f"{_cell(row['answer_rate']):>11}{mark}"
            )
    typer.echo("\n".join(lines), err=True)
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


sites_app = typer.Typer(
    help="Web chat widget sites: public keys bound to allowed origins.", no_args_is_help=True
)
app.add_typer(sites_app, name="sites")


@sites_app.command("create")
def sites_create(
    name: Annotated[str, typer.Option("--name", help="Unique name, e.g. shop.")],
    origin: Annotated[
        list[str],
        typer.Option("--origin", help="An allowed page origin, e.g. https://example.com (repeatable)."),
    ],
    identity_secret_stdin: Annotated[
        bool,
        typer.Option(
            "--identity-secret-stdin",
            help="Read the identity-verification secret (>= 16 characters) from stdin; the host site's "
            "server signs its signed-in user's id with it.",
        ),
    ] = False,
    rate_limit_messages: Annotated[
        int, typer.Option(help="Messages per minute for the whole site; 0: no limit.")
    ] = 600,
    rate_limit_visitors: Annotated[int, typer.Option(help="New visitors per minute; 0: no limit.")] = 120,
) -> None:
    """Create a site and print its public key and the script tag to embed."""
    from ai_customer_service.widget.service import create_site

    secret = sys.stdin.readline().strip() if identity_secret_stdin else None
    if identity_secret_stdin and not secret:
        raise fail("--identity-secret-stdin: no secret on stdin")
    settings = settings_or_exit()
    site = _with_database(
        settings,
        lambda db: create_site(
            db,
            name=name,
            origins=origin,
            identity_secret=secret,
            rate_limit_messages=rate_limit_messages,
            rate_limit_visitors=rate_limit_visitors,
        ),
    )
    typer.echo(f"created site {site.name} key={site.public_key} origins={','.join(site.origins)}")
    typer.echo("embed on your pages (replace the host with this service's public URL):")
    typer.echo(
        f'<script src="https://support.example.com/widget.js" data-site="{site.public_key}" async></script>'
    )


@sites_app.command("list")
def sites_list() -> None:
    """List sites (never their identity secrets)."""
    from ai_customer_service.widget.service import list_sites

    rows = _with_database(settings_or_exit(), list_sites)
    typer.echo(f"{'KEY':30}  {'NAME':20}  {'STATE':7}  {'IDENTITY':8}  {'MSG/MIN':7}  ORIGINS")
    for s in rows:
        typer.echo(
            f"{s.public_key:30}  {s.name:20}  {'active' if s.active else 'revoked':7}  "
            f"{'yes' if s.identity_secret else 'no':8}  {s.rate_limit_messages:7}  {','.join(s.origins)}"
        )


@sites_app.command("revoke")
def sites_revoke(
    key_or_name: Annotated[str, typer.Argument(metavar="KEY_OR_NAME", help="Site key or name.")],
) -> None:
    """Revoke a site: its widget stops working at once (403 CS_WGT_4031)."""
    from ai_customer_service.widget.service import revoke_site

    site = _with_database(settings_or_exit(), lambda db: revoke_site(db, key_or_name))
    typer.echo(f"revoked site {site.name} key={site.public_key}")
