"""Raw ONNX Runtime in-process: the ceiling, batch-1 latency, preprocessing cost.

The session uses ONNX Runtime's defaults (intra-op threads = the cores): what
a user who calls onnxruntime directly gets. Inputs are random tensors of the
model's shape, fixed for the run, so no preprocessing is in these figures;
the preprocessing of one ROI (roiclass.ext, as the engine calls it) is timed
on its own.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from roiclass.server.models.spec import ModelSpec

log = logging.getLogger(__name__)

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)


def input_shape(spec: ModelSpec, n: int) -> tuple[int, ...]:
    h, w, c = spec.input_height, spec.input_width, spec.channels
    return (n, c, h, w) if spec.layout == "NCHW" else (n, h, w, c)


def make_session(spec: ModelSpec, providers: list[str] | None = None):
    import onnxruntime as ort

    return ort.InferenceSession(str(spec.onnx_path), providers=providers or ["CPUExecutionProvider"])


def _batch_sizes(session) -> tuple[int, ...]:
    dim = session.get_inputs()[0].shape[0]
    return (dim,) if isinstance(dim, int) and dim > 0 else BATCH_SIZES


def measure_raw(spec: ModelSpec, duration: float, repeats: int,
                providers: list[str] | None = None) -> dict[str, Any]:
    """Per batch size: median ROIs/s over repeats; best = the ceiling; batch-1
    latency percentiles over every batch-1 run."""
    session = make_session(spec, providers)
    name = session.get_inputs()[0].name
    dtype = np.float16 if spec.input_dtype == "float16" else np.float32
    rng = np.random.default_rng(0)
    per_batch: dict[str, Any] = {}
    b1_times: list[float] = []
    for n in _batch_sizes(session):
        x = rng.standard_normal(input_shape(spec, n)).astype(dtype)
        for _ in range(3):  # warm-up: first runs allocate
            session.run(None, {name: x})
        rates = []
        for _ in range(repeats):
            runs, t0 = 0, time.perf_counter()
            end = t0 + duration
            while True:
                s = time.perf_counter()
                session.run(None, {name: x})
                e = time.perf_counter()
                runs += 1
                if n == 1:
                    b1_times.append(e - s)
                if e >= end:
                    break
            rates.append(runs * n / (e - t0))
        per_batch[str(n)] = round(float(np.median(rates)), 2)
        log.info("raw ORT %s batch %d: %.1f ROIs/s", spec.name, n, per_batch[str(n)])
    best = max(per_batch, key=per_batch.get)
    out = {
        "providers": session.get_providers(),
        "rois_per_s_by_batch": per_batch,
        "ceiling_rois_per_s": per_batch[best],
        "ceiling_batch": int(best),
    }
    if b1_times:
        t = np.asarray(b1_times) * 1e3
        out.update(batch1_p50_ms=round(float(np.percentile(t, 50)), 4),
                   batch1_p90_ms=round(float(np.percentile(t, 90)), 4),
                   batch1_p99_ms=round(float(np.percentile(t, 99)), 4),
                   batch1_cdf_ms=[round(float(v), 4) for v in np.percentile(t, np.linspace(0, 100, 201))])
    return out


def measure_preprocess(spec: ModelSpec, image: np.ndarray, rois: np.ndarray, runs: int = 300) -> dict[str, Any]:
    """Median time of roiclass.ext.preprocess_rois for the request's ROIs
    (one thread, as the engine runs it by default)."""
    from roiclass.ext import preprocess_rois
    from roiclass.server.engine import channels

    dtype = np.float16 if spec.input_dtype == "float16" else np.float32
    out = np.zeros(input_shape(spec, len(rois)), dtype)
    kargs = channels.kernel_args(spec, "RGB8")  # the bench sends RGB8 images
    kwargs = dict(layout=spec.layout, channel_map=kargs.channel_map, mean=kargs.mean, std=kargs.std,
                  resize=spec.resize, crop_fraction=spec.crop_fraction, border=spec.border,
                  fill=kargs.fill, antialias=True, num_threads=1)
    times = []
    for _ in range(runs):
        s = time.perf_counter()
        preprocess_rois(image, rois, out, **kwargs)
        times.append(time.perf_counter() - s)
    return {"preprocess_ms": round(float(np.median(times)) * 1e3, 4), "rois": int(len(rois))}
