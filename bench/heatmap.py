"""Benchmark: relevance heatmaps (occlusion sensitivity) on the default model.

    .venv/bin/python bench/heatmap.py              # ~1 min on 2 cores
    .venv/bin/python bench/heatmap.py --quick      # smoke run
    .venv/bin/python bench/heatmap.py --tag gpu    # writes bench/results/heatmap-gpu.json

A roiclass server runs in this process (BackgroundServer) so that the
engine's counters can be read. Per case (ROIs x patch/stride) it times a
request without and with create_relevance_heatmap, and counts the ONNX
Runtime runs and items the heatmap added. The target (issue 5): the heatmap
of one ROI costs at most ceil(occlusions / max_batch) batched runs + 10 %,
where the yardstick is the time of pushing that many full batches of tensors
through the same engine queue (Engine.infer_tensors). Medians over --repeats.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import sys
import time
from pathlib import Path

import grpc
import numpy as np

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # run as a script: the helper modules sit beside it
    sys.path.insert(0, str(BENCH))

import _machine  # noqa: E402

MODEL = "efficientnet_lite0"
# (ROIs, patch, stride); None = the model's default (input side // 7, half of it).
CASES = ((1, None, None), (1, 56, 28), (8, 56, 28))


def _request(pb, image: np.ndarray, n: int, heatmap: bool, patch, stride):
    h, w = image.shape[:2]
    rois = [pb.Roi(rect=pb.Rectangle2D(origin=pb.Point2D(x=20 + 30 * i, y=10 + 10 * i), angle=4.0 * i,
                                       width=w * 0.6, height=h * 0.6)) for i in range(n)]
    req = pb.ClassifyObjectRequest(
        image=pb.Image(raw=pb.RawImage(width=w, height=h, pixel_format=pb.RGB8, pixels=image.tobytes())),
        rois=rois, create_relevance_heatmap=heatmap)
    if heatmap and patch is not None:
        req.heatmap_options.patch_size, req.heatmap_options.stride = patch, stride
    return req


def _timed(stub, req) -> tuple[float, object]:
    t = time.perf_counter()
    reply = stub.ClassifyObject(req, timeout=600)
    return time.perf_counter() - t, reply


def _batched_runs(srv, model, tensors: np.ndarray) -> float:
    """Wall time of pushing `tensors` (whole batches) through the engine queue."""
    t = time.perf_counter()
    srv.app.engine.infer_tensors(model, tensors).result(600)
    return time.perf_counter() - t


def run_case(srv, stub, pb, model, image, n, patch, stride, repeats: int) -> dict:
    from roiclass.server.domain import HeatmapRequest
    from roiclass.server.heatmap.occlusion import resolve

    params = resolve(model.spec, HeatmapRequest(patch, stride, None))
    plain, with_hm = _request(pb, image, n, False, patch, stride), _request(pb, image, n, True, patch, stride)
    occ = params.occlusions
    ideal_runs = math.ceil(n * occ / model.max_batch)
    # The yardstick: ideal_runs full batches of ordinary tensors through the same queue.
    tensors = np.random.default_rng(0).standard_normal((ideal_runs * model.max_batch,) + model.item_shape)
    tensors = tensors.astype(model.dtype)
    _timed(stub, with_hm)  # warm-up
    t_plain, t_hm, t_batches, runs, items = [], [], [], [], []
    for _ in range(repeats):  # interleaved, so drift of a noisy machine hits all alike
        t_batches.append(_batched_runs(srv, model, tensors))
        t_plain.append(_timed(stub, plain)[0])
        c0 = srv.app.engine.counters(model.name, model.version)
        t_hm.append(_timed(stub, with_hm)[0])
        c1 = srv.app.engine.counters(model.name, model.version)
        runs.append(c1["runs"] - c0["runs"])
        items.append(c1["items"] - c0["items"])
    extra_s = statistics.median(t_hm) - statistics.median(t_plain)
    budget_s = statistics.median(t_batches)
    return {
        "rois": n, "patch_size": params.patch, "stride": params.stride, "occlusions_per_roi": occ,
        "grid": [math.ceil(model.spec.input_width / params.stride), math.ceil(model.spec.input_height / params.stride)],
        "ms_per_roi_without": 1e3 * statistics.median(t_plain) / n,
        "ms_per_roi_with": 1e3 * statistics.median(t_hm) / n,
        "heatmap_ms_per_roi": 1e3 * extra_s / n,
        "runs_per_request": statistics.median(runs), "items_per_request": statistics.median(items),
        "ideal_heatmap_runs": ideal_runs, "ideal_runs_ms": 1e3 * budget_s,
        "heatmap_cost_vs_batched_runs": extra_s / budget_s,
        "target_met": extra_s <= 1.10 * budget_s,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 repeats, first two cases")
    ap.add_argument("--tag", default="", help="results file bench/results/heatmap-TAG.json")
    args = ap.parse_args(argv)
    repeats = 2 if args.quick else max(1, args.repeats)
    cases = CASES[:2] if args.quick else CASES

    from skimage import data

    from roiclass.server.app import BackgroundServer
    from roiclass.server.config import ServerConfig
    from roiclass.v1 import classifier_pb2 as pb
    from roiclass.v1 import classifier_pb2_grpc as pb_grpc

    image = np.ascontiguousarray(data.chelsea())
    srv = BackgroundServer(ServerConfig(host="127.0.0.1", port=0)).start()
    try:
        model = srv.app.engine.resolve(MODEL, "")
        results = []
        with grpc.insecure_channel(srv.address) as channel:
            stub = pb_grpc.ObjectClassifierStub(channel)
            for n, patch, stride in cases:
                r = run_case(srv, stub, pb, model, image, n, patch, stride, repeats)
                results.append(r)
                print(f"{n} ROI(s), patch {r['patch_size']} stride {r['stride']} ({r['occlusions_per_roi']} "
                      f"occlusions/ROI): {r['ms_per_roi_without']:.1f} -> {r['ms_per_roi_with']:.1f} ms/ROI, "
                      f"{r['runs_per_request']:.0f} runs (ideal {r['ideal_heatmap_runs']} + 1), heatmap = "
                      f"{r['heatmap_cost_vs_batched_runs']:.2f} x {r['ideal_heatmap_runs']} batched runs: "
                      f"{'met' if r['target_met'] else 'MISSED'}")
    finally:
        srv.stop()
    out = BENCH / "results" / (f"heatmap-{args.tag}.json" if args.tag else "heatmap.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "heatmap", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": MODEL, "max_batch": model.max_batch, "repeats": repeats,
        "machine": _machine.describe(), "cases": results,
    }, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
