"""roiclass.geo: GIS batch classification (`roiclass geo`, README: GIS).

A raster (or an image collection) and a feature layer in, the same features
out with a class label, as ArcGIS's "Classify Objects Using Deep Learning":

    from roiclass.geo import classify_features
    summary = classify_features("scene.tif", features="houses.gpkg", out="labelled.gpkg", local=True)
    table = classify_features("scene.tif", features="houses.gpkg", server="10.0.0.5:50051").table

Without `out` the result is a pyarrow Table (the attributes, the label
fields and a WKB "geometry" column; its schema metadata "crs" says the
CRS): `table.to_pandas()` or `geopandas.GeoDataFrame.from_arrow(table)`
where those are installed. Reading, chipping and writing need the `geo`
extra (pip install 'roiclass[geo]').
"""
from __future__ import annotations

import os
from typing import Any, Sequence

__all__ = ["classify_features"]


def classify_features(rasters: str | os.PathLike | Sequence[str | os.PathLike], features: str | None = None,
                      out: str | None = None, *, server: str | Sequence[str] | None = None, **options: Any):
    """Classifies every feature of `features` (or each image, without it)
    on `rasters`; returns a Summary (counts, seconds, and `.table` when
    `out` is None). options: GeoConfig's fields (model=, emd=, local=,
    chip=, padding=, blacken=, processing_mode=, batch_size=,
    min_confidence=, all_classes=, extent=, cell_size=, parallel=,
    retries=, overwrite=, append=, fields=FieldNames(...)). Bad input raises
    GeoInputError (a ValueError naming the file)."""
    from .config import GeoConfig
    from .run import run

    if isinstance(rasters, (str, os.PathLike)):
        rasters = [rasters]
    servers = (server,) if isinstance(server, str) else tuple(server or ())
    servers = tuple(s for item in servers for s in item.split(",") if s.strip())
    config = GeoConfig(rasters=tuple(str(r) for r in rasters), out=None if out is None else str(out),
                       features=None if features is None else str(features), servers=servers, **options)
    return run(config)
