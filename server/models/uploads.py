"""Model files sent with a load request (Triton's RepositoryModelLoad `file:`
parameters): written into a folder this server owns, one subfolder a model,
and served from there like a `--model PATH` source.

Only names made of [A-Za-z0-9._-] (no `..`, no absolute paths) are written,
so an upload cannot reach outside its model's folder. A model's files
replace the ones it had (written beside, then swapped in by a rename).
"""
from __future__ import annotations

import re
import shutil
import tempfile
import threading
from pathlib import Path

from roiclass.server.errors import InvalidArgument

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
MAX_FILES = 32
# What a model folder's entry point may be, in the order tried.
ENTRY_POINTS = ("{name}.emd", "{name}.dlpk", "config.toml")


def check_upload(name: str, files: dict[str, bytes]) -> str:
    """The entry point among the files (raises InvalidArgument naming the parameter)."""
    if not _SEGMENT.fullmatch(name):
        raise InvalidArgument.for_field("model_name", f"must match [A-Za-z0-9._-]+ to be uploaded, not {name!r}")
    if not files or len(files) > MAX_FILES:
        raise InvalidArgument.for_field("parameters", f"must hold 1 to {MAX_FILES} file: entries, not {len(files)}")
    for path in files:
        if not all(_SEGMENT.fullmatch(part) for part in path.split("/")):
            raise InvalidArgument.for_field(
                f"parameters.file:{path}", "must be a relative path of [A-Za-z0-9._-] names (no '..', no '/' first)")
    for pattern in ENTRY_POINTS:
        entry = pattern.format(name=name)
        if entry in files:
            return entry
    raise InvalidArgument.for_field(
        "parameters", f"the files must include one of {', '.join(p.format(name=name) for p in ENTRY_POINTS)}; "
                      f"got {', '.join(sorted(files))}")


class UploadFolder:
    """The uploaded models of one server: created on first use (mode 0700)."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root
        self._created = False  # a folder of our own (a temporary one): removed by close()
        self._lock = threading.Lock()

    def write(self, name: str, files: dict[str, bytes]) -> Path:
        """Writes the model's files; returns its source path (for load_model_path)."""
        entry = check_upload(name, files)
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="roiclass-uploads-"))
                self._created = True
            staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self._root))
            for path, data in files.items():
                target = staging / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            folder = self._root / name
            old = self._root / f".{name}.old"
            if folder.exists():
                folder.rename(old)
            staging.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        return folder if entry == "config.toml" else folder / entry

    def model_of(self, path: Path) -> str | None:
        """The uploaded model a source path belongs to (None: not an upload)."""
        if self._root is None or self._root not in path.parents:
            return None
        return path.relative_to(self._root).parts[0]

    def close(self) -> None:
        """Removes the temporary folder (the engine has the models in memory)."""
        with self._lock:
            if self._created and self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                self._root, self._created = None, False
