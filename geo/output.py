"""The output file: the format follows OUT's extension; written into a
temporary folder beside OUT and renamed into place only when every feature
is in, so a failed run never leaves a half-written OUT.

--append copies the existing output into the temporary folder first and
adds to it there (the layer's fields must be the same).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from .errors import GeoInputError

# extension -> GDAL driver (None: written by pyarrow)
FORMATS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile",
           ".fgb": "FlatGeobuf", ".csv": "CSV", ".parquet": None}
# A Shapefile is several files.
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix")


def check_out(out: str | os.PathLike, overwrite: bool, append: bool) -> Path:
    """OUT's path, refused early: unknown extension, existing without --overwrite/--append."""
    path = Path(out)
    if path.suffix.lower() not in FORMATS:
        raise GeoInputError(str(path), f"unknown output format {path.suffix!r}; use one of {', '.join(FORMATS)}")
    if overwrite and append:
        raise GeoInputError(str(path), "--overwrite and --append exclude each other")
    if path.exists() and not (overwrite or append):
        raise GeoInputError(str(path), "exists; give --overwrite to replace it or --append to add to it")
    if append and not path.exists():
        raise GeoInputError(str(path), "--append needs an existing output, and there is none")
    if not path.parent.exists():
        raise GeoInputError(str(path), f"the folder {path.parent} does not exist")
    return path


class OutputWriter:
    """Writes chunks (an Arrow table of attributes + a shapely geometry array
    or None for a table) to the temporary file; commit() renames it to OUT."""

    def __init__(self, out: Path, crs: str | None, geometry_type: str | None, append: bool = False) -> None:
        self.out = out
        self.driver = FORMATS[out.suffix.lower()]
        self.crs = crs
        self.geometry_type = geometry_type
        self.append = append
        try:
            self._tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        except OSError as error:
            raise GeoInputError(str(out), f"cannot write there: {error.strerror or error}") from None
        self.target = self._tmp / out.name
        self._written = False
        self._parquet = None
        if append:
            for part in self._parts(out):
                shutil.copy2(part, self._tmp / part.name)

    def _parts(self, path: Path) -> list[Path]:
        if self.driver == "ESRI Shapefile":
            return [p for p in (path.with_suffix(s) for s in SHAPEFILE_PARTS) if p.exists()]
        return [path] if path.exists() else []

    def write(self, table: pa.Table, geometries: np.ndarray | None) -> None:
        try:
            if self.driver is None:
                self._write_parquet(table, geometries)
            else:
                self._write_ogr(table, geometries)
        except (DataSourceError, DataLayerError, OSError, ValueError, pa.ArrowException) as error:
            raise GeoInputError(str(self.out), f"cannot write it: {str(error).strip().splitlines()[0]}") from None
        self._written = True

    def _write_ogr(self, table: pa.Table, geometries: np.ndarray | None) -> None:
        append = self._written or self.append
        if append and not self._written:
            self._check_schema(table)
        kwargs = {}
        if self.driver == "CSV" and geometries is not None:
            kwargs["layer_options"] = {"GEOMETRY": "AS_WKT"}
        if self.driver == "FlatGeobuf":  # its spatial index reorders the features
            kwargs["layer_options"] = {"SPATIAL_INDEX": "NO"}
        if geometries is None:
            pyogrio.write_arrow(table, str(self.target), driver=self.driver, append=append, **kwargs)
            return
        table = table.append_column("geometry", pa.array(shapely.to_wkb(geometries), pa.binary()))
        pyogrio.write_arrow(table, str(self.target), driver=self.driver, geometry_name="geometry",
                            geometry_type=self.geometry_type or "Unknown", crs=self.crs, append=append,
                            **kwargs)

    def _check_schema(self, table: pa.Table) -> None:
        fields = tuple(pyogrio.read_info(str(self.target))["fields"])
        ours = tuple(n for n in table.column_names)
        if tuple(f.lower() for f in fields) != tuple(f.lower() for f in ours):
            raise GeoInputError(str(self.out), f"--append: its fields {list(fields)} differ from this run's {list(ours)}")

    def _write_parquet(self, table: pa.Table, geometries: np.ndarray | None) -> None:
        import pyarrow.parquet as pq

        if geometries is not None:
            table = table.append_column("geometry", pa.array(shapely.to_wkb(geometries), pa.binary()))
        if self._parquet is None:
            schema = table.schema
            previous = None
            if self.append:
                previous = pq.read_table(self.target)
                if previous.schema.names != schema.names:
                    raise GeoInputError(str(self.out), f"--append: its columns {previous.schema.names} differ "
                                                       f"from this run's {schema.names}")
                table = table.cast(previous.schema)
                schema = previous.schema
            if geometries is not None:
                schema = schema.with_metadata({**(schema.metadata or {}), b"geo": _geoparquet(self.crs)})
            self._parquet = pq.ParquetWriter(str(self.target) + ".part", schema)
            if previous is not None:
                self._parquet.write_table(previous.cast(schema))
        self._parquet.write_table(table.cast(self._parquet.schema))

    def commit(self) -> None:
        """Renames the finished file(s) to OUT (an overwritten OUT goes first)."""
        try:
            if self._parquet is not None:
                self._parquet.close()
                os.replace(str(self.target) + ".part", self.target)
            if not self.append:
                for part in self._parts(self.out):
                    part.unlink()
            for part in sorted(self._tmp.iterdir()):
                os.replace(part, self.out.parent / part.name)
        except OSError as error:
            raise GeoInputError(str(self.out), f"cannot write it: {error.strerror or error}") from None
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def abort(self) -> None:
        if self._parquet is not None:
            try:
                self._parquet.close()
            except Exception:  # noqa: BLE001 - the run failed already; the file goes anyway
                pass
        shutil.rmtree(self._tmp, ignore_errors=True)


def _geoparquet(crs: str | None) -> bytes:
    """GeoParquet 1.0 metadata of the WKB "geometry" column."""
    column: dict = {"encoding": "WKB", "geometry_types": []}
    if crs:
        from pyproj import CRS

        column["crs"] = CRS.from_user_input(crs).to_json_dict()
    return json.dumps({"version": "1.0.0", "primary_column": "geometry", "columns": {"geometry": column}}).encode()
