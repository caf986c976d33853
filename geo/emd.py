"""The chip keys of an Esri model definition (.emd, or the .emd in a .dlpk).

The model itself (ModelFile, ExtractBands, DataRange, NormalizationStats...)
is read by the server (roiclass.server.models.emd), locally with --local or
by a server that loaded the same file. This module reads only what decides
how chips are cut and labelled, which the server never sees:

  CropSizeFixed         1 -> fixed chips, 0 -> bbox chips
  BlackenAroundFeature  1 -> mask outside the polygon
  ImageSpaceUsed        MAP_SPACE | PIXEL_SPACE
  ImageWidth/Height     the fixed chip's size in cells
  BatchSize             chips per batch (bounds the chips in flight)
  Classes               Value (or ClassValue) per class Name (or ClassName): ClassValue
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GeoInputError


@dataclass(frozen=True)
class EmdKeys:
    path: str
    name: str  # the model's name: the file's stem, as the server names it
    crop_size_fixed: bool | None = None
    blacken: bool | None = None
    space: str | None = None
    width: int | None = None
    height: int | None = None
    batch_size: int | None = None
    class_values: dict[str, int] = field(default_factory=dict)


def read_keys(path: str | Path) -> EmdKeys:
    path = Path(path)
    data = _load(path)
    if not isinstance(data, dict):
        raise GeoInputError(str(path), "not an Esri model definition (expected a JSON object)")
    space = data.get("ImageSpaceUsed")
    if space is not None and str(space).upper() not in ("MAP_SPACE", "PIXEL_SPACE"):
        raise GeoInputError(str(path), f"ImageSpaceUsed must be MAP_SPACE or PIXEL_SPACE, got {space!r}")
    return EmdKeys(
        path=str(path),
        name=path.stem,
        crop_size_fixed=_flag(data, "CropSizeFixed", path),
        blacken=_flag(data, "BlackenAroundFeature", path),
        space=str(space).upper() if space is not None else None,
        width=_positive(data, "ImageWidth", path),
        height=_positive(data, "ImageHeight", path),
        batch_size=_positive(data, "BatchSize", path),
        class_values=_class_values(data.get("Classes") or [], path),
    )


def model_files(path: str | Path) -> dict[str, bytes]:
    """The files that make the model on a server (AsyncClassifier.upload_model): a .dlpk as it
    is; an .emd with its ModelFile, which must sit in the .emd's folder or below it."""
    path = Path(path)
    try:
        files = {f"{path.stem}{path.suffix.lower()}": path.read_bytes()}
    except OSError as error:
        raise GeoInputError(str(path), f"cannot read it: {error.strerror or error}") from None
    if path.suffix.lower() == ".dlpk":
        return files
    model_file = _load(path).get("ModelFile")
    relative = Path(str(model_file or ""))
    if not model_file or relative.is_absolute() or ".." in relative.parts:
        raise GeoInputError(str(path), f"ModelFile must be a file beside the .emd (or below it), got {model_file!r}")
    try:
        files[relative.as_posix()] = (path.parent / relative).read_bytes()
    except OSError as error:
        raise GeoInputError(str(path.parent / relative), f"cannot read the .emd's ModelFile: "
                                                         f"{error.strerror or error}") from None
    return files


def _load(path: Path):
    try:
        if path.suffix.lower() == ".dlpk":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.lower().endswith(".emd")]
                if not names:
                    raise GeoInputError(str(path), "the .dlpk holds no .emd")
                return json.loads(archive.read(sorted(names, key=len)[0]).decode("utf-8-sig"))
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, zipfile.BadZipFile) as error:
        raise GeoInputError(str(path), f"cannot read it: {getattr(error, 'strerror', None) or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise GeoInputError(str(path), f"not valid JSON: {error}") from None


def _flag(data: dict, key: str, path: Path) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if value in (0, 1, "0", "1", True, False):
        return bool(int(value))
    raise GeoInputError(str(path), f"{key} must be 0 or 1, got {value!r}")


def _positive(data: dict, key: str, path: Path) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value <= 0:
        raise GeoInputError(str(path), f"{key} must be a positive integer, got {value!r}")
    return int(value)


def _class_values(classes: list, path: Path) -> dict[str, int]:
    values = {}
    for item in classes:
        if not isinstance(item, dict):
            raise GeoInputError(str(path), f"Classes entries must be objects, got {item!r}")
        name = item.get("Name", item.get("ClassName"))
        value = item.get("Value", item.get("ClassValue"))
        if name is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            values[str(name)] = int(value)
    return values
