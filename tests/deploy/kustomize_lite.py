"""The part of `kustomize build` that deploy/kubernetes uses, so the tests
render the overlays without kustomize or a cluster.

Supported: resources (files and kustomization folders), patches given as
RFC 6902 JSON patches with a target, namespace, images; in kustomize's order
(the resources fully rendered first, then patches, namespace, images). Any
other field raises, so the manifests cannot rely on a feature that this
renderer would silently skip. JSON patches were chosen over strategic merge
patches because their meaning is exact (paths, no merge keys), so this small
renderer applies them as kustomize does.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "patches", "namespace", "images"}
POD_TEMPLATES = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(ValueError):
    pass


def load_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def render(folder: Path) -> list[dict]:
    """The resources `kustomize build folder` prints, as dicts."""
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kust) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{folder}: kustomization fields not supported here: {sorted(unknown)}")
    resources: list[dict] = []
    for entry in kust.get("resources", []):
        path = (folder / entry).resolve()
        resources.extend(render(path) if path.is_dir() else load_documents(path))
    for patch in kust.get("patches", []):
        _apply_patch(folder, patch, resources)
    if "namespace" in kust:
        for res in resources:
            res.setdefault("metadata", {})["namespace"] = kust["namespace"]
    for image in kust.get("images", []):
        _set_image(image, resources)
    return resources


def _matches(target: dict, res: dict) -> bool:
    group, _, version = res["apiVersion"].rpartition("/")
    wanted = {"group": group, "version": version, "kind": res["kind"], "name": res["metadata"]["name"]}
    return all(wanted[key] == value for key, value in target.items())


def _apply_patch(folder: Path, patch: dict, resources: list[dict]) -> None:
    ops = yaml.safe_load((folder / patch["path"]).read_text()) if "path" in patch else yaml.safe_load(patch["patch"])
    if not isinstance(ops, list):
        raise KustomizeError(f"{folder}: only JSON 6902 patches (a list of ops) are supported")
    hits = [res for res in resources if _matches(patch["target"], res)]
    if not hits:
        raise KustomizeError(f"{folder}: patch target {patch['target']} matches no resource")
    for res in hits:
        for op in ops:
            json_patch(res, op)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer must start with '/': {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def json_patch(doc: dict, op: dict) -> None:
    """One RFC 6902 operation (add, replace, remove) applied in place."""
    *parents, last = _pointer(op["path"])
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    kind = op["op"]
    if isinstance(node, list):
        index = len(node) if (last == "-" and kind == "add") else int(last)
        if kind == "add":
            if index > len(node):
                raise KustomizeError(f"{op['path']}: index past the end")
            node.insert(index, copy.deepcopy(op["value"]))
            return
        node[index]  # IndexError when absent, as RFC 6902 requires for replace/remove
    elif kind != "add" and last not in node:
        raise KustomizeError(f"{op['path']}: no such member to {kind}")
    if kind in ("add", "replace"):
        node[index if isinstance(node, list) else last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del node[index if isinstance(node, list) else last]
    else:
        raise KustomizeError(f"JSON patch op {kind!r} not supported here")


def _split_image(ref: str) -> tuple[str, str]:
    """'reg:5000/a/b:tag' -> ('reg:5000/a/b', ':tag'); digests likewise ('@sha256:...')."""
    if "@" in ref:
        name, digest = ref.split("@", 1)
        return name, "@" + digest
    head, _, last = ref.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
        return f"{head}/{last}" if head else last, ":" + tag
    return ref, ""


def _set_image(image: dict, resources: list[dict]) -> None:
    for res in resources:
        if res["kind"] not in POD_TEMPLATES:
            continue
        spec = res["spec"]["template"]["spec"]
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            name, suffix = _split_image(container["image"])
            if name != image["name"]:
                continue
            if "digest" in image:
                suffix = "@" + image["digest"]
            elif "newTag" in image:
                suffix = ":" + str(image["newTag"])
            container["image"] = image.get("newName", name) + suffix
