"""The test scene, written with rasterio and pyogrio: a UTM 33N GeoTIFF
(4 bands of uint16 = the photo's uint8 x 257, so 0..255 maps onto 0..65535
and the built-in model sees the photo itself; tiled 256; nodata 0) holding
scikit-image photos at known places, and a GeoPackage in EPSG:4326 of
points, lines and polygons on and around them.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyogrio
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin
from skimage import data

UTM = "EPSG:32633"
TRANSFORM = from_origin(500000.0, 5000000.0, 0.5, 0.5)  # 0.5 m pixels
SIZE = (900, 1100)  # rows, cols
CAT_AT = (40, 40)  # row, col of chelsea's top-left (300 x 451)
COFFEE_AT = (420, 480)  # coffee: 400 x 600
NODATA_BOX = (780, 0, 900, 300)  # rows 780..900, cols 0..300 hold nodata
SCALE = 257


def scene_array() -> np.ndarray:
    """(4, rows, cols) uint16: the photos on a grey ground, band 4 = their mean."""
    rgb = np.full((*SIZE, 3), 128, np.uint8)
    for photo, (r, c) in ((data.chelsea(), CAT_AT), (data.coffee(), COFFEE_AT)):
        rgb[r:r + photo.shape[0], c:c + photo.shape[1]] = photo
    rgb = np.maximum(rgb, 1)  # 0 is nodata
    r0, c0, r1, c1 = NODATA_BOX
    rgb[r0:r1, c0:c1] = 0
    nir = rgb.mean(axis=2).astype(np.uint8)
    return (np.dstack([rgb, nir]).astype(np.uint16) * SCALE).transpose(2, 0, 1)


def write_scene(path, array: np.ndarray | None = None, transform=TRANSFORM, crs=UTM, window=None):
    array = scene_array() if array is None else array
    if window is not None:  # (row0, row1, col0, col1): one tile of a collection
        r0, r1, c0, c1 = window
        array = array[:, r0:r1, c0:c1]
        transform = transform * transform.translation(c0, r0)
    bands, rows, cols = array.shape
    with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=bands, dtype=array.dtype.name,
                       crs=crs, transform=transform, nodata=0, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate") as ds:
        ds.write(array)
    return path


def pixel_to_lonlat(col: float, row: float, transform=TRANSFORM) -> tuple[float, float]:
    x, y = transform * (col, row)
    return Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(x, y)


def _lonlat(geometry, transform=TRANSFORM):
    """A geometry in pixel coordinates -> EPSG:4326."""
    move = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    a = np.array([[transform.a, transform.b], [transform.d, transform.e]])
    off = np.array([transform.c, transform.f])

    def f(xy):
        m = xy @ a.T + off
        return np.column_stack(move.transform(m[:, 0], m[:, 1]))

    return shapely.transform(geometry, f)


def box_px(r0, c0, r1, c1):
    return shapely.box(c0, r0, c1, r1)


# name -> (geometry in pixels, what it is for)
FEATURES = {
    "cat_polygon": box_px(CAT_AT[0], CAT_AT[1], CAT_AT[0] + 300, CAT_AT[1] + 451),
    "coffee_polygon": box_px(COFFEE_AT[0], COFFEE_AT[1], COFFEE_AT[0] + 400, COFFEE_AT[1] + 600),
    "cat_point": shapely.Point(CAT_AT[1] + 225, CAT_AT[0] + 150),
    "coffee_line": shapely.LineString([(COFFEE_AT[1], COFFEE_AT[0]), (COFFEE_AT[1] + 600, COFFEE_AT[0] + 400)]),
    # a cat box shifted to poke past the left edge: partly outside the raster
    "edge_polygon": box_px(CAT_AT[0], -120, CAT_AT[0] + 300, 331),
    "outside_point": shapely.Point(3000, 3000),
    "nodata_polygon": box_px(800, 40, 880, 200),
}
CAT_NAMES = ("cat_polygon", "cat_point", "edge_polygon")
COFFEE_NAMES = ("coffee_polygon", "coffee_line")


def write_layer(path, names=tuple(FEATURES), transform=TRANSFORM):
    """The features in EPSG:4326 with attributes of several types (one null)."""
    geometries = [_lonlat(FEATURES[n], transform) for n in names]
    table = pa.table({
        "name": pa.array(list(names), pa.string()),
        "fid_in": pa.array(range(len(names)), pa.int32()),
        "area_m2": pa.array([float(shapely.area(FEATURES[n])) * 0.25 for n in names], pa.float64()),
        "note": pa.array([None if i % 2 else f"n{i}" for i in range(len(names))], pa.string()),
        "geometry": pa.array(shapely.to_wkb(geometries), pa.binary()),
    })
    pyogrio.write_arrow(table, str(path), geometry_name="geometry", geometry_type="Unknown", crs="EPSG:4326")
    return path
