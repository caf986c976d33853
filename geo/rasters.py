"""Rasters: the RASTER arguments -> opened images, and windows read from them.

A folder argument is an image collection: every file in it that rasterio
opens, in name order. Windows are read as plain (non-boundless) reads of
their part inside the raster into an array pre-filled with the fill value:
rasterio's `boundless=True` goes through a VRT and costs ~25x a plain read
of a chip. GDAL's block cache is capped (RasterEnv) so memory follows the
chips in flight, not the raster's size.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from .errors import GeoInputError

logger = logging.getLogger(__name__)

# GDAL's default cache is 5 % of RAM; tile-ordered reads need ~two rows of tiles.
DEFAULT_CACHE_MB = 128
SAMPLE_TYPES = {"uint8": np.uint8, "uint16": np.uint16, "float32": np.float32}


def raster_env(cache_mb: int = DEFAULT_CACHE_MB) -> rasterio.Env:
    """The GDAL settings every read runs under (a context manager)."""
    return rasterio.Env(GDAL_CACHEMAX=int(cache_mb), GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR")


@dataclass
class Raster:
    """One opened image. georeferenced: it has a CRS and a geotransform
    (an image without them gives table rows, as Esri's tool does).

    A GDAL dataset must not be read from two threads at once: each reading
    thread gets its own handle (reader()), opened from `source` (the path,
    or a mosaic's VRT XML); GDAL's block cache is shared by all of them."""

    path: str
    dataset: rasterio.io.DatasetReader
    georeferenced: bool
    footprint: object = None  # where it has pixels, in its pixel coordinates (None: all of it)
    source: str | None = None  # what reader() opens (None: path)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _handles: list = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reader(self) -> rasterio.io.DatasetReader:
        """This thread's handle on the raster."""
        handle = getattr(self._local, "dataset", None)
        if handle is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                handle = rasterio.open(self.source or self.path)
            self._local.dataset = handle
            with self._lock:
                self._handles.append(handle)
        return handle

    @property
    def transform(self) -> Affine:
        return self.dataset.transform

    @property
    def crs(self):
        return self.dataset.crs

    @property
    def shape(self) -> tuple[int, int]:
        return self.dataset.height, self.dataset.width

    @property
    def bands(self) -> int:
        return self.dataset.count

    @property
    def nodata(self) -> float | None:
        return self.dataset.nodata

    @property
    def fill(self) -> float:
        """What pixels outside the raster read as: its nodata, else 0."""
        return 0 if self.nodata is None or math.isnan(self.nodata) else self.nodata

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.dataset.dtypes[0])

    def close(self) -> None:
        with self._lock:
            for handle in self._handles:
                handle.close()
            self._handles.clear()
        self.dataset.close()


def expand(paths: Sequence[str | os.PathLike]) -> list[str]:
    """RASTER arguments -> files (a folder: its files, in name order)."""
    files: list[str] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and not _sidecar(p))
            if not found:
                raise GeoInputError(str(path), "the folder holds no files")
            files += [str(p) for p in found]
        else:
            files.append(str(path))
    if not files:
        raise GeoInputError("RASTER", "no raster given")
    return files


def _sidecar(path: Path) -> bool:
    """GDAL's side files (.aux.xml, .ovr, world files, masks) are not images."""
    name = path.name.lower()
    return name.endswith((".aux.xml", ".ovr", ".msk", ".tfw", ".tifw", ".wld", ".jgw", ".pgw", ".prj", ".xml"))


def open_raster(path: str, folder_member: bool = False) -> Raster | None:
    """Opens one image; an unreadable file raises GeoInputError naming it
    (a file of a folder that is not a raster is skipped: None)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(path)
    except (RasterioIOError, OSError) as error:
        if folder_member:
            logger.info("skipping %s: not a raster (%s)", path, error)
            return None
        raise GeoInputError(path, f"rasterio cannot open it: {_first_line(error)}") from None
    if dataset.count < 1:
        dataset.close()
        raise GeoInputError(path, "the raster has no bands")
    if len(set(dataset.dtypes)) > 1:
        dataset.close()
        raise GeoInputError(path, f"bands of different sample types ({', '.join(dataset.dtypes)}) are not supported")
    georeferenced = dataset.crs is not None and not dataset.transform.is_identity
    return Raster(path, dataset, georeferenced)


def open_rasters(paths: Sequence[str | os.PathLike]) -> list[Raster]:
    in_folder = {str(p) for item in paths if Path(item).is_dir() for p in Path(item).iterdir()}
    rasters = []
    for path in expand(paths):
        raster = open_raster(path, folder_member=path in in_folder)
        if raster is not None:
            rasters.append(raster)
    if not rasters:
        raise GeoInputError(", ".join(str(p) for p in paths), "no file rasterio can open")
    return rasters


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def read_window(raster: Raster, col: int, row: int, width: int, height: int, scale: float = 1.0) -> np.ndarray:
    """The window's pixels as (height, width, bands) (times `scale` each side,
    resampled, under --cell-size), outside the raster = its fill value."""
    ds = raster.reader()
    out_h, out_w = max(1, round(height * scale)), max(1, round(width * scale))
    if scale != 1.0:  # rare (--cell-size, huge chips): GDAL resamples the whole window
        data = ds.read(window=Window(col, row, width, height), out_shape=(ds.count, out_h, out_w),
                       boundless=True, fill_value=raster.fill, resampling=Resampling.bilinear)
        return np.ascontiguousarray(data.transpose(1, 2, 0))
    out = np.full((ds.count, height, width), raster.fill, dtype=raster.dtype)
    c0, r0 = max(col, 0), max(row, 0)
    c1, r1 = min(col + width, ds.width), min(row + height, ds.height)
    if c1 > c0 and r1 > r0:
        ds.read(window=Window(c0, r0, c1 - c0, r1 - r0), out=out[:, r0 - row:r1 - row, c0 - col:c1 - col])
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def overview_read(raster: Raster, max_side: int) -> tuple[np.ndarray, float]:
    """The whole image at most max_side pixels on its long side (GDAL uses
    the overviews where there are some): (pixels, scale)."""
    height, width = raster.shape
    scale = min(1.0, max_side / max(height, width))
    return read_window(raster, 0, 0, width, height, scale), scale
