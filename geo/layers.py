"""Feature layers in, in chunks: any vector file pyogrio opens.

Features come as Arrow record batches (pyogrio.open_arrow), geometry as WKB,
so the layer is never in memory at once and no pandas/geopandas is needed:
pyarrow holds the attributes as they were read (types, nulls) and hands them
back to pyogrio.write_arrow unchanged (geo/output.py). geopandas would add
pandas and a copy of every chunk into a DataFrame for no gain here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from .errors import GeoInputError

CHUNK = 4096  # features per chunk: bounds memory, keeps tile-ordered reads long


@dataclass(frozen=True)
class LayerInfo:
    path: str
    crs: str | None  # the layer's CRS (as pyogrio gives it: "EPSG:4326" or WKT)
    geometry_type: str
    fields: tuple[str, ...]
    count: int  # -1 when the driver cannot tell without reading


@dataclass
class Chunk:
    """`start`: index of its first feature in the layer; attributes: its
    attribute columns (Arrow); geometries: shapely array in the layer's CRS."""

    start: int
    attributes: pa.Table
    geometries: np.ndarray

    def __len__(self) -> int:
        return len(self.geometries)


def layer_info(path: str | os.PathLike) -> LayerInfo:
    path = str(path)
    try:
        info = pyogrio.read_info(path)
    except (DataSourceError, DataLayerError, OSError, ValueError) as error:
        raise GeoInputError(path, f"pyogrio cannot open it as a feature layer: {_short(error)}") from None
    count = int(info.get("features", -1))
    if count == 0:
        raise GeoInputError(path, "the layer is empty (no features)")
    if info.get("geometry_type") is None:
        raise GeoInputError(path, "the layer has no geometry column")
    return LayerInfo(path, info.get("crs"), info["geometry_type"], tuple(info.get("fields", ())), count)


def read_chunks(info: LayerInfo, size: int = CHUNK) -> Iterator[Chunk]:
    """The layer's features, `size` at a time, in the layer's order."""
    start = 0
    try:
        with pyogrio.open_arrow(info.path, batch_size=size, use_pyarrow=True) as (meta, reader):
            geometry_name = meta.get("geometry_name") or "wkb_geometry"
            for batch in reader:
                table = pa.Table.from_batches([batch])
                names = [n for n in table.column_names if n != geometry_name]
                column = table.column(geometry_name).to_numpy(zero_copy_only=False)
                geometries = shapely.from_wkb(column, on_invalid="ignore")
                yield Chunk(start, table.select(names), geometries)
                start += len(geometries)
    except (DataSourceError, DataLayerError) as error:
        raise GeoInputError(info.path, f"cannot read its features: {_short(error)}") from None
    if start == 0:
        raise GeoInputError(info.path, "the layer is empty (no features)")


def _short(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
