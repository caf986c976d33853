"""HeatmapService on a real engine (no gRPC): chunked submission under a small
memory budget gives the same heatmaps, in whole batches."""
from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from roiclass.server.domain import ClassifyRequest, RequestLimits
from roiclass.server.engine import Engine, EngineConfig
from roiclass.server.heatmap.service import HeatmapConfig, HeatmapService
from roiclass.server.models.repository import load_model_path
from roiclass.v1 import classifier_pb2 as pb

from .quadrant_model import SIDE, make_quadrant_folder

MAX_BATCH = 8


@pytest.fixture(scope="module")
def engine_and_model(tmp_path_factory):
    folder = make_quadrant_folder(tmp_path_factory.mktemp("m") / "quadrant", max_batch=MAX_BATCH)
    (spec,) = load_model_path(folder)
    engine = Engine(EngineConfig(devices="cpu"))
    engine.load(spec)
    yield engine, engine.resolve(spec.name, spec.version)
    engine.close()


def _request(n: int) -> ClassifyRequest:
    rng = np.random.default_rng(3)
    image = rng.integers(170, 256, (50, 70, 3), dtype=np.uint8)  # bright: class 0 wins
    msg = pb.ClassifyObjectRequest(
        image=pb.Image(raw=pb.RawImage(width=70, height=50, pixel_format=pb.RGB8, pixels=image.tobytes())),
        rois=[pb.Roi(rect=pb.Rectangle2D(origin=pb.Point2D(x=3 * i, y=2 * i), angle=7.0 * i, width=40, height=30))
              for i in range(n)],
        create_relevance_heatmap=True, heatmap_options=pb.HeatmapOptions(patch_size=8, stride=8),
    )
    return ClassifyRequest.from_proto(msg, RequestLimits())


def _compute(engine, model, service: HeatmapService, req: ClassifyRequest):
    # As the servicer does: the ROIs preprocessed once, classified and occluded.
    base = engine.preprocess(model, req.image.array, req.image.pixel_format, req.rois_array)
    probs = engine.infer_tensors(model, base).result(60)
    return asyncio.run(service.compute(model, req, base, probs.probabilities, None))


def test_chunks_within_a_small_budget_give_the_same_heatmaps(engine_and_model):
    engine, model = engine_and_model
    req = _request(5)  # 5 ROIs x 16 occlusions = 80 copies
    item = 3 * SIDE * SIDE * 4
    whole = _compute(engine, model, HeatmapService(engine), req)
    before = engine.counters(model.name, model.version)
    # Room for 2 chunks of 2 batches: 5 chunks, buffers reused.
    chunked = _compute(engine, model, HeatmapService(engine, HeatmapConfig(max_inflight_bytes=4 * MAX_BATCH * item)),
                       req)
    after = engine.counters(model.name, model.version)
    assert after["items"] - before["items"] == 5 + 80
    assert after["runs"] - before["runs"] <= 1 + math.ceil(80 / MAX_BATCH) + 1
    for a, b in zip(whole, chunked, strict=True):
        assert a.scale > 0 and a == b


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="window must be >= 1"):
        HeatmapConfig(window=0)
