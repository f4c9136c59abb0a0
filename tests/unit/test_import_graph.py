"""The import graph of ``ai_customer_service`` points down only and has no cycles (issue 11, item 6).

It reads every module's imports with ``ast`` (also those inside functions and under
``TYPE_CHECKING``: a deferred import is still an arrow) and checks two rules over *components*:

- **no cycles** between components;
- **no upward arrows**: a component imports only components of its own layer or of layers below.

A component is a top-level package or module (``ticket``, ``config``), except that a package's HTTP
edge (``router.py``, ``deps.py``) and the few modules named in :data:`PLACED` (``db.dsn``, the
schema as a whole, the ``eval`` command) are components of their own, placed where they belong:
``ticket.router`` parses HTTP and calls ``ticket``'s services, so it sits in the edge layer while
``ticket`` sits in the domain layer. A package's ``cli.py`` (its command group) belongs to the one
command-line component ``cli``. ``docs/architecture.md`` draws the result.

:data:`KNOWN_TO_FIX` lists what is being removed right now (issue 11, items 1-4). It may only
shrink: the test also fails when a listed exception no longer occurs, so whoever removes one
deletes its line here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import ai_customer_service

PACKAGE = "ai_customer_service"
SRC = Path(ai_customer_service.__file__).parent

# lowest first; a component may import its own layer and the layers below
LAYERS: dict[str, tuple[str, ...]] = {
    # values, errors, settings, logging, metric definitions, wire formats; the database plumbing
    "foundation": (
        "__init__",  # the version
        "errors",
        "values",
        "safejson",
        "wire",
        "pagination",
        "metrics",
        "logs",
        "db.dsn",  # pure DSN parsing; config validates the DSN with it
        "config",
        "workers",
        "db",
        "security",
        "live",
    ),
    # the business: models, repositories, rules, services, the dialog engine
    "domain": (
        "audit",
        "auth",
        "outbox",
        "uow",  # the unit of work: a transaction with the audit writer and the event publisher
        "conversation",
        "ticket",
        "knowledge",
        "dialog",
        "webhook",
        "widget",
    ),
    # the schema as a whole: every domain's tables (Alembic's metadata, migrations, adopting the
    # original's database)
    "schema": ("db.schema",),
    # what one process holds: the services and clients the edge hands requests to
    "context": ("context",),
    # HTTP (routers, dependencies, middleware, error envelope), the console's pages, health
    "edge": (
        "http",
        "health",
        "console",
        "platform",
        "*.router",
        "*.deps",
    ),
    # the application: the factory, the server, the command line
    # (knowledge/evaluation.py is the `eval` command: it migrates a throw-away store and runs the
    # engine over labelled cases, as the app does)
    "app": ("main", "server", "cli", "__main__", "doctor", "knowledge.evaluation"),
}

# modules placed in a component of their own (the others belong to their top-level package)
PLACED = {
    "db.dsn": "db.dsn",
    **dict.fromkeys(
        ("db.models", "db.adopt", "db.migrate", "db.migrations", "db.schema_versions"), "db.schema"
    ),
    "knowledge.evaluation": "knowledge.evaluation",
}
EDGE_MODULES = frozenset({"router", "deps"})

# What issue 11 (items 1-4) removes right now. Cycles as pairs of components, forbidden arrows as
# (importing module, imported component). Only ever delete lines here.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()
# (knowledge/evaluation.py -> main.py, and dialog <-> knowledge: gone with the pure dialog engine)
KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset()
KNOWN_TO_FIX = KNOWN_CYCLES | KNOWN_UPWARD


def component(module: str) -> str:
    """``ai_customer_service.ticket.service`` → ``ticket``; ``...ticket.router`` → ``ticket.router``."""
    parts = module.split(".")[1:] or ["__init__"]
    if len(parts) >= 2 and ".".join(parts[:2]) in PLACED:
        return PLACED[".".join(parts[:2])]
    if len(parts) >= 2 and parts[1] in EDGE_MODULES:
        return f"{parts[0]}.{parts[1]}"
    if len(parts) >= 2 and parts[1] == "cli":
        return "cli"
    return parts[0]


def layer_of(name: str) -> int:
    for rank, members in enumerate(LAYERS.values()):
        if name in members:
            return rank
    if "." in name:
        wildcard = "*." + name.split(".", 1)[1]
        for rank, members in enumerate(LAYERS.values()):
            if wildcard in members:
                return rank
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in tests/unit/test_import_graph.py")


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else parts
    return ".".join(parts) if len(parts) > 1 else f"{PACKAGE}.__init__"


def _imports(path: Path, module: str) -> set[str]:
    """Every ``ai_customer_service`` module ``path`` imports (``from x import y``: ``x.y`` when y is a
    submodule, else ``x``)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = (SRC / Path(*candidate.split(".")[1:])).with_suffix(".py").exists() or (
                    SRC / Path(*candidate.split(".")[1:]) / "__init__.py"
                ).exists()
                found.add(candidate if is_module else base)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def arrows() -> dict[tuple[str, str], set[str]]:
    """(from component, to component) → the modules that import that way."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        source = component(module)
        for target_module in _imports(path, module):
            target = "__init__" if target_module == PACKAGE else component(target_module)
            if target != source:
                edges[(source, target)].add(module.removeprefix(PACKAGE + "."))
    return edges


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _cycles(edges: set[tuple[str, str]]) -> list[set[str]]:
    """The strongly connected components with more than one member."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    reach = {node: _reachable(graph, node) for node in {n for edge in edges for n in edge}}
    groups: list[set[str]] = []
    for node, forward in reach.items():
        group = {node} | {other for other in forward if node in reach[other]}
        if len(group) > 1 and group not in groups:
            groups.append(group)
    return groups


def test_every_component_has_a_layer() -> None:
    for source, target in arrows():
        layer_of(source)
        layer_of(target)


def test_no_upward_arrows() -> None:
    upward = []
    for (source, target), modules in sorted(arrows().items()):
        if layer_of(target) > layer_of(source):
            for module in sorted(modules):
                known = (module, target) in KNOWN_UPWARD or (source, target) in KNOWN_UPWARD
                if not known:
                    upward.append(f"{module} -> {target}")
    assert upward == [], "an import points up the layers (docs/architecture.md)"


def test_no_cycles_but_the_known_ones() -> None:
    edges = {edge for edge, modules in arrows().items() if not _known(edge, modules)}
    assert _cycles(edges) == [], "import cycle between components (docs/architecture.md)"


def _known(edge: tuple[str, str], modules: set[str]) -> bool:
    """An arrow of a known cycle, or one made only by known upward imports."""
    return frozenset(edge) in KNOWN_CYCLES or all((m, edge[1]) in KNOWN_UPWARD for m in modules)


def test_known_exceptions_still_occur() -> None:
    """The list only shrinks: an exception that is gone must leave KNOWN_TO_FIX."""
    edges = arrows()
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    gone = []
    for pair in KNOWN_CYCLES:
        a, b = sorted(pair)
        if not (b in _reachable(graph, a) and a in _reachable(graph, b)):
            gone.append(f"cycle {a} <-> {b}")
    for module, target in KNOWN_UPWARD:
        if not any(module in modules for (_, t), modules in edges.items() if t == target):
            gone.append(f"{module} -> {target}")
    assert gone == [], "no longer occurs: delete it from KNOWN_TO_FIX"
