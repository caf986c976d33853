"""Outputs by extension, round trips through pyogrio/pyarrow, and the
temp-file rules: nothing half-written, an existing OUT refused."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely

from roiclass.geo.errors import GeoInputError
from roiclass.geo.output import OutputWriter, check_out

TABLE = pa.table({"name": ["a", "b"], "n": pa.array([1, 2], pa.int32()), "ClassLabel": ["cat", None]})
GEOMS = np.array([shapely.Point(15.1, 45.2), shapely.Point(15.2, 45.3)])


@pytest.mark.parametrize("ext", [".gpkg", ".geojson", ".shp", ".fgb", ".csv"])
def test_ogr_formats_round_trip(tmp_path, ext):
    out = check_out(tmp_path / f"out{ext}", False, False)
    writer = OutputWriter(out, "EPSG:4326", "Point")
    writer.write(TABLE.slice(0, 1), GEOMS[:1])
    writer.write(TABLE.slice(1, 1), GEOMS[1:])  # chunks append
    assert not out.exists()  # only after commit
    writer.commit()
    meta, table = pyogrio.read_arrow(str(out))
    assert table.column("name").to_pylist() == ["a", "b"]
    assert table.column("ClassLabel").to_pylist() == ["cat", "" if ext == ".csv" else None]  # CSV has no null
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []
    if ext != ".csv":
        assert "4326" in meta["crs"]
        geometry = shapely.from_wkb(table.column(meta["geometry_name"] or "wkb_geometry").to_numpy(False))
        assert shapely.equals_exact(geometry, GEOMS, 1e-9).all()


def test_parquet_is_geoparquet(tmp_path):
    out = check_out(tmp_path / "out.parquet", False, False)
    writer = OutputWriter(out, "EPSG:4326", "Point")
    writer.write(TABLE, GEOMS)
    writer.commit()
    table = pq.read_table(out)
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["primary_column"] == "geometry" and geo["columns"]["geometry"]["crs"]["id"]["code"] == 4326
    assert shapely.equals(shapely.from_wkb(table.column("geometry").to_numpy(False)), GEOMS).all()


def test_a_table_without_geometry(tmp_path):
    for ext in (".csv", ".parquet", ".gpkg"):
        out = check_out(tmp_path / f"t{ext}", False, False)
        writer = OutputWriter(out, None, None)
        writer.write(TABLE, None)
        writer.commit()
        assert out.exists()


def test_existing_out_is_refused_unless_overwrite_or_append(tmp_path):
    out = tmp_path / "out.gpkg"
    writer = OutputWriter(check_out(out, False, False), "EPSG:4326", "Point")
    writer.write(TABLE, GEOMS)
    writer.commit()
    with pytest.raises(GeoInputError, match="out.gpkg: exists; give --overwrite"):
        check_out(out, False, False)
    appended = OutputWriter(check_out(out, False, True), "EPSG:4326", "Point", append=True)
    appended.write(TABLE, GEOMS)
    appended.commit()
    assert pyogrio.read_info(str(out))["features"] == 4
    bad = OutputWriter(check_out(out, False, True), "EPSG:4326", "Point", append=True)
    with pytest.raises(GeoInputError, match="differ"):
        bad.write(TABLE.drop(["n"]), GEOMS)
    bad.abort()
    assert pyogrio.read_info(str(out))["features"] == 4  # untouched


def test_abort_leaves_nothing_and_a_bad_extension_or_folder_is_named(tmp_path):
    out = check_out(tmp_path / "out.shp", False, False)
    writer = OutputWriter(out, "EPSG:4326", "Point")
    writer.write(TABLE, GEOMS)
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(GeoInputError, match="out.xyz: unknown output format"):
        check_out(tmp_path / "out.xyz", False, False)
    with pytest.raises(GeoInputError, match="does not exist"):
        check_out(tmp_path / "no" / "out.gpkg", False, False)


def test_a_write_protected_folder_is_named(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    # root writes into a 0500 folder: /proc takes no new files from anyone
    folder = Path("/proc") if os.geteuid() == 0 else locked
    try:
        with pytest.raises(GeoInputError, match="out.gpkg: cannot write there"):
            OutputWriter(check_out(folder / "out.gpkg", False, False), None, "Point")
    finally:
        locked.chmod(0o700)
