"""Benchmark: test-time augmentation (issue #15) on the default model
(EfficientNet-Lite0, 224 x 224).

    .venv/bin/python bench/tta.py              # ~1 min on 2 cores
    .venv/bin/python bench/tta.py --quick      # smoke run
    .venv/bin/python bench/tta.py --tag gpu    # writes bench/results/tta-gpu.json

A roiclass server runs in this process (BackgroundServer, as bench/heatmap.py)
so that the engine's counters can be read. Per mode it times, at
concurrency 1, one ROI with `tta` = the mode against the same request with
the mode's variants sent as plain ROIs (the same rows the server makes: same
pixels, same model work; Roi.mirror for the mirrored ones): "dihedral" vs 8
ROIs (the issue's target: within 1.2x), "flip" vs 2, "rotations:5:4" vs 5.
The two requests of a pair alternate call by call; each repeat takes the
median of --calls calls; figures are medians over repeats, the ratio that of
the medians with the range of the per-repeat ratios. It also checks that the
TTA result is the mean of the plain ones (max abs difference) and counts the
model runs per request (the variants share one batch).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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
ROI = (110.0, 30.0, 230.0, 210.0, 8.0)  # x, y, width, height, angle: the cat's head
MODES = ("dihedral", "flip", "rotations:5:4")
TARGET = 1.2  # dihedral latency / eight plain ROIs (issue #15)


def _variant_rois(pb, mode: str) -> list:
    """The server's own variant rows (server/pipeline/tta.py) as plain ROIs."""
    from roiclass.server.models.pipeline import parse_tta
    from roiclass.server.pipeline.tta import variant_rows

    rows = variant_rows(np.array([ROI]), parse_tta(mode))
    return [pb.Roi(rect=pb.Rectangle2D(origin=pb.Point2D(x=r[0], y=r[1]), width=r[2], height=r[3], angle=r[4]),
                   mirror=bool(r[5])) for r in rows]


def _request(pb, image: np.ndarray, rois, tta: str = "", **fields):
    """The model's own top_k (5) unless fields say otherwise: replies of the
    same size per ROI, not 1000 confidences each."""
    h, w = image.shape[:2]
    return pb.ClassifyObjectRequest(
        image=pb.Image(raw=pb.RawImage(width=w, height=h, pixel_format=pb.RGB8, pixels=image.tobytes())),
        rois=rois, model=MODEL, tta=tta, **fields)


def _probs(result, n: int) -> np.ndarray:
    p = np.zeros(n)
    for c in result.confidences:
        p[c.class_index] = c.confidence
    return p


def _timed(stub, req) -> float:
    t = time.perf_counter()
    stub.ClassifyObject(req, timeout=600)
    return time.perf_counter() - t


def run_mode(srv, stub, pb, image, mode: str, repeats: int, calls: int) -> dict:
    model = srv.app.engine.resolve(MODEL, "")
    plain_rois = _variant_rois(pb, mode)
    one = pb.Roi(rect=pb.Rectangle2D(origin=pb.Point2D(x=ROI[0], y=ROI[1]), width=ROI[2], height=ROI[3],
                                     angle=ROI[4]))
    tta_req, plain_req = _request(pb, image, [one], mode), _request(pb, image, plain_rois)
    # the same answer: the TTA result is the mean of the plain variants (all classes)
    n = len(model.spec.classes)
    full = dict(top_k=n, min_confidence=0.0)
    tta_p = _probs(stub.ClassifyObject(_request(pb, image, [one], mode, **full), timeout=600).results[0], n)
    plain_p = np.array([_probs(r, n) for r in
                        stub.ClassifyObject(_request(pb, image, plain_rois, **full), timeout=600).results])
    runs = {}
    for name, req in (("tta", tta_req), ("plain", plain_req)):
        c0 = srv.app.engine.counters(model.name, model.version)
        stub.ClassifyObject(req, timeout=600)
        c1 = srv.app.engine.counters(model.name, model.version)
        runs[name] = (c1["runs"] - c0["runs"], c1["items"] - c0["items"])
    t_tta, t_plain = [], []
    for _ in range(repeats):
        a, b = [], []
        for _ in range(calls):  # alternate call by call: load drift hits both alike
            a.append(_timed(stub, tta_req))
            b.append(_timed(stub, plain_req))
        t_tta.append(statistics.median(a))
        t_plain.append(statistics.median(b))
    ratios = [x / y for x, y in zip(t_tta, t_plain)]
    ratio = statistics.median(t_tta) / statistics.median(t_plain)
    return {
        "mode": mode, "variants": len(plain_rois),
        "tta_ms": 1e3 * statistics.median(t_tta), "plain_ms": 1e3 * statistics.median(t_plain),
        "ratio": ratio, "ratio_range": [min(ratios), max(ratios)],
        "tta_runs_items": list(runs["tta"]), "plain_runs_items": list(runs["plain"]),
        "max_abs_diff_vs_mean_of_plain": float(np.abs(tta_p - plain_p.mean(0)).max()),
        "target": TARGET if mode == "dihedral" else None,
        "target_met": (ratio <= TARGET) if mode == "dihedral" else None,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--calls", type=int, default=5, help="calls of each request per repeat")
    ap.add_argument("--quick", action="store_true", help="2 repeats of 2 calls, dihedral only")
    ap.add_argument("--tag", default="", help="results file bench/results/tta-TAG.json")
    args = ap.parse_args(argv)
    repeats, calls = (2, 2) if args.quick else (max(1, args.repeats), max(1, args.calls))
    modes = MODES[:1] if args.quick else MODES

    from skimage import data

    from roiclass.server.app import BackgroundServer
    from roiclass.server.config import ServerConfig
    from roiclass.v1 import classifier_pb2 as pb
    from roiclass.v1 import classifier_pb2_grpc as pb_grpc

    image = np.ascontiguousarray(data.chelsea())
    srv = BackgroundServer(ServerConfig(host="127.0.0.1", port=0, metrics_port=None)).start()
    results = []
    try:
        with grpc.insecure_channel(srv.address) as channel:
            stub = pb_grpc.ObjectClassifierStub(channel)
            for _ in range(3):  # warm-up: sessions, batch shapes
                stub.ClassifyObject(_request(pb, image, _variant_rois(pb, "dihedral")), timeout=600)
            for mode in modes:
                r = run_mode(srv, stub, pb, image, mode, repeats, calls)
                results.append(r)
                print(f"{mode}: {r['tta_ms']:.1f} ms vs {r['variants']} plain ROIs {r['plain_ms']:.1f} ms = "
                      f"{r['ratio']:.3f}x ({r['ratio_range'][0]:.3f}-{r['ratio_range'][1]:.3f}); runs/items "
                      f"{r['tta_runs_items']} vs {r['plain_runs_items']}; |tta - mean| "
                      f"{r['max_abs_diff_vs_mean_of_plain']:.1e}"
                      + (f"; target {TARGET}x {'met' if r['target_met'] else 'MISSED'}" if r["target"] else ""))
            max_batch = srv.app.engine.resolve(MODEL, "").max_batch
    finally:
        srv.stop()
    out = BENCH / "results" / (f"tta-{args.tag}.json" if args.tag else "tta.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({
        "benchmark": "tta", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": MODEL, "roi": ROI, "max_batch": max_batch, "repeats": repeats, "calls_per_repeat": calls,
        "load_average_at_end": os.getloadavg(), "machine": _machine.describe(), "modes": results,
    }, indent=2) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
