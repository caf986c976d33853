"""Relevance heatmaps through a real server: where the relevance lands, what it
costs in engine runs, and how bad options are refused."""
from __future__ import annotations

import math
import time

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from PIL import Image

from roiclass.v1 import classifier_pb2 as pb
from roiclass.v1 import classifier_pb2_grpc as pb_grpc
from tests.conftest import CAT_CLASSES, png_bytes
from tests.integration.requests import raw_image, request, roi
from tests.unit.heatmap.quadrant_model import make_quadrant_folder

QUADRANT_BATCH = 16
DEFAULT_MODEL = "efficientnet_lite0"


@pytest.fixture(scope="module")
def quadrant_server(tmp_path_factory):
    """Serves only the quadrant model: its output reads the top-left quarter of its input."""
    from roiclass.server.app import BackgroundServer
    from roiclass.server.config import ServerConfig

    folder = make_quadrant_folder(tmp_path_factory.mktemp("models") / "quadrant", max_batch=QUADRANT_BATCH)
    srv = BackgroundServer(ServerConfig(host="127.0.0.1", port=0, model_paths=(folder,))).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def quadrant_stub(quadrant_server):
    with grpc.insecure_channel(quadrant_server.address) as ch:
        yield pb_grpc.ObjectClassifierStub(ch)


def _image(heatmap: pb.RelevanceHeatmap) -> np.ndarray:
    raw = heatmap.image
    assert raw.pixel_format == pb.GRAY8 and len(raw.pixels) == raw.width * raw.height
    return np.frombuffer(raw.pixels, np.uint8).reshape(raw.height, raw.width).astype(np.float64)


def _grid(heatmap: pb.RelevanceHeatmap) -> np.ndarray:
    return np.asarray(heatmap.relevance).reshape(heatmap.grid_height, heatmap.grid_width)


def _counters(server, version: str, name: str = DEFAULT_MODEL) -> dict:
    return server.app.engine.counters(name, version)


@pytest.mark.parametrize("angle", [0.0, 90.0, 30.0])
def test_relevance_lies_in_the_quadrant_the_model_reads(quadrant_stub, angle):
    white = np.full((120, 160, 3), 255, np.uint8)
    # ROI origins keep every rotated ROI inside the image (border fill would darken it).
    origin = {0.0: (20, 30), 90.0: (100, 10), 30.0: (50, 10)}[angle]
    reply = quadrant_stub.ClassifyObject(request(
        raw_image(white), [roi(*origin, 80, 60, angle=angle)], model="quadrant",
        create_relevance_heatmap=True, heatmap_options=pb.HeatmapOptions(patch_size=8, stride=4),
    ), timeout=60)
    result = reply.results[0]
    hm = result.heatmap
    assert result.class_name == "quadrant" and (hm.patch_size, hm.stride) == (8, 4)
    assert (hm.image.width, hm.image.height) == (80, 60)  # the ROI's size, in its own frame
    grid, image = _grid(hm), _image(hm)
    assert grid.shape == (8, 8) and hm.scale == pytest.approx(grid.max(), rel=1e-6) and image.max() == 255
    y, x = np.unravel_index(image.argmax(), image.shape)
    assert x < 40 and y < 30, f"maximum at ({x}, {y}), outside the top-left quadrant"
    assert image[:30, :40].mean() > 100
    assert image[30:, 40:].mean() < 0.03 * 255 and grid[5:, 5:].max() < 1e-6


def test_heatmap_of_the_cat_falls_on_the_cat(stub, chelsea):
    reply = stub.ClassifyObject(request(
        raw_image(chelsea), create_relevance_heatmap=True,
        heatmap_options=pb.HeatmapOptions(patch_size=56, stride=28),  # 7x7 occlusions
    ), timeout=60)
    result = reply.results[0]
    assert result.class_index in CAT_CLASSES
    image = _image(result.heatmap)
    assert image.shape == (170, 256)  # 451x300 capped by the default max_side 256
    f = 256 / 451
    head = np.zeros(image.shape, bool)
    head[round(20 * f):round(220 * f), round(140 * f):round(340 * f)] = True  # hand-marked head box
    inside, outside = image[head].mean(), image[~head].mean()
    assert inside > 1.3 * outside, f"mean relevance inside the head box {inside:.1f}, outside {outside:.1f}"


def test_eight_rois_take_a_handful_of_batches_and_no_flag_costs_nothing(server, stub, chelsea):
    rois = [roi(20 + 40 * (i % 4), 10 + 120 * (i // 4), 200, 160, angle=5.0 * i) for i in range(8)]
    plain = request(raw_image(chelsea), rois)
    version = stub.ClassifyObject(plain, timeout=60).model_version
    before = _counters(server, version)
    stub.ClassifyObject(plain, timeout=60)
    after = _counters(server, version)
    assert after["items"] - before["items"] == 8 and after["runs"] - before["runs"] == 1

    options = pb.HeatmapOptions(patch_size=56, stride=28)  # 49 occlusions per ROI
    reply = stub.ClassifyObject(request(raw_image(chelsea), rois, create_relevance_heatmap=True,
                                        heatmap_options=options), timeout=120)
    done = _counters(server, version)
    occlusions = 8 * 49
    max_batch = server.app.engine.resolve(DEFAULT_MODEL, version).max_batch
    assert done["items"] - after["items"] == 8 + occlusions
    # ceil(392 / 32) = 13 full batches for the heatmaps, 1 for the ROIs, 1 spare for a split.
    assert done["runs"] - after["runs"] <= math.ceil(occlusions / max_batch) + 2
    assert all(r.heatmap.grid_width == 8 and r.heatmap.scale > 0 for r in reply.results)


@pytest.mark.parametrize(
    "options,field",
    [
        (pb.HeatmapOptions(patch_size=300), "heatmap_options.patch_size"),
        (pb.HeatmapOptions(patch_size=0), "heatmap_options.patch_size"),
        (pb.HeatmapOptions(stride=0), "heatmap_options.stride"),
        (pb.HeatmapOptions(patch_size=16, stride=32), "heatmap_options.stride"),
        (pb.HeatmapOptions(max_side=0), "heatmap_options.max_side"),
    ],
)
def test_bad_options_are_invalid_argument_before_any_work(server, stub, chelsea, options, field):
    version = stub.ClassifyObject(request(raw_image(chelsea)), timeout=60).model_version
    before = _counters(server, version)
    with pytest.raises(grpc.RpcError) as info:
        stub.ClassifyObject(request(raw_image(chelsea), create_relevance_heatmap=True,
                                    heatmap_options=options), timeout=60)
    err = info.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.details()
    assert "allowed" in err.details()
    bad = error_details_pb2.BadRequest()
    assert rpc_status.from_call(err).details[0].Unpack(bad) and bad.field_violations[0].field == field
    assert _counters(server, version)["items"] == before["items"]


def test_python_client_and_cli_get_and_draw_the_heatmap(quadrant_server, tmp_path):
    from roiclass.client import Classifier, HeatmapOptions, Roi
    from roiclass.client.cli import main

    white = np.full((60, 90, 3), 255, np.uint8)
    with Classifier(quadrant_server.address, timeout=60) as client:
        result = client.classify(white, rois=[Roi(5, 5, 64, 48)], model="quadrant", heatmap=True,
                                 heatmap_options=HeatmapOptions(patch_size=8))  # stride: model default
    heat = result.results[0].heatmap
    assert heat.image.shape == (48, 64) and heat.image.dtype == np.uint8
    assert (heat.patch_size, heat.stride) == (8, 4) and heat.relevance.shape == (8, 8)
    assert heat.image[:24, :32].mean() > 10 * heat.image[24:, 32:].mean()

    path, out = tmp_path / "white.png", tmp_path / "heat.png"
    path.write_bytes(png_bytes(white))
    code = main(["classify", str(path), "--roi", "5,5,64,48", "--model", "quadrant",
                 "--heatmap", str(out), "--server", quadrant_server.address])
    assert code == 0
    with Image.open(out) as drawn:
        picture = np.asarray(drawn.convert("RGB")).astype(int)
    h, w = picture.shape[:2]
    # The colour map is bright where the relevance is high: top-left vs bottom-right.
    assert picture[: h // 2, : w // 2].sum(axis=2).mean() > picture[h // 2:, w // 2:].sum(axis=2).mean() + 30


def test_a_heatmap_past_its_deadline_stops_queueing_work(server, stub, chelsea):
    rois = [roi(10 * i, 5 * i, 240, 200) for i in range(8)]
    version = stub.ClassifyObject(request(raw_image(chelsea), rois[:1]), timeout=60).model_version
    before = _counters(server, version)
    with pytest.raises(grpc.RpcError) as info:  # 8 x 169 occlusions: ~10 s of work on 2 cores
        stub.ClassifyObject(request(raw_image(chelsea), rois, create_relevance_heatmap=True), timeout=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    items = before["items"]
    for _ in range(100):  # until the engine is idle again
        time.sleep(0.3)
        now = _counters(server, version)["items"]
        if now == items:
            break
        items = now
    assert items - before["items"] < 8 * 169 // 2, "the occlusions kept running after the deadline"
    assert stub.ClassifyObject(request(raw_image(chelsea)), timeout=60).results[0].class_index in CAT_CLASSES
