"""Real small ONNX models (built with onnx.helper) and real images for engine tests."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from tests.onnx_files import save_graph
from skimage import data

from roiclass.server.engine import Engine, EngineConfig
from roiclass.server.metrics import Metrics
from roiclass.server.models.spec import ModelSpec

SIZE = 16


def make_onnx(path: Path, *, classes: int = 3, channels: int = 3, size: int = SIZE,
              batch: int | str = "N", weights: np.ndarray | None = None,
              extra_matmuls: int = 0) -> Path:
    """logits = mean over H, W of each channel @ weights + bias (NCHW float32 input).

    extra_matmuls adds square MatMuls on a (N, 256) path to make runs slower."""
    if weights is None:
        weights = np.random.default_rng(0).normal(size=(channels, classes)).astype(np.float32)
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [batch, channels, size, size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])
    inits = [helper.make_tensor("W", TensorProto.FLOAT, list(weights.shape), weights.ravel()),
             helper.make_tensor("b", TensorProto.FLOAT, [classes],
                                np.linspace(0, 0.1, classes, dtype=np.float32))]
    nodes = [helper.make_node("ReduceMean", ["pixels"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "W"], ["mw"])]
    last = "mw"
    if extra_matmuls:
        # A slower side path whose result is multiplied by 0 and added: same output.
        nodes.append(helper.make_node("Reshape", ["pixels", "shape"], ["flat"]))
        inits.append(helper.make_tensor("shape", TensorProto.INT64, [2], [0, -1]))
        prev = "flat"
        d = channels * size * size
        rng = np.random.default_rng(1)
        for k in range(extra_matmuls):
            w = (rng.normal(size=(d, d)) / d).astype(np.float32)
            inits.append(helper.make_tensor(f"S{k}", TensorProto.FLOAT, [d, d], w.ravel()))
            nodes.append(helper.make_node("MatMul", [prev, f"S{k}"], [f"s{k}"]))
            prev = f"s{k}"
        inits.append(helper.make_tensor("Z", TensorProto.FLOAT, [d, classes],
                                        np.zeros(d * classes, np.float32)))
        nodes += [helper.make_node("MatMul", [prev, "Z"], ["z"]),
                  helper.make_node("Add", ["mw", "z"], ["mwz"])]
        last = "mwz"
    nodes.append(helper.make_node("Add", [last, "b"], ["logits"]))
    graph = helper.make_graph(nodes, "tiny", [x], [y], inits)
    return save_graph(graph, path)


def make_spec(path: Path, name: str = "tiny", version: str = "1", classes: int = 3,
              **kw) -> ModelSpec:
    kw.setdefault("max_queue_delay_us", 2000)
    return ModelSpec(name=name, version=version, onnx_path=path,
                     classes=tuple(f"c{i}" for i in range(classes)), input_width=SIZE,
                     input_height=SIZE, channels=kw.pop("channels", 3), **kw)


@pytest.fixture
def chelsea() -> np.ndarray:
    return data.chelsea()  # (300, 451, 3) uint8 RGB


@pytest.fixture
def tiny_onnx(tmp_path) -> Path:
    return make_onnx(tmp_path / "tiny.onnx")


@pytest.fixture
def make_engine():
    engines = []

    def make(**kw) -> Engine:
        metrics = kw.pop("metrics", None) or Metrics()
        kw.setdefault("devices", "cpu")
        kw.setdefault("cpu_threads", 1)
        eng = Engine(EngineConfig(**kw), metrics)
        engines.append(eng)
        return eng

    yield make
    for eng in engines:
        eng.close(grace_s=1.0)


def rois_grid(n: int, seed: int = 0) -> np.ndarray:
    """n different rotated ROIs inside the chelsea image."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(40, 250, size=(n, 2))
    ang = rng.uniform(-60, 60, size=(n, 1))
    wh = rng.uniform(20, 120, size=(n, 2))
    return np.hstack([xy, wh, ang]).astype(np.float64)


logging.getLogger("roiclass").setLevel(logging.DEBUG)
