"""Layers in chunks, the .emd's chip keys, the policy precedence, and the mosaic VRT."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pyarrow as pa
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from roiclass.geo.config import GeoConfig
from roiclass.geo.emd import read_keys
from roiclass.geo.errors import GeoInputError
from roiclass.geo.layers import layer_info, read_chunks
from roiclass.geo.mosaic import mosaic
from roiclass.geo.plan import Chip, plan_frames
from roiclass.geo.rasters import open_raster, read_window
from tests.esri_files import ESRI_EMD
from tests.unit.geo.conftest import write_raster

ESRI = ESRI_EMD


def _layer(path, n):
    table = pa.table({"id": pa.array(range(n), pa.int32()),
                      "geometry": shapely.to_wkb(shapely.points(np.arange(n), np.arange(n)))})
    pyogrio.write_arrow(table, str(path), geometry_name="geometry", geometry_type="Point", crs="EPSG:4326")
    return path


def test_layer_in_chunks_keeps_order_and_attributes(tmp_path):
    info = layer_info(_layer(tmp_path / "p.gpkg", 10))
    chunks = list(read_chunks(info, size=4))
    assert [len(c) for c in chunks] == [4, 4, 2] and [c.start for c in chunks] == [0, 4, 8]
    assert sum((c.attributes.column("id").to_pylist() for c in chunks), []) == list(range(10))
    assert shapely.get_x(chunks[2].geometries).tolist() == [8.0, 9.0]


def test_bad_layers_are_named(tmp_path):
    (tmp_path / "junk.gpkg").write_bytes(b"\0junk")
    with pytest.raises(GeoInputError, match="junk.gpkg: pyogrio cannot open it"):
        layer_info(tmp_path / "junk.gpkg")
    empty = tmp_path / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(GeoInputError, match="empty.geojson: the layer is empty"):
        layer_info(empty)


def test_emd_chip_keys_and_the_dlpk(tmp_path):
    emd = {"Framework": "ONNX", "ModelFile": "m.onnx", "CropSizeFixed": 0, "BlackenAroundFeature": 1,
           "ImageSpaceUsed": "PIXEL_SPACE", "ImageWidth": 64, "ImageHeight": 48, "BatchSize": 8,
           "Classes": [{"Value": 10, "Name": "damaged"}, {"ClassValue": 20, "ClassName": "intact"}]}
    (tmp_path / "m.emd").write_text(json.dumps(emd))
    with zipfile.ZipFile(tmp_path / "pack.dlpk", "w") as z:
        z.writestr("pack/m.emd", json.dumps(emd))
    for path in (tmp_path / "m.emd", tmp_path / "pack.dlpk"):
        keys = read_keys(path)
        assert (keys.crop_size_fixed, keys.blacken, keys.space, keys.width, keys.height, keys.batch_size) == \
               (False, True, "PIXEL_SPACE", 64, 48, 8)
        assert keys.class_values == {"damaged": 10, "intact": 20}
    policy = GeoConfig(rasters=("x",)).policy(keys, 224, 224)
    assert (policy.mode, policy.blacken, policy.space, policy.width, policy.height) == \
           ("bbox", True, "PIXEL_SPACE", 64, 48)
    flags = GeoConfig(rasters=("x",), chip="oriented", blacken=False, padding=3).policy(keys, 224, 224)
    assert (flags.mode, flags.blacken, flags.padding) == ("oriented", False, 3)
    assert GeoConfig(rasters=("x",)).policy(None, 224, 200).mode == "fixed"
    bad = tmp_path / "bad.emd"
    bad.write_text(json.dumps({"ImageSpaceUsed": "GLOBE"}))
    with pytest.raises(GeoInputError, match="bad.emd: ImageSpaceUsed"):
        read_keys(bad)


def test_esri_published_emd():
    keys = read_keys(ESRI)
    assert (keys.width, keys.height, keys.name) == (256, 256, "trained")
    assert keys.class_values["Open Water"] == 3


def test_frames_follow_tile_order_and_hold_their_chips():
    rng = np.random.default_rng(1)
    centres = rng.uniform(0, 3000, (300, 2))
    chips = [Chip(i, 0, np.array([x - 16, y - 16, 32, 32, 0.0]), None, False) for i, (x, y) in enumerate(centres)]
    frames = plan_frames(chips, 32, max_rois=16)
    assert sorted(i for f in frames for i in f.chips) == list(range(300))
    cells = []
    for frame in frames:
        col, row, w, h = frame.window
        assert w <= 1024 and h <= 1024 and len(frame.chips) <= 16
        rois = frame.rois(chips)
        assert (rois[:, :2] >= 0).all() and (rois[:, 0] + 32 <= w).all() and (rois[:, 1] + 32 <= h).all()
        cells.append(((row + h / 2) // 512, (col + w / 2) // 512))
    assert cells == sorted(cells)  # row by row of 512-pixel squares
    big = [Chip(0, 0, np.array([0, 0, 5000, 3000, 0.0]), None, False)]
    (frame,) = plan_frames(big, 224)
    assert frame.scale == pytest.approx(448 / 5002)


def test_mosaic_of_two_halves_reads_like_the_whole(tmp_path):
    rows, cols = np.mgrid[0:60, 0:80]
    whole = np.stack([rows * 80 + cols + 1, rows + 1]).astype(np.uint16)
    write_raster(tmp_path / "left.tif", whole[:, :, :40], from_origin(500000, 5000000, 1, 1), nodata=0)
    write_raster(tmp_path / "right.tif", whole[:, :, 40:], from_origin(500040, 5000000, 1, 1), nodata=0)
    joined = mosaic([open_raster(str(tmp_path / n)) for n in ("left.tif", "right.tif")])
    assert joined.shape == (60, 80) and joined.footprint.area == pytest.approx(4800)
    np.testing.assert_array_equal(read_window(joined, 30, 10, 20, 20), whole[:, 10:30, 30:50].transpose(1, 2, 0))
    write_raster(tmp_path / "other.tif", whole, from_origin(500000, 5000000, 1, 1), crs="EPSG:32632")
    with pytest.raises(GeoInputError, match="other.tif: cannot join .* its CRS"):
        mosaic([open_raster(str(tmp_path / "left.tif")), open_raster(str(tmp_path / "other.tif"))])
    with rasterio.open(tmp_path / "left.tif") as ds:
        assert ds.nodata == 0
