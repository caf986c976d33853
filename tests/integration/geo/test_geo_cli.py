"""`roiclass geo` end to end: the scene of scene.py labelled by the built-in
model through a real server and in-process (identical), outputs read back
with pyogrio, collections in both processing modes, images without
georeferencing, and the bad inputs (one line naming the file, exit 2,
nothing written)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyogrio
import pytest
import shapely
from PIL import Image

from roiclass.client.cli import main
from roiclass.geo import classify_features
from tests.conftest import CAT_CLASSES, COFFEE_CLASSES
from tests.integration.geo import scene as S



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("geo")
    raster = S.write_scene(root / "scene.tif")
    layer = S.write_layer(root / "features.gpkg")
    return {"root": root, "raster": str(raster), "layer": str(layer)}


def _read(path) -> tuple[dict, pa.Table]:
    meta, table = pyogrio.read_arrow(str(path))
    return meta, table


def _by_name(table: pa.Table) -> dict:
    return {row["name"]: row for row in table.to_pylist()}


def _geo(*args) -> int:
    return main(["geo", *map(str, args), "--quiet"])


@pytest.fixture(scope="module")
def labelled(files, server):
    remote, local = files["root"] / "remote.gpkg", files["root"] / "local.gpkg"
    assert _geo(files["raster"], "--features", files["layer"], "--out", remote, "--chip", "bbox",
                "--server", server.address) == 0
    assert _geo(files["raster"], "--features", files["layer"], "--out", local, "--chip", "bbox", "--local") == 0
    return remote, local


def test_every_feature_is_labelled_as_expected(labelled):
    rows = _by_name(_read(labelled[0])[1])
    assert list(rows) == list(S.FEATURES)  # all of them, in order
    for name in ("cat_polygon", "edge_polygon"):
        assert rows[name]["ClassValue"] in CAT_CLASSES, rows[name]
    for name in S.COFFEE_NAMES:
        assert rows[name]["ClassValue"] in COFFEE_CLASSES, rows[name]
    assert rows["cat_polygon"]["Status"] == "ok" and 0 < rows["cat_polygon"]["Confidence"] <= 1
    assert rows["edge_polygon"]["Status"] == "partly outside raster"
    for name, status in (("outside_point", "outside raster"), ("nodata_polygon", "no data")):
        assert rows[name]["Status"] == status
        assert rows[name]["ClassLabel"] is None and rows[name]["Confidence"] is None


def _same(a: pa.Table, b: pa.Table) -> None:
    """Identical labels, values and statuses; confidences to float32 rounding
    (ONNX Runtime's last bits follow the batch a chip ran in, which depends on timing)."""
    exact = ["ClassLabel", "ClassValue", "Status"]
    assert a.select(exact).to_pylist() == b.select(exact).to_pylist()
    ca, cb = (np.array(t.column("Confidence").to_pylist(), dtype=float) for t in (a, b))
    np.testing.assert_allclose(ca, cb, rtol=1e-5)


def test_server_and_local_give_identical_output(labelled):
    remote, local = (_read(p)[1] for p in labelled)
    _same(remote, local)


def test_the_output_round_trips_with_the_input_attributes_and_geometry(files, labelled):
    in_meta, before = _read(files["layer"])
    out_meta, after = _read(labelled[0])
    assert out_meta["crs"] == in_meta["crs"] == "EPSG:4326"
    for column in ("name", "fid_in", "area_m2", "note"):
        assert after.column(column).to_pylist() == before.column(column).to_pylist()
        assert after.schema.field(column).type == before.schema.field(column).type
    geoms = [shapely.from_wkb(t.column(m["geometry_name"]).to_numpy(False))
             for m, t in ((in_meta, before), (out_meta, after))]
    assert shapely.equals_exact(geoms[0], geoms[1], 1e-12).all()


def test_a_point_gets_a_fixed_chip_at_the_cell_size(files):
    # 224 cells of 1 m = 448 pixels of 0.5 m: the whole cat photo around the point
    table = classify_features(files["raster"], files["layer"], local=True, chip="fixed", cell_size=1.0).table
    rows = _by_name(table)
    assert rows["cat_point"]["ClassValue"] in CAT_CLASSES, rows["cat_point"]


def test_geojson_output_with_all_classes(files, labelled):
    out = files["root"] / "out.geojson"
    summary = classify_features(files["raster"], files["layer"], out, local=True, chip="bbox", all_classes=True)
    assert summary.features == len(S.FEATURES) and summary.labelled == 5 and summary.outside == 1
    table = _read(out)[1]
    assert table.column("name").to_pylist() == list(S.FEATURES)
    assert table.column("ClassLabel").to_pylist() == _read(labelled[1])[1].column("ClassLabel").to_pylist()
    scores = json.loads(table.column("AllClasses")[0].as_py())
    assert len(scores) == 1000 and max(scores.values()) == pytest.approx(table.column("Confidence")[0].as_py())


def test_shapefile_output(files, labelled):
    # a Shapefile holds one geometry type: the polygons
    names = ("cat_polygon", "coffee_polygon", "edge_polygon", "nodata_polygon")
    layer = S.write_layer(files["root"] / "polygons.gpkg", names)
    out = files["root"] / "polygons.shp"
    assert _geo(files["raster"], "--features", layer, "--out", out, "--chip", "bbox", "--local") == 0
    meta, table = _read(out)
    assert meta["geometry_type"] == "Polygon" and "4326" in meta["crs"]
    assert table.column("name").to_pylist() == list(names)
    reference = _by_name(_read(labelled[1])[1])
    assert table.column("ClassLabel").to_pylist() == [reference[n]["ClassLabel"] for n in names]
    assert table.column("Status").to_pylist() == [reference[n]["Status"] for n in names]


def test_extent_and_min_confidence(files):
    lon, lat = S.pixel_to_lonlat(S.COFFEE_AT[1] - 10, S.COFFEE_AT[0] - 10)
    table = classify_features(files["raster"], files["layer"], local=True, chip="bbox",
                              extent=_extent(lon, lat), min_confidence=0.9999).table
    rows = _by_name(table)
    assert rows["cat_polygon"]["Status"] == "outside extent" and rows["cat_polygon"]["ClassLabel"] is None
    assert rows["coffee_polygon"]["Status"] == "below min confidence"
    assert rows["coffee_polygon"]["ClassLabel"] is None and rows["coffee_polygon"]["Confidence"] > 0


def _extent(lon, lat):
    from roiclass.geo.config import Extent

    return Extent(lon, lat - 1.0, lon + 1.0, lat)  # south-east of the coffee's top-left corner


@pytest.fixture(scope="module")
def collection(files):
    """The scene cut in two at column 300: the cat polygon spans both images."""
    folder = files["root"] / "tiles"
    folder.mkdir()
    rows, cols = S.SIZE
    S.write_scene(folder / "a_left.tif", window=(0, rows, 0, 300))
    S.write_scene(folder / "b_right.tif", window=(0, rows, 300, cols))
    return folder


def test_a_collection_as_a_mosaic(files, collection, labelled):
    out = files["root"] / "mosaic.gpkg"
    assert _geo(collection, "--features", files["layer"], "--out", out, "--chip", "bbox", "--local") == 0
    _same(_read(out)[1], _read(labelled[1])[1])


def test_a_collection_separately(files, collection):
    out = files["root"] / "separately.gpkg"
    assert _geo(collection, "--features", files["layer"], "--out", out, "--chip", "bbox", "--local",
                "--processing-mode", "separately") == 0
    rows = _read(out)[1].to_pylist()
    images = {}
    for row in rows:
        images.setdefault(row["name"], []).append(None if row["ImagePath"] is None else row["ImagePath"].rsplit("/", 1)[1])
    assert images["cat_polygon"] == ["a_left.tif", "b_right.tif"]  # once per image that holds it
    assert images["coffee_polygon"] == ["b_right.tif"]
    assert images["outside_point"] == [None]
    assert [r["Status"] for r in rows if r["name"] == "outside_point"] == ["outside raster"]


def test_images_without_georeferencing_give_a_table(files, chelsea, coffee):
    folder = files["root"] / "photos"
    folder.mkdir()
    Image.fromarray(chelsea).save(folder / "1_chelsea.png")
    Image.fromarray(coffee).save(folder / "2_coffee.jpg")
    out = files["root"] / "photos.csv"
    assert _geo(folder, "--out", out, "--local") == 0
    table = _read(out)[1]
    assert [p.rsplit("/", 1)[1] for p in table.column("ImagePath").to_pylist()] == ["1_chelsea.png", "2_coffee.jpg"]
    values = [int(v) for v in table.column("ClassValue").to_pylist()]
    assert values[0] in CAT_CLASSES and values[1] in COFFEE_CLASSES


def test_a_georeferenced_image_without_features_is_its_extent(files):
    table = classify_features(files["raster"], local=True).table
    (row,) = table.to_pylist()
    assert row["Status"] == "ok" and row["ImagePath"] == files["raster"]
    extent = shapely.from_wkb(row["geometry"])
    assert extent.area == pytest.approx(S.SIZE[0] * S.SIZE[1] * 0.25)


def test_several_servers_share_the_work(files, server, labelled):
    from roiclass.server.app import BackgroundServer
    from roiclass.server.config import ServerConfig

    second = BackgroundServer(ServerConfig(host="127.0.0.1", port=0, metrics_port=None)).start()
    try:
        out = files["root"] / "two.gpkg"
        assert _geo(files["raster"], "--features", files["layer"], "--out", out, "--chip", "bbox", "--batch-size",
                    "1", "--server", f"{server.address},{second.address}", "--parallel", "2") == 0
    finally:
        second.stop()
    _same(_read(out)[1], _read(labelled[0])[1])


# ------------------------------------------------------------------ bad input


def _fails(capsys, where: str, *args) -> str:
    code = main(["geo", *map(str, args), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and where in err, err
    return err


def test_bad_inputs_name_the_file_and_write_nothing(files, capsys, tmp_path):
    out = tmp_path / "out.gpkg"
    junk = tmp_path / "junk.tif"
    junk.write_text("no raster")
    _fails(capsys, "junk.tif", junk, "--features", files["layer"], "--out", out, "--local")
    bad_layer = tmp_path / "junk.gpkg"
    bad_layer.write_bytes(b"\0\1 not a layer")
    _fails(capsys, "junk.gpkg", files["raster"], "--features", bad_layer, "--out", out, "--local")
    empty = tmp_path / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    _fails(capsys, "empty.geojson: the layer is empty", files["raster"], "--features", empty, "--out", out, "--local")
    mars = tmp_path / "mars.gpkg"
    pyogrio.write_arrow(pa.table({"geometry": shapely.to_wkb([shapely.Point(1, 1)])}), str(mars),
                        geometry_name="geometry", geometry_type="Point", crs="IAU_2015:49900")
    _fails(capsys, "mars.gpkg: its CRS cannot be transformed", files["raster"], "--features", mars, "--out", out,
           "--local")
    assert list(tmp_path.glob("out*")) == [] and not list(tmp_path.glob(".out*"))


def test_an_existing_or_unwritable_output_is_refused(files, capsys, labelled, tmp_path):
    existing = tmp_path / "labelled.gpkg"
    shutil.copy(labelled[1], existing)
    before = existing.read_bytes()
    _fails(capsys, "labelled.gpkg: exists", files["raster"], "--features", files["layer"], "--out", existing,
           "--local")
    assert existing.read_bytes() == before
    locked = "/proc/out.gpkg"  # no one, root included, creates files there
    _fails(capsys, "out.gpkg: cannot write there", files["raster"], "--features", files["layer"], "--out", locked,
           "--local")


def test_bands_out_of_range_name_the_raster(files, capsys, tmp_path):
    from tests.unit.models.model_factory import make_classifier

    make_classifier(tmp_path / "m.onnx", num_classes=2, height=16, width=16)
    emd = {"Framework": "ONNX", "ModelFile": "m.onnx", "ImageWidth": 16, "ImageHeight": 16,
           "ExtractBands": [0, 1, 7], "Classes": [{"Value": 1, "Name": "a"}, {"Value": 2, "Name": "b"}]}
    (tmp_path / "m.emd").write_text(json.dumps(emd))
    out = tmp_path / "out.gpkg"
    err = _fails(capsys, "scene.tif", files["raster"], "--features", files["layer"], "--out", out,
                 "--emd", tmp_path / "m.emd", "--local")
    assert "7" in err
    assert not out.exists()



def test_resource_exhausted_is_retried_then_reported(files):
    from roiclass.server.app import BackgroundServer
    from roiclass.server.config import ServerConfig
    from roiclass.server.engine import EngineConfig

    # one ROI in flight per caller: the second of a stream's frames in flight is RESOURCE_EXHAUSTED
    capped = BackgroundServer(ServerConfig(host="127.0.0.1", port=0, metrics_port=None, engine=EngineConfig(
        devices="cpu", max_inflight_rois_per_client=1))).start()
    try:
        options = dict(server=capped.address, chip="bbox", batch_size=1, parallel=2)
        retried = classify_features(files["raster"], files["layer"], retries=8, **options).table
        given_up = classify_features(files["raster"], files["layer"], retries=0, **options).table
    finally:
        capped.stop()
    assert "failed" not in " ".join(retried.column("Status").to_pylist())
    statuses = given_up.column("Status").to_pylist()
    failed = [s for s in statuses if s.startswith("failed")]
    assert failed and all(s.startswith("failed: RESOURCE_EXHAUSTED") for s in failed), statuses
    assert len(statuses) == len(S.FEATURES)  # the run went on: every feature is there
