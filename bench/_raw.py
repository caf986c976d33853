"""Raw ONNX Runtime in-process: the ceiling, batch-1 latency, preprocessing cost.

Sessions use ONNX Runtime's defaults (intra-op threads = the cores), once as
they come and once with thread spinning off (CONFIGS). Inputs are random tensors of the
model's shape, fixed for the run, so no preprocessing is in these figures;
the preprocessing of one ROI (roiclass.ext, as the engine calls it) is timed
on its own.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import numpy as np

from roiclass.server.models.spec import ModelSpec

log = logging.getLogger(__name__)

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)


def input_shape(spec: ModelSpec, n: int) -> tuple[int, ...]:
    h, w, c = spec.input_height, spec.input_width, spec.channels
    return (n, c, h, w) if spec.layout == "NCHW" else (n, h, w, c)


# ORT's default (worker threads spin between parallel sections) and spinning
# off: on a small shared CPU the spinning threads compete with everything
# else, so either may be faster; the ceiling is the best of both.
CONFIGS = {"default": None, "no_spin": {"session.intra_op.allow_spinning": "0"}}


def make_session(spec: ModelSpec, providers: list[str] | None = None, entries: dict | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    for key, value in (entries or {}).items():
        opts.add_session_config_entry(key, value)
    return ort.InferenceSession(str(spec.onnx_path), opts, providers=providers or ["CPUExecutionProvider"])


class RawBench:
    """One session per configuration, measured repeat by repeat (so that its
    repeats can be interleaved with the servers'), then summarized."""

    def __init__(self, spec: ModelSpec, providers: list[str] | None = None, max_batch: int = 64):
        self.spec = spec
        self.sessions = {name: make_session(spec, providers, entries) for name, entries in CONFIGS.items()}
        self.session = self.sessions["default"]
        self.name = self.session.get_inputs()[0].name
        dim = self.session.get_inputs()[0].shape[0]
        # A fixed batch dimension allows that size only; else up to the
        # model's max batch size, the largest batch the server may form.
        self.sizes = (dim,) if isinstance(dim, int) and dim > 0 else tuple(n for n in BATCH_SIZES if n <= max_batch)
        dtype = np.float16 if spec.input_dtype == "float16" else np.float32
        rng = np.random.default_rng(0)
        self.inputs = {n: rng.standard_normal(input_shape(spec, n)).astype(dtype) for n in self.sizes}
        for session in self.sessions.values():
            for x in self.inputs.values():
                for _ in range(2):  # warm-up: first runs allocate
                    session.run(None, {self.name: x})
        self.rates = {c: {n: [] for n in self.sizes} for c in self.sessions}
        self.b1_times: dict[str, list[float]] = {c: [] for c in self.sessions}

    def run_once(self, duration: float) -> None:
        """One repeat: `duration` seconds per configuration and batch size
        (at least one run)."""
        for config, session in self.sessions.items():
            for n, x in self.inputs.items():
                runs, t0 = 0, time.perf_counter()
                end = t0 + duration
                while True:
                    s = time.perf_counter()
                    session.run(None, {self.name: x})
                    e = time.perf_counter()
                    runs += 1
                    if n == 1:
                        self.b1_times[config].append(e - s)
                    if e >= end:
                        break
                self.rates[config][n].append(runs * n / (e - t0))
            log.info("raw ORT %s %s: %s", self.spec.name, config,
                     ", ".join(f"b{n} {r[-1]:.0f}/s" for n, r in self.rates[config].items()))

    def summary(self) -> dict[str, Any]:
        """Per configuration and batch size: median ROIs/s over repeats; the
        best is the ceiling; batch-1 latency percentiles over every batch-1
        run of the configuration with the lowest median."""
        per_config = {c: {str(n): round(float(np.median(r)), 2) for n, r in rates.items() if r}
                      for c, rates in self.rates.items()}
        config, best = max(((c, n) for c, d in per_config.items() for n in d), key=lambda k: per_config[k[0]][k[1]])
        out = {
            "providers": self.session.get_providers(),
            "rois_per_s_by_batch": per_config,
            "ceiling_rois_per_s": per_config[config][best],
            "ceiling_batch": int(best),
            "ceiling_config": config,
        }
        timed = {c: t for c, t in self.b1_times.items() if t}
        if timed:
            b1_config = min(timed, key=lambda c: np.median(timed[c]))
            out["batch1_config"] = b1_config
            t = np.asarray(timed[b1_config]) * 1e3
            out.update(batch1_p50_ms=round(float(np.percentile(t, 50)), 4),
                       batch1_p90_ms=round(float(np.percentile(t, 90)), 4),
                       batch1_p99_ms=round(float(np.percentile(t, 99)), 4),
                       batch1_cdf_ms=[round(float(v), 4) for v in np.percentile(t, np.linspace(0, 100, 201))])
        return out


def preprocess_call(spec: ModelSpec, image: np.ndarray, rois: np.ndarray) -> tuple[Callable[[], None], np.ndarray]:
    """The engine's roiclass.ext.preprocess_rois call for the request's RGB8
    image and ROI rows (geometry.ROI_COLUMNS order), on one thread as the
    engine runs it by default, and the tensor it writes."""
    from roiclass.ext import preprocess_rois
    from roiclass.server.engine import channels

    dtype = np.float16 if spec.input_dtype == "float16" else np.float32
    out = np.zeros(input_shape(spec, len(rois)), dtype)
    kargs = channels.kernel_args(spec, "RGB8")  # the bench sends RGB8 images
    kwargs = dict(layout=spec.layout, channel_map=kargs.channel_map, mean=kargs.mean, std=kargs.std,
                  resize=spec.resize, crop_fraction=spec.crop_fraction, border=spec.border,
                  fill=kargs.fill, antialias=True, num_threads=1)
    return (lambda: preprocess_rois(image, rois, out, **kwargs)), out


def measure_preprocess(spec: ModelSpec, image: np.ndarray, rois: np.ndarray, runs: int = 300) -> dict[str, Any]:
    """Median time of preprocess_call for the request's ROIs."""
    call, _ = preprocess_call(spec, image, rois)
    times = []
    for _ in range(runs):
        s = time.perf_counter()
        call()
        times.append(time.perf_counter() - s)
    return {"preprocess_ms": round(float(np.median(times)) * 1e3, 4), "rois": int(len(rois))}
