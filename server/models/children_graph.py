"""The load-time check of the models' [[children]] against the repository.

After a scan, each spec's children must name a model of the sources (and a
version it has, when one is given), must not lead back to a model already
on the path (a cycle), must not go deeper than MAX_CHILD_DEPTH levels below
the spec, and their `when` must name classes the parent has. A spec failing
any of it gets one reason naming the child and the path, e.g.
"children[1]: cycle cars -> color -> cars"; the manager reports that
version FAILED with it and does not load it.

Which spec stands for a child: the version it names, else the model's
latest version (the one "latest ready" picks once all are loaded). A model
known only by its load failures counts as known, with no children: its
subtree fails at run time (UNAVAILABLE), not its parents at load.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from roiclass.server.versions import version_key

from .pipeline import MAX_CHILD_DEPTH, ChildSpec
from .spec import ModelSpec

Key = tuple[str, str]  # (name, version)


def check_children(specs: Iterable[ModelSpec], known: Mapping[str, Iterable[str]] | None = None,
                   max_depth: int = MAX_CHILD_DEPTH) -> dict[Key, str]:
    """(name, version) -> why that spec's children are wrong, for the specs that fail.
    `known`: other model names of the sources with their versions (failed loads,
    models held unloaded) that a child may name."""
    specs = list(specs)
    versions: dict[str, dict[str, ModelSpec | None]] = {}
    for name, vs in (known or {}).items():
        versions.setdefault(name, {}).update(dict.fromkeys(vs))
    for spec in specs:
        versions.setdefault(spec.name, {})[spec.version] = spec
    graph = _Graph(versions, max_depth)
    out = {}
    for spec in specs:
        reason = graph.check(spec)
        if reason:
            out[(spec.name, spec.version)] = reason
    return out


class _Graph:
    def __init__(self, versions: dict[str, dict[str, ModelSpec | None]], max_depth: int):
        self._versions = versions
        self._max_depth = max_depth

    def check(self, spec: ModelSpec) -> str:
        for i, child in enumerate(spec.children):
            where = f"children[{i}]"
            reason = _when_problem(spec, child) or self._target_problem(child)
            if reason:
                return f"{where}: {reason}"
            reason = self._walk(self.target(child), [spec.name, child.model])
            if reason:
                return f"{where}: {reason}"
        return ""

    def target(self, child: ChildSpec) -> ModelSpec | None:
        """The spec standing for a child (None: known only by a failure)."""
        vs = self._versions.get(child.model, {})
        if child.version:
            return vs.get(child.version)
        latest = [s for _, s in sorted(vs.items(), key=lambda kv: version_key(kv[0])) if s is not None]
        return latest[-1] if latest else None

    def _target_problem(self, child: ChildSpec) -> str:
        vs = self._versions.get(child.model)
        if vs is None:
            return (f"unknown model {child.model!r}; models: "
                    f"{', '.join(sorted(self._versions)) or 'none'}")
        if child.version and child.version not in vs:
            return (f"model {child.model!r} has no version {child.version!r}; versions: "
                    f"{', '.join(sorted(vs, key=version_key))}")
        return ""

    def _walk(self, spec: ModelSpec | None, path: list[str]) -> str:
        """Depth first below `spec` (the last name of `path`): the first cycle
        or depth over the limit on the way."""
        if path[-1] in path[:-1]:
            return f"cycle {' -> '.join(path)}"
        if len(path) - 1 > self._max_depth:
            return f"depth over {self._max_depth} levels: {' -> '.join(path)}"
        if spec is None:
            return ""
        for child in spec.children:  # a descendant's own unknown child is its own failure
            reason = self._walk(self.target(child), path + [child.model])
            if reason:
                return reason
        return ""


def _when_problem(parent: ModelSpec, child: ChildSpec) -> str:
    """`when` names the parent's classes (by name or 0-based index)."""
    classes = parent.classes
    for ref in child.when:
        if isinstance(ref, int):
            if not 0 <= ref < len(classes):
                return (f"when: class index {ref} is out of range for {parent.name}; "
                        f"allowed: 0..{len(classes) - 1}")
        elif ref not in classes:
            return f"when: {ref!r} is not a class of {parent.name}; classes: {', '.join(classes)}"
    return ""
