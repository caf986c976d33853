"""Small rasters and layers written with rasterio / pyogrio for the geo unit tests."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

UTM = "EPSG:32633"


def write_raster(path, array: np.ndarray, transform=None, crs=UTM, nodata=None, block=64):
    """array: (bands, height, width); tiled GeoTIFF."""
    bands, height, width = array.shape
    profile = dict(driver="GTiff", width=width, height=height, count=bands, dtype=array.dtype.name,
                   tiled=True, blockxsize=block, blockysize=block)
    if crs is not None:
        profile.update(crs=crs, transform=transform or from_origin(500000, 5000000, 1.0, 1.0))
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(array)
    return path


@pytest.fixture
def ramp_raster(tmp_path):
    """4 bands of uint16, 200 x 300, every pixel distinct."""
    rows, cols = np.mgrid[0:200, 0:300]
    array = np.stack([rows * 300 + cols + 1000 * b for b in range(4)]).astype(np.uint16)
    return write_raster(tmp_path / "ramp.tif", array, nodata=0), array
