"""Chip geometry, BlackenAroundFeature and rotated geotransforms, seen
through an identity model: each feature's AllClasses is its chip.

References: the raster's own pixels (integer-aligned chips are copies), a
linear ramp evaluated where the kernel samples (bilinear is exact on it),
and rasterio.features.geometry_mask for the polygon mask.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.features import geometry_mask
from rasterio.transform import from_origin

from roiclass.geo import classify_features
from tests.integration.geo.identity import SIDE, chip_from, write_identity_emd

UTM = "EPSG:32633"
NORTH_UP = from_origin(500000.0, 5000000.0, 1.0, 1.0)
ROTATED = NORTH_UP @ Affine.rotation(30)  # the pixel grid turned 30 degrees in the map


def _raster(path, array, transform):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype="uint8", crs=UTM, transform=transform, tiled=True, blockxsize=64,
                       blockysize=64) as ds:
        ds.write(array[None])
    return str(path)


def _ramp_value(col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """The ramp raster's value at continuous pixel coordinates (pixel centres at +0.5)."""
    return (col - 0.5) + (row - 0.5) + 5


def _layer(path, pixel_geometries, transform) -> str:
    a = np.array([[transform.a, transform.b], [transform.d, transform.e]])
    off = np.array([transform.c, transform.f])
    geoms = [shapely.transform(g, lambda xy: xy @ a.T + off) for g in pixel_geometries]
    table = pa.table({"k": pa.array(range(len(geoms)), pa.int32()), "geometry": shapely.to_wkb(geoms)})
    pyogrio.write_arrow(table, str(path), geometry_name="geometry", geometry_type="Unknown", crs=UTM)
    return str(path)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = tmp_path_factory.mktemp("identity")
    rng = np.random.default_rng(7)
    noise = rng.integers(1, 256, (128, 160), dtype=np.uint8)
    rows, cols = np.mgrid[0:96, 0:128]
    ramp = _ramp_value(cols + 0.5, rows + 0.5).astype(np.uint8)  # whole numbers 5..227
    return {"root": root, "noise": noise, "noise_tif": _raster(root / "noise.tif", noise, NORTH_UP),
            "ramp_tif": _raster(root / "ramp.tif", ramp, NORTH_UP),
            "rotated_tif": _raster(root / "rotated.tif", ramp, ROTATED)}


def _chips(scene, raster, pixel_geometries, transform, emd_keys=None, **options):
    n = len(list(scene["root"].glob("*.gpkg")))
    layer = _layer(scene["root"] / f"l{n}.gpkg", pixel_geometries, transform)
    emd = write_identity_emd(scene["root"], f"ident{n}", **(emd_keys or {}))
    summary = classify_features(raster, layer, emd=emd, all_classes=True, **options)
    table = summary.table
    assert table.column("Status").to_pylist() == ["ok"] * len(pixel_geometries)
    return [chip_from(text) for text in table.column("AllClasses").to_pylist()], table


def _unit(array: np.ndarray) -> np.ndarray:
    return array / array.sum()


def test_fixed_and_bbox_chips_are_the_raster_pixels(scene):
    point = shapely.Point(40, 30)  # a pixel corner: the 16 x 16 chip is rows 22..38, cols 32..48
    box = shapely.box(60, 10, 76, 26)
    (fixed,), values = _chips(scene, scene["noise_tif"], [point], NORTH_UP, local=True)
    np.testing.assert_allclose(fixed, _unit(scene["noise"][22:38, 32:48].astype(float)), rtol=1e-5)
    assert values.column("ClassValue").to_pylist()[0] >= 1000  # the .emd's Value, not the index
    (bbox,), _ = _chips(scene, scene["noise_tif"], [box], NORTH_UP, {"CropSizeFixed": 0}, local=True)
    np.testing.assert_allclose(bbox, _unit(scene["noise"][10:26, 60:76].astype(float)), rtol=1e-5)


def _blackened(scene, **options):
    # a 16 x 16 box (the chip is its pixels), edges off the pixel centres: no sample lies on one
    triangle = shapely.Polygon([(100, 40), (116, 40), (109.3, 47.1), (100, 56)])
    donut = shapely.box(20, 80, 36, 96).difference(shapely.box(24.3, 84.3, 30.4, 90.2))
    chips, _ = _chips(scene, scene["noise_tif"], [triangle, donut], NORTH_UP,
                      {"CropSizeFixed": 0, "BlackenAroundFeature": 1}, **options)
    for chip, polygon in zip(chips, (triangle, donut)):
        c0, r0 = int(polygon.bounds[0]), int(polygon.bounds[1])
        inside = geometry_mask([polygon], (SIDE, SIDE), Affine.translation(c0, r0), invert=True)
        window = scene["noise"][r0:r0 + SIDE, c0:c0 + SIDE].astype(float)
        assert (chip[~inside] == 0).all() and (chip[inside] > 0).all()
        np.testing.assert_allclose(chip, _unit(window * inside), rtol=1e-5)


def test_blacken_around_feature_keeps_exactly_the_pixels_inside_locally(scene):
    _blackened(scene, local=True)


def test_blacken_around_feature_through_a_server(scene):
    from roiclass.server.app import BackgroundServer
    from roiclass.server.config import ServerConfig

    emd = write_identity_emd(scene["root"], "served", CropSizeFixed=0, BlackenAroundFeature=1)
    srv = BackgroundServer(ServerConfig(host="127.0.0.1", port=0, metrics_port=None,
                                        model_paths=(scene["root"] / "served.emd",))).start()
    try:
        triangle = shapely.Polygon([(100, 40), (116, 40), (109.3, 47.1), (100, 56)])
        layer = _layer(scene["root"] / "served.gpkg", [triangle], NORTH_UP)
        table = classify_features(scene["noise_tif"], layer, emd=emd, all_classes=True, server=srv.address).table
        chip = chip_from(table.column("AllClasses")[0].as_py())
        inside = geometry_mask([triangle], (SIDE, SIDE), Affine.translation(100, 40), invert=True)
        np.testing.assert_allclose(chip, _unit(scene["noise"][40:56, 100:116] * inside.astype(float)), rtol=1e-5)
    finally:
        srv.stop()


def test_emd_sent_to_a_server_that_does_not_serve_it(scene):
    """--emd with --server: the server loads the .emd and its ModelFile from the files sent
    (RepositoryModelLoad with file: parameters), then labels as locally."""
    from roiclass.server.app import BackgroundServer
    from roiclass.server.config import ServerConfig

    emd = write_identity_emd(scene["root"], "sent", CropSizeFixed=0, BlackenAroundFeature=1)
    srv = BackgroundServer(ServerConfig(host="127.0.0.1", port=0, metrics_port=None)).start()
    try:
        triangle = shapely.Polygon([(100, 40), (116, 40), (109.3, 47.1), (100, 56)])
        layer = _layer(scene["root"] / "sent.gpkg", [triangle], NORTH_UP)
        table = classify_features(scene["noise_tif"], layer, emd=emd, all_classes=True, server=srv.address).table
        assert "sent" in {st.name for st in srv.app.manager.statuses()}
        chip = chip_from(table.column("AllClasses")[0].as_py())
        inside = geometry_mask([triangle], (SIDE, SIDE), Affine.translation(100, 40), invert=True)
        np.testing.assert_allclose(chip, _unit(scene["noise"][40:56, 100:116] * inside.astype(float)), rtol=1e-5)
    finally:
        srv.stop()


def _sampled(origin, u_axis, v_axis, to_pixels=None) -> np.ndarray:
    """The ramp at the chip's sample centres: origin + (u + .5) u_axis + (v + .5) v_axis."""
    v, u = np.mgrid[0:SIDE, 0:SIDE] + 0.5
    pts = origin + u[..., None] * u_axis + v[..., None] * v_axis
    if to_pixels is not None:
        inverse = ~to_pixels
        pts = np.stack([inverse.a * pts[..., 0] + inverse.b * pts[..., 1] + inverse.c,
                        inverse.d * pts[..., 0] + inverse.e * pts[..., 1] + inverse.f], axis=-1)
    return _ramp_value(pts[..., 0], pts[..., 1])


def test_oriented_chip_follows_the_minimum_rotated_rectangle(scene):
    theta = math.radians(30)
    along, across = np.array([math.cos(theta), math.sin(theta)]), np.array([-math.sin(theta), math.cos(theta)])
    centre = np.array([80.0, 64.0])
    corners = [centre + sx * 24 * along + sy * 6 * across for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    ship = shapely.Polygon(corners)  # 48 x 12 pixels at 30 degrees
    (chip,), _ = _chips(scene, scene["ramp_tif"], [ship], NORTH_UP, {"CropSizeFixed": 0}, chip="oriented",
                        local=True)
    origin = centre - 24 * along - 6 * across
    want = _sampled(origin, along * 48 / SIDE, across * 12 / SIDE)
    np.testing.assert_allclose(chip, _unit(want), rtol=2e-4)


@pytest.mark.parametrize("space", ["MAP_SPACE", "PIXEL_SPACE"])
def test_a_rotated_geotransform_is_honoured(scene, space):
    # a square in the map (north-up), given in the rotated raster's pixels
    map_square = shapely.box(500040, 4999920, 500056, 4999936)
    pixels = shapely.transform(map_square, lambda xy: np.column_stack((~ROTATED) * (xy[:, 0], xy[:, 1])))
    (chip,), _ = _chips(scene, scene["rotated_tif"], [pixels], ROTATED,
                        {"CropSizeFixed": 0, "ImageSpaceUsed": space}, local=True)
    if space == "MAP_SPACE":  # north-up in the map: sample the map square on its own grid
        want = _sampled(np.array([500040.0, 4999936.0]), np.array([1.0, 0.0]), np.array([0.0, -1.0]), ROTATED)
    else:  # on the pixel grid: the square's bounding box in pixels
        c0, r0, c1, r1 = pixels.bounds
        want = _sampled(np.array([c0, r0]), np.array([(c1 - c0) / SIDE, 0.0]), np.array([0.0, (r1 - r0) / SIDE]))
    np.testing.assert_allclose(chip, _unit(want), rtol=2e-4)
