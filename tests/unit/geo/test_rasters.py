"""Windows read as rasterio's own boundless read gives them, and the inputs refused with the file named."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from roiclass.geo.errors import GeoInputError
from roiclass.geo.rasters import expand, open_raster, open_rasters, overview_read, read_window


@pytest.mark.parametrize("window", [(10, 20, 64, 32), (-15, -7, 40, 30), (280, 190, 50, 50), (400, 10, 8, 8)])
def test_read_window_equals_rasterio_boundless(ramp_raster, window):
    path, _ = ramp_raster
    raster = open_raster(str(path))
    got = read_window(raster, *window)
    with rasterio.open(path) as ds:
        want = ds.read(window=Window(*window), boundless=True, fill_value=ds.nodata)
    np.testing.assert_array_equal(got, want.transpose(1, 2, 0))
    assert got.dtype == np.uint16 and got.flags.c_contiguous
    raster.close()


def test_scaled_read_and_overview(ramp_raster):
    path, array = ramp_raster
    raster = open_raster(str(path))
    half = read_window(raster, 0, 0, 100, 100, 0.5)
    assert half.shape == (50, 50, 4)
    whole, scale = overview_read(raster, 150)
    assert whole.shape == (100, 150, 4) and scale == pytest.approx(0.5)
    assert abs(float(whole[..., 0].mean()) - float(array[0].mean())) < 0.01 * float(array[0].mean())
    raster.close()


def test_a_file_rasterio_cannot_open_is_named(tmp_path):
    bad = tmp_path / "notes.tif"
    bad.write_text("not a raster")
    with pytest.raises(GeoInputError, match="notes.tif: rasterio cannot open it"):
        open_rasters([bad])
    with pytest.raises(GeoInputError, match="missing.tif"):
        open_rasters([tmp_path / "missing.tif"])


def test_a_folder_is_a_collection_and_skips_what_is_not_a_raster(ramp_raster, tmp_path):
    path, _ = ramp_raster
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "ramp.tif.aux.xml").write_text("<x/>")
    assert expand([tmp_path]) == [str(path), str(tmp_path / "readme.txt")]
    rasters = open_rasters([tmp_path])
    assert [r.path for r in rasters] == [str(path)] and rasters[0].georeferenced
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GeoInputError, match="empty: the folder holds no files"):
        open_rasters([empty])
