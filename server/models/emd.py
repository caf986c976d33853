"""Esri model definitions: .emd (JSON) and .dlpk (zip of an .emd and its model).

Read as Esri writes them (ArcGIS Pro, arcgis.learn). Mapping to ModelSpec:
  ModelFile          the .onnx, relative to the .emd; other frameworks are refused
  Framework          "ONNX" in any case ("Onnx"), when present
  ImageWidth/Height  input size (else from the ONNX shape)
  ExtractBands       0-based band indices (as in every Esri file) -> extract_bands
  Classes            [{Value, Name, Color}] or {ClassValue, ClassName}: class index =
                     position in the list as given (not Value); the Value of index i is
                     EmdInfo.class_values[i]
  DataRange [lo, hi] the range the MODEL expects: ArcGIS rescales the chip from the
                     raster's range (here: the sample type's full range, 0..255 units)
                     into it: x' = lo + x / 255 * (hi - lo), i.e. std = 255 / (hi - lo),
                     mean = -lo * std (no DataRange: 0..1, "unit")
  NormalizationStats arcgis.learn's multispectral statistics, one value per raster band,
                     indexed by ExtractBands: x' = (x - band_min) / (band_max - band_min
                     + 1e-05), then (x' - scaled_mean) / scaled_std, on the raw values
                     (ModelSpec.raw_units); takes precedence over DataRange
  BatchSize          max_batch_size
  IsMultispectral    accepted (a boolean); ModelPadding accepted and ignored (it is for
                     pixel classification tiles, not object classification)
The model name is the .emd (or .dlpk) file's stem (in a repository: the
model folder's name), the version "1". Whether
outputs are logits is found by running the model once (.emd does not say).
The other keys (CropSizeFixed, BlackenAroundFeature, ImageSpaceUsed...) are
the chipping tool's: EmdInfo.data holds the whole file for it.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import normalization as norm
from .builder import build_spec
from .digest import sha256_file
from .errors import ModelConfigError
from .lru import LruCache
from .spec import ModelSpec

log = logging.getLogger(__name__)

SUPPORTED = 'Framework "ONNX" with a ModelFile ending in .onnx'


@dataclass(frozen=True)
class EmdInfo:
    spec: ModelSpec
    # Esri class Value per class index (the order of "Classes").
    class_values: tuple[int, ...]
    # The parsed .emd, for the keys of the chipping tool (roiclass geo).
    data: dict = field(default_factory=dict)


def _int(data: dict, key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value <= 0:
        raise ModelConfigError(f"{where}: {key} must be a positive integer, got {value!r}")
    return int(value)


def read_emd(path: Path, *, name: str | None = None, fmt: str = "emd", source: Path | None = None) -> EmdInfo:
    """Parse an .emd and build the spec of the ONNX model it points to."""
    path = Path(path)
    where = str(source or path)
    data = _load_json(path, where)
    onnx_path = _onnx_path(data, path, where)  # the checks in the order Esri's fields come
    extract = _extract_bands(data, where)
    classes, values = _classes(data, where)
    _flag(data, "IsMultispectral", where)
    stats = normalization_stats(data, extract, where)
    mean, std, normalization = stats if stats is not None else _data_range(data, where)
    spec = build_spec(
        onnx_path,
        name=name or path.stem,
        version="1",
        where=where,
        fmt=fmt,
        source=source or path,
        classes=classes,
        input_width=_int(data, "ImageWidth", where),
        input_height=_int(data, "ImageHeight", where),
        extract_bands=extract,
        normalization=normalization,
        mean=mean,
        std=std,
        raw_units=stats is not None,
        max_batch_size=_int(data, "BatchSize", where),
    )
    return EmdInfo(spec, values or tuple(range(len(spec.classes))), data)


def _load_json(path: Path, where: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ModelConfigError(f"{where}: cannot be read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ModelConfigError(f"{where}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelConfigError(f"{where}: an .emd must be a JSON object")
    return data


def _onnx_path(data: dict, path: Path, where: str) -> Path:
    framework = data.get("Framework")
    if framework is not None and str(framework).strip().lower() != "onnx":
        raise ModelConfigError(f"{where}: Framework {framework!r} is not supported; roiclass supports {SUPPORTED}")
    model_file = data.get("ModelFile")
    if not isinstance(model_file, str) or not model_file:
        raise ModelConfigError(f"{where}: ModelFile (the model's file name, relative to the .emd) is missing")
    onnx_path = (path.parent / model_file).resolve()
    if onnx_path.suffix.lower() != ".onnx":
        raise ModelConfigError(f"{where}: ModelFile {model_file!r} is not supported; roiclass supports {SUPPORTED}")
    return onnx_path


def _extract_bands(data: dict, where: str) -> tuple[int, ...] | None:
    """Esri's ExtractBands: 0-based band indices, as our band list."""
    bands = data.get("ExtractBands")
    if bands is None:
        return None
    if not isinstance(bands, list) or not bands or not all(
        isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in bands
    ):
        raise ModelConfigError(f"{where}: ExtractBands must be a list of 0-based band indices (>= 0), got {bands!r}")
    return tuple(bands)


def _flag(data: dict, key: str, where: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise ModelConfigError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def _classes(data: dict, where: str) -> tuple[tuple[str, ...] | None, tuple[int, ...]]:
    """Class names and their Esri Values (None, () when the .emd lists none)."""
    raw = data.get("Classes")
    if raw is None:
        return None, ()
    if not isinstance(raw, list) or not raw:
        raise ModelConfigError(f"{where}: Classes must be a non-empty list of {{Value, Name, Color}}")
    names, vals = [], []
    for i, item in enumerate(raw):
        # ArcGIS Pro writes Value/Name; some Esri tools ClassValue/ClassName
        name = item.get("Name", item.get("ClassName")) if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise ModelConfigError(f"{where}: Classes[{i}] must be an object with a string Name (or ClassName)")
        value = item.get("Value", item.get("ClassValue", i))
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelConfigError(f"{where}: Classes[{i}].Value must be an integer, got {value!r}")
        names.append(name)
        vals.append(value)
    return tuple(names), tuple(vals)


def _data_range(data: dict, where: str) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None, str]:
    """DataRange [lo, hi], the model's range -> (mean, std, normalization) in
    0..255 units: x' = lo + x / 255 * (hi - lo)."""
    rng = data.get("DataRange")
    if rng is None:
        return None, None, "unit"
    if (
        not isinstance(rng, list) or len(rng) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rng)
        or rng[1] <= rng[0]
    ):
        raise ModelConfigError(f"{where}: DataRange must be [min, max] with min < max, got {rng!r}")
    mean, std = norm.data_range(float(rng[0]), float(rng[1]))
    return (mean,), (std,), "custom"


STATS_KEYS = ("band_min_values", "band_max_values", "scaled_mean_values", "scaled_std_values")


def normalization_stats(data: dict, bands: tuple[int, ...] | None, where: str):
    """NormalizationStats -> (mean, std, "custom") per model channel in raw
    units, or None when the .emd has none. The lists hold one value per raster
    band; model channel k reads band bands[k] (k without ExtractBands)."""
    stats = data.get("NormalizationStats")
    if stats is None:
        return None
    if not isinstance(stats, dict):
        raise ModelConfigError(f"{where}: NormalizationStats must be an object with {', '.join(STATS_KEYS)}")
    lists = {}
    for key in STATS_KEYS:
        values = stats.get(key)
        if values is None and key.startswith("scaled_"):
            continue  # min-max scaling only
        if not isinstance(values, list) or not values or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ModelConfigError(f"{where}: NormalizationStats.{key} must be a list of numbers (one per band), "
                                   f"got {values!r}")
        lists[key] = [float(v) for v in values]
    lo, hi = lists["band_min_values"], lists["band_max_values"]
    picked = bands if bands is not None else tuple(range(len(lo)))
    shortest = min(len(v) for v in lists.values())
    if max(picked) >= shortest:
        raise ModelConfigError(f"{where}: NormalizationStats has {shortest} values per list but ExtractBands "
                               f"reads band {max(picked)}")
    mean, std = [], []
    for b in picked:
        s_mean = lists["scaled_mean_values"][b] if "scaled_mean_values" in lists else 0.0
        s_std = lists["scaled_std_values"][b] if "scaled_std_values" in lists else 1.0
        if not hi[b] > lo[b] or not s_std > 0:
            raise ModelConfigError(f"{where}: NormalizationStats for band {b}: band_max must exceed band_min "
                                   f"and scaled_std must be > 0")
        m, sd = norm.minmax_scaled(lo[b], hi[b], s_mean, s_std)
        mean.append(m)
        std.append(sd)
    return tuple(mean), tuple(std), "custom"


# Package stamp (path, size, mtime, cache folder) -> its extracted folder.
CACHE_SIZE = 256
_extracted: LruCache[Path] = LruCache(CACHE_SIZE)


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "roiclass-dlpk"


def extract_dlpk(path: Path, cache_dir: Path | None = None) -> Path:
    """Unzip a .dlpk once into cache_dir/<stem>-<sha>/ and return that folder.

    Keyed by content hash, so a changed package gets a new folder; extracted
    to a temporary folder first, then renamed, so readers never see half.
    """
    path = Path(path)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    st = path.stat()
    # Hashing a big package on every repository poll is wasteful: remember it.
    stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns, str(cache))
    known = _extracted.get(stamp)
    if known is not None and known.is_dir():
        return known
    target = cache / f"{path.stem}-{sha256_file(path)[:16]}"
    if target.is_dir():
        _extracted.put(stamp, target)
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache))
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                dest = (tmp / member).resolve()
                # Refuse entries that would land outside the folder ("zip slip").
                if not dest.is_relative_to(tmp.resolve()):
                    raise ModelConfigError(f"{path}: entry {member!r} points outside the package")
            zf.extractall(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # someone else won the race otherwise
                raise
    except zipfile.BadZipFile as exc:
        raise ModelConfigError(f"{path}: not a valid .dlpk (zip) file: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _extracted.put(stamp, target)
    return target


def read_dlpk(path: Path, cache_dir: Path | None = None, name: str | None = None) -> EmdInfo:
    """Extract a .dlpk and read the one .emd inside it."""
    path = Path(path)
    folder = extract_dlpk(path, cache_dir)
    emds = sorted(folder.rglob("*.emd"))
    if len(emds) != 1:
        found = ", ".join(str(e.relative_to(folder)) for e in emds) or "none"
        raise ModelConfigError(f"{path}: a .dlpk must hold exactly one .emd; found {found}")
    return read_emd(emds[0], name=name or path.stem, fmt="dlpk", source=path)
