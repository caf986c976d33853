"""Model repository folders (Triton-style) and single model paths -> specs.

  <repo>/<model>/config.toml
  <repo>/<model>/<version>/model.onnx     versions are folder names
  <repo>/<model>/model.onnx               no version folder: version "1"

A model folder without config.toml may hold an Esri .emd or .dlpk, or bare
ONNX files (classes then come from a classes.txt beside them, else "0".."N-1").
A version folder may hold any one *.onnx when it has no model.onnx.
Nothing here raises for a broken model: it becomes a LoadFailure, so the
other models still load.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from roiclass.server.versions import version_key

from .builder import build_spec, read_classes_file
from .config import CONFIG_NAME, config_model_name, spec_from_config
from .emd import SUPPORTED as EMD_SUPPORTED
from .emd import read_dlpk, read_emd
from .errors import ModelConfigError
from .spec import ModelSpec

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
CLASSES_FILE = "classes.txt"
SUPPORTED_PATHS = "a model folder, a config.toml, an Esri .emd or .dlpk, or an .onnx file"
# Model files of frameworks we do not run: named in the error instead of ignored.
FOREIGN = {
    ".pt": "PyTorch", ".pth": "PyTorch", ".torchscript": "PyTorch", ".pb": "TensorFlow",
    ".h5": "Keras", ".keras": "Keras", ".tflite": "TensorFlow Lite", ".plan": "TensorRT",
    ".engine": "TensorRT", ".caffemodel": "Caffe", ".mlmodel": "Core ML", ".params": "MXNet",
}


@dataclass(frozen=True)
class LoadFailure:
    name: str
    version: str  # "" when the versions could not be listed
    reason: str
    source: Path | None


Loaded = list  # list[ModelSpec | LoadFailure]


def _hidden(p: Path) -> bool:
    return p.name.startswith((".", "_"))


def _foreign(folder: Path) -> str | None:
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in FOREIGN:
            return f"{f.name} is a {FOREIGN[f.suffix.lower()]} model; roiclass runs ONNX models (.onnx) only"
    return None


def _onnx_in(folder: Path) -> Path:
    """The model file of one version folder."""
    if (folder / MODEL_FILE).is_file():
        return folder / MODEL_FILE
    onnx = sorted(f for f in folder.glob("*.onnx") if f.is_file())
    if len(onnx) == 1:
        return onnx[0]
    if len(onnx) > 1:
        raise ModelConfigError(f"{folder}: several .onnx files ({', '.join(f.name for f in onnx)}); name the model {MODEL_FILE}")
    raise ModelConfigError(_foreign(folder) or f"{folder}: no {MODEL_FILE}")


def _versions(model_dir: Path) -> tuple[dict[str, Path], list[LoadFailure]]:
    """version -> its folder; folders with no model at all are not versions."""
    found: dict[str, Path] = {}
    failures: list[LoadFailure] = []
    if (model_dir / MODEL_FILE).is_file():
        found["1"] = model_dir
    for sub in sorted(p for p in model_dir.iterdir() if p.is_dir() and not _hidden(p)):
        suffixes = {f.suffix.lower() for f in sub.iterdir() if f.is_file()}
        has_model = ".onnx" in suffixes or bool(suffixes & FOREIGN.keys())
        if not has_model:
            continue
        if sub.name in found:
            reason = f"{model_dir}: version {sub.name} is both {MODEL_FILE} and folder {sub.name}/"
            failures.append(LoadFailure(model_dir.name, sub.name, reason, sub))
            continue
        found[sub.name] = sub
    return dict(sorted(found.items(), key=lambda kv: version_key(kv[0]))), failures


def _reason(exc: Exception) -> str:
    """Our errors explain themselves; anything else is a bug worth a traceback."""
    if isinstance(exc, (ModelConfigError, OSError)):
        return str(exc)
    log.exception("unexpected error while reading a model")
    return f"{type(exc).__name__}: {exc}"


def _bare_spec(onnx: Path, name: str, version: str, classes_file: Path | None) -> ModelSpec:
    where = str(onnx)
    classes = read_classes_file(classes_file, where) if classes_file is not None else None
    return build_spec(onnx, name=name, version=version, where=where, fmt="roiclass", source=onnx, classes=classes)


def load_model_dir(model_dir: Path, config: Path | None = None, dlpk_cache: Path | None = None) -> Loaded:
    """Every version of one model folder."""
    model_dir = Path(model_dir)
    config = config if config is not None else model_dir / CONFIG_NAME
    name = model_dir.name
    try:
        if config.is_file():
            name = config_model_name(config, model_dir.name)
        else:
            config = None
            special = sorted(model_dir.glob("*.emd")) + sorted(model_dir.glob("*.dlpk"))
            if special:
                if len(special) > 1:
                    raise ModelConfigError(f"{model_dir}: several Esri models ({', '.join(p.name for p in special)}); keep one")
                return _one(lambda: _esri(special[0], dlpk_cache, model_dir.name), model_dir.name, special[0])
        versions, out = _versions(model_dir)
        if not versions and not out:
            raise ModelConfigError(_foreign(model_dir) or f"{model_dir}: no {MODEL_FILE} and no version folder holding one")
    except Exception as exc:  # noqa: BLE001 - a broken model must not stop the others
        return [LoadFailure(name, "", _reason(exc), config or model_dir)]
    for version, folder in versions.items():
        try:
            onnx = _onnx_in(folder)
            if config is not None:
                out.append(spec_from_config(config, onnx, version, model_dir.name))
            else:
                classes = next((p for p in (folder / CLASSES_FILE, model_dir / CLASSES_FILE) if p.is_file()), None)
                out.append(_bare_spec(onnx, name, version, classes))
        except Exception as exc:  # noqa: BLE001
            out.append(LoadFailure(name, version, _reason(exc), config or folder))
    return out


def _esri(path: Path, dlpk_cache: Path | None, name: str | None = None) -> ModelSpec:
    if path.suffix.lower() == ".dlpk":
        return read_dlpk(path, dlpk_cache, name=name).spec
    return read_emd(path, name=name).spec


def _one(make, name: str, source: Path) -> Loaded:
    try:
        return [make()]
    except Exception as exc:  # noqa: BLE001
        return [LoadFailure(name, "1", _reason(exc), source)]


def load_model_path(path: Path, dlpk_cache: Path | None = None) -> Loaded:
    """--model PATH: a model folder, a config.toml, a .emd, a .dlpk or a bare .onnx."""
    path = Path(path)
    if not path.exists():
        return [LoadFailure(path.stem, "", f"{path} does not exist; expected {SUPPORTED_PATHS}", path)]
    if path.is_dir():
        return load_model_dir(path, dlpk_cache=dlpk_cache)
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return load_model_dir(path.parent, config=path, dlpk_cache=dlpk_cache)
    if suffix in (".emd", ".dlpk"):
        return _one(lambda: _esri(path, dlpk_cache), path.stem, path)
    if suffix == ".onnx":
        classes = path.parent / CLASSES_FILE
        found = classes if classes.is_file() else None
        return _one(lambda: _bare_spec(path, path.stem, "1", found), path.stem, path)
    if suffix in FOREIGN:
        reason = (f"{path.name} is a {FOREIGN[suffix]} model; roiclass runs ONNX models only "
                  f"({SUPPORTED_PATHS}; Esri: {EMD_SUPPORTED})")
    else:
        reason = f"{path.name}: unsupported model path; expected {SUPPORTED_PATHS}"
    return [LoadFailure(path.stem, "", reason, path)]


def load_repository(root: Path, dlpk_cache: Path | None = None) -> Loaded:
    """Every model and version under a repository folder.

    Sub-folders are models; .emd/.dlpk/.onnx files directly in the root are
    models too (named by file stem). Names starting with "." or "_" are
    skipped (so a Python package folder works as a repository). A name used
    twice keeps the first (in folder order) and reports the others.
    """
    root = Path(root)
    if not root.is_dir():
        raise ModelConfigError(f"model repository {root} is not a folder")
    out: Loaded = []
    claimed: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if _hidden(entry):
            continue
        if entry.is_dir():
            items = load_model_dir(entry, dlpk_cache=dlpk_cache)
        elif entry.suffix.lower() in (".emd", ".dlpk", ".onnx"):
            items = load_model_path(entry, dlpk_cache)
        else:
            continue
        for item in items:
            first = claimed.setdefault(item.name, entry)
            if first != entry:
                src = item.source if isinstance(item, LoadFailure) else item.source or item.onnx_path
                reason = f"{entry}: model name {item.name!r} is already used by {first}"
                item = LoadFailure(item.name, item.version, reason, src)
            out.append(item)
    return out


def builtin_repository() -> Path:
    """The model repository shipped inside the package (roiclass.models)."""
    return Path(str(resources.files("roiclass.models")))
