"""The import directions of docs/architecture.md, checked on the source.

Each rule: modules under a prefix must not import modules under the listed
prefixes (absolute `roiclass.` imports, at any depth of the file, lazy ones
included). A new module that breaks the layering fails here, naming the file.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"roiclass.server": ROOT / "server", "roiclass.client": ROOT / "client",
            "roiclass.ext": ROOT / "ext", "roiclass.geo": ROOT / "geo"}

# The server's leaves: tables every layer (and the client) may read.
LEAVES = ("roiclass.server.errors", "roiclass.server.states", "roiclass.server.versions",
          "roiclass.server.formats", "roiclass.server.geometry", "roiclass.server.cores")
ABOVE_ENGINE = ("roiclass.server.app", "roiclass.server.cli", "roiclass.server.servicer",
                "roiclass.server.interceptors", "roiclass.server.observer",
                "roiclass.server.manager", "roiclass.server.domain", "roiclass.server.heatmap", "roiclass.server.model_info", "roiclass.server.oip", "roiclass.client")

RULES = [
    ("roiclass.ext", ("roiclass.server", "roiclass.client")),
    *((leaf, ("roiclass.server", "roiclass.client", "roiclass.ext")) for leaf in LEAVES),
    ("roiclass.server.models", ("roiclass.server.engine", "roiclass.server.pipeline", *ABOVE_ENGINE)),
    ("roiclass.server.engine", (*ABOVE_ENGINE, "roiclass.server.pipeline")),
    # Pipelines run over the engine and the models; the manager and the servicer hand themselves in.
    ("roiclass.server.pipeline", ("roiclass.server.app", "roiclass.server.cli", "roiclass.server.servicer",
                                  "roiclass.server.manager", "roiclass.server.interceptors",
                                  "roiclass.server.oip", "roiclass.client")),
    ("roiclass.server.security", ("roiclass.server.engine", "roiclass.server.models", *ABOVE_ENGINE)),
    # Parsing request bytes: below the interceptors and the domain, above only errors.
    ("roiclass.server.decoding", ("roiclass.server.engine", "roiclass.server.models", *ABOVE_ENGINE)),
    # Decoding (requests' images, the golden image at load) sits below the engine.
    ("roiclass.server.images", ("roiclass.server.engine", "roiclass.server.models", *ABOVE_ENGINE)),
    ("roiclass.server.heatmap", ("roiclass.server.app", "roiclass.server.servicer",
                                 "roiclass.server.interceptors", "roiclass.server.manager",
                                 "roiclass.client")),
    ("roiclass.server.domain", ("roiclass.server.engine", "roiclass.server.manager",
                                "roiclass.server.servicer", "roiclass.server.app",
                                "roiclass.client")),
    ("roiclass.server.interceptors", ("roiclass.server.engine", "roiclass.server.manager",
                                      "roiclass.server.servicer", "roiclass.server.app")),
    ("roiclass.client", ("roiclass.server", "roiclass.geo")),
    # GIS: over the client; the server only in geo.local (--local), which imports it lazily.
    ("roiclass.geo", ("roiclass.server",)),
    ("roiclass.server", ("roiclass.geo",)),
    ("roiclass.ext", ("roiclass.geo",)),
    # The Open Inference Protocol: its core and gRPC servicer get the engine and manager handed in
    # (app.py); the core and its tensors know no transport.
    ("roiclass.server.oip", ("roiclass.server.app", "roiclass.server.cli", "roiclass.server.servicer",
                             "roiclass.server.interceptors", "roiclass.server.manager", "roiclass.server.supervisor")),
    *((m, ("roiclass.inference", "roiclass.server.oip.grpc_servicer", "roiclass.server.oip.grpc_messages",
           "roiclass.server.oip.http")) for m in ("roiclass.server.oip.core", "roiclass.server.oip.tensors",
                                                  "roiclass.server.oip.inputs", "roiclass.server.oip.outputs",
                                                  "roiclass.server.oip.views", "roiclass.server.oip.statistics")),
    # The REST API gets the protocol core, the v1 servicer, auth and drain handed in (app.py).
    ("roiclass.server.oip.http", ("roiclass.server.app", "roiclass.server.cli", "roiclass.server.servicer",
                                  "roiclass.server.interceptors", "roiclass.server.engine",
                                  "roiclass.server.manager", "roiclass.server.supervisor")),
]
# What the client may take from the server package: the shared tables only.
CLIENT_MAY_USE = ("roiclass.server.formats", "roiclass.server.geometry")
# The one `roiclass` command also serves: its `serve` subcommand imports the server's CLI lazily.
ALLOWED = {("roiclass.client.cli", "roiclass.server.cli"), ("roiclass.client.cli", "roiclass.geo.cli"),
           ("roiclass.geo.local", "roiclass.server")}
# Imported inside a function only, so `roiclass classify` never loads them.
LAZY = {("roiclass.client.cli", "roiclass.server"), ("roiclass.client.cli", "roiclass.geo"),
        ("roiclass.geo.local", "roiclass.server"),
        ("roiclass.server.app", "roiclass.server.oip.http")}  # aiohttp (the http extra) only on --http-port


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _modules():
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if "_pb2" in path.name:
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join((package, *parts)), path


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from roiclass.server import formats` imports roiclass.server.formats
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n.startswith("roiclass.")}


def _violations(module: str, imported: set[str]) -> list[str]:
    bad = []
    for prefix, forbidden in RULES:
        if not _under(module, prefix):
            continue
        for name in sorted(imported):
            if _under(name, prefix) or any(module == m and _under(name, n) for m, n in ALLOWED):
                continue  # inside its own layer, or the one named exception
            if prefix == "roiclass.client" and any(_under(name, ok) for ok in CLIENT_MAY_USE):
                continue
            if any(_under(name, f) for f in forbidden):
                bad.append(f"{module} imports {name} (rule: {prefix} must not import {', '.join(forbidden)})")
    return bad


MODULES = list(_modules())


def test_the_source_tree_was_found():
    names = {m for m, _ in MODULES}
    assert {"roiclass.server.engine.model", "roiclass.client.classifier", "roiclass.server.app"} <= names


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_go_down_the_layers(module, path):
    assert _violations(module, _imports(path)) == []


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return _imports_of(tree.body)


def _imports_of(nodes) -> set[str]:
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, (ast.If, ast.Try)):  # still module level
            names |= _imports_of(ast.iter_child_nodes(node))
    return names


@pytest.mark.parametrize("module,target", sorted(LAZY))
def test_lazy_imports_stay_inside_functions(module, target):
    path = dict(MODULES)[module]
    assert not [n for n in _top_level_imports(path) if _under(n, target)]


def test_the_checker_catches_an_upward_import():
    assert _violations("roiclass.server.engine.model", {"roiclass.server.servicer"})
    assert _violations("roiclass.client.cli", {"roiclass.server.engine"})
    assert not _violations("roiclass.client.cli", {"roiclass.server.formats"})
    assert _violations("roiclass.server.formats", {"roiclass.server.engine.model"})
    assert _violations("roiclass.geo.chips", {"roiclass.server.engine"})
    assert _violations("roiclass.client.classifier", {"roiclass.geo"})
    assert not _violations("roiclass.geo.local", {"roiclass.server.engine"})
    assert _violations("roiclass.server.oip.http.routes", {"roiclass.server.engine.engine"})
