"""Benchmark: roiclass.ext.preprocess_rois against OpenCV and Pillow pipelines.

    .venv/bin/python bench/preprocess.py [--repeats 15] [--runs 5] [--out bench/results/preprocess.json]

Four cases (see bench/README.md), each timed single-threaded and with all
threads; medians of several repeats, reported per ROI, plus ratios. The
frame is BGR (as cameras deliver it) and the model wants RGB, ImageNet
normalization, NCHW float32: every pipeline does the same work.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import roiclass.ext
from roiclass.ext import HAVE_OPENMP, KERNEL_ISA, max_threads, roi_affine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' NumPy reference geometry
from tests.unit.ext.ext_reference import area_truth  # noqa: E402

MEAN = np.array([123.675, 116.28, 103.53], np.float32)  # ImageNet, RGB, 0..255
STD = np.array([58.395, 57.12, 57.375], np.float32)
SIDE = 224


def frame(gray: bool) -> np.ndarray:
    """A 2448x2048 frame with texture (a smooth field plus noise)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:2048, 0:2448].astype(np.float32)
    base = 127 + 60 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
    if gray:
        return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    chans = [base + rng.normal(0, 20, base.shape) for _ in range(3)]
    return np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)


def cases():
    rng = np.random.default_rng(2)
    many = []
    for _ in range(64):
        x, y, angle = rng.uniform(300, 2000), rng.uniform(300, 1700), rng.uniform(0, 360)
        many.append([x, y, rng.uniform(140, 160), rng.uniform(140, 160), angle])
    return {
        "1_one_224_roi_30deg_rgb8": dict(gray=False, rois=[[1100, 900, SIDE, SIDE, 30]]),
        "2_64_rois_150px_rgb8": dict(gray=False, rois=many),
        "3_1200x1000_roi_to_224_antialiased": dict(gray=False, rois=[[700, 300, 1200, 1000, 15]], area=True),
        # the same, axis-aligned: exact area averaging (equals INTER_AREA)
        "3b_1200x1000_axis_aligned_to_224": dict(gray=False, rois=[[600, 500, 1200, 1000, 0]], area=True),
        "4_gray8_into_3ch_model": dict(gray=True, rois=[[1100, 900, SIDE, SIDE, 30]]),
    }


def index_matrix(roi, w, h):
    """OpenCV's WARP_INVERSE_MAP matrix: pixel indices, centres at integers."""
    a = roi_affine(roi, w, h)
    m = a.copy()
    m[:, 2] += 0.5 * (a[:, 0] + a[:, 1]) - 0.5
    return m


# the build roiclass.ext picked for this CPU; --kernel-build x86-64-v2 forces
# the baseline one (what CPUs without AVX2 + FMA get)
KERNEL = {"build": KERNEL_ISA, "preprocess_rois": roiclass.ext.preprocess_rois}


def preprocess_rois(*args, **kwargs):
    return KERNEL["preprocess_rois"](*args, **kwargs)


def run_kernel(img, rois, batch, gray, threads):
    cmap = [0, 0, 0] if gray else [2, 1, 0]
    preprocess_rois(img, rois, batch, channel_map=cmap, mean=MEAN, std=STD, num_threads=threads)


def run_opencv(img, rois, batch, gray, area):
    for k, roi in enumerate(rois):
        if area:  # full-size rotated crop, then INTER_AREA
            w, h = int(round(roi[2])), int(round(roi[3]))
            big = cv2.warpAffine(img, index_matrix(roi, w, h), (w, h),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
            patch = cv2.resize(big, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        else:
            patch = cv2.warpAffine(img, index_matrix(roi, SIDE, SIDE), (SIDE, SIDE),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
        patch = cv2.cvtColor(patch, cv2.COLOR_GRAY2RGB if gray else cv2.COLOR_BGR2RGB)
        x = patch.astype(np.float32)
        x -= MEAN
        x *= 1.0 / STD
        batch[k] = x.transpose(2, 0, 1)


def run_pillow(pil, rois, batch, gray, area):
    for k, roi in enumerate(rois):
        w, h = (int(round(roi[2])), int(round(roi[3]))) if area else (SIDE, SIDE)
        a = roi_affine(roi, w, h)  # Pillow's AFFINE samples at pixel centres too
        patch = pil.transform((w, h), Image.Transform.AFFINE, data=tuple(a.ravel()),
                              resample=Image.Resampling.BILINEAR)
        if area:
            patch = patch.resize((SIDE, SIDE), Image.Resampling.BOX)
        x = np.asarray(patch.convert("RGB"), dtype=np.float32)
        if not gray:
            x = x[:, :, ::-1]  # BGR frame
        batch[k] = ((x - MEAN) / STD).transpose(2, 0, 1)


def antialias_quality() -> dict:
    """RMS error (levels) of the rotated-ROI antialiasing against an exact area
    average, on 1-px lines every 2, 3, 5 px, at 10-80 degrees, shrunk 2.1-9x;
    and of plain bilinear point sampling for comparison."""
    errs = {"antialias": [], "point": []}
    for period in (2, 3, 5):
        lines = np.zeros((700, 700), np.uint8)
        lines[:, ::period] = 255
        for angle in (10, 30, 60, 80):
            for shrink in np.linspace(2.1, 9, 8):
                side = int(300 / shrink)
                roi = [200, 100, 300, 300, angle]
                truth = area_truth(lines, roi, side, side, k=10)
                for key, aa in (("antialias", True), ("point", False)):
                    out = np.empty((1, 1, side, side), np.float32)
                    preprocess_rois(lines, [roi], out, antialias=aa)
                    errs[key].append(float(np.sqrt(np.mean((out[0, 0] - truth) ** 2))))
    return {key: {"cases": len(e), "max_rms": max(e), "mean_rms": float(np.mean(e))} for key, e in errs.items()}


def interleaved_medians(fns: dict, repeats: int) -> dict:
    """Median wall time of each fn, repeats interleaved so that a load spike
    from elsewhere hits every pipeline alike."""
    for fn in fns.values():
        fn()  # warm-up
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def heap_bytes_per_call(img, rois, batch, gray) -> int:
    """Peak Python-heap bytes of one kernel call (argument checks only)."""
    run_kernel(img, rois, batch, gray, 1)
    tracemalloc.start()
    run_kernel(img, rois, batch, gray, 1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def machine() -> dict:
    try:
        from _machine import describe  # bench/_machine.py, shared by the benchmarks

        return describe()
    except Exception:  # noqa: BLE001 - the description is optional
        return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def measure_case(name, case, frames, pils, repeats: int) -> dict:
    """One interleaved measurement of one case: kernel, OpenCV, Pillow."""
    img, rois, gray, area = frames[case["gray"]], case["rois"], case["gray"], case.get("area", False)
    n = len(rois)
    batch = np.empty((n, 3, SIDE, SIDE), np.float32)
    ref = np.empty_like(batch)
    row = {"rois": n}
    for label, threads in (("1t", 1), ("all", os.cpu_count() or 1)):
        cv2.setNumThreads(threads)
        fns = {
            "kernel": lambda: run_kernel(img, rois, batch, gray, threads),
            "opencv": lambda: run_opencv(img, rois, ref, gray, area),
        }
        if label == "1t":  # Pillow is single-threaded
            fns["pillow"] = lambda: run_pillow(pils[gray], rois, ref, gray, area)
        for key, sec in interleaved_medians(fns, repeats).items():
            row[f"{key}_ms" if key == "pillow" else f"{key}_{label}_ms"] = 1e3 * sec / n
    run_kernel(img, rois, batch, gray, 1)
    run_opencv(img, rois, ref, gray, area)
    # sanity: both pipelines compute the same tensor (normalized units)
    row["max_abs_diff_vs_opencv"] = float(np.abs(batch - ref).max())
    row["python_heap_bytes_per_call"] = heap_bytes_per_call(img, rois, batch, gray)
    for label in ("1t", "all"):
        row[f"speedup_vs_opencv_{label}"] = row[f"opencv_{label}_ms"] / row[f"kernel_{label}_ms"]
    row["speedup_vs_pillow_1t"] = row["pillow_ms"] / row["kernel_1t_ms"]
    print(f"{name:36s} kernel {row['kernel_1t_ms']:.3f}/{row['kernel_all_ms']:.3f} ms  "
          f"opencv {row['opencv_1t_ms']:.3f}/{row['opencv_all_ms']:.3f} ms  pillow {row['pillow_ms']:.3f} ms  "
          f"x{row['speedup_vs_opencv_1t']:.2f} / x{row['speedup_vs_opencv_all']:.2f} vs cv2, "
          f"x{row['speedup_vs_pillow_1t']:.1f} vs PIL  (diff {row['max_abs_diff_vs_opencv']:.3f})", flush=True)
    return row


def measure_all(frames, pils, repeats: int) -> dict:
    return {name: measure_case(name, case, frames, pils, repeats) for name, case in cases().items()}


def combine(runs: list[dict]) -> dict:
    """Per case, the median of each figure over the runs (one run: itself),
    plus every run's speedups so the spread stays visible."""
    out = {}
    for name in runs[0]:
        rows = [run[name] for run in runs]
        row = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        row["rois"] = rows[0]["rois"]
        if len(rows) > 1:
            row["runs"] = len(rows)
            for key in ("speedup_vs_opencv_1t", "speedup_vs_opencv_all", "speedup_vs_pillow_1t"):
                row[f"{key}_per_run"] = [round(r[key], 3) for r in rows]
        out[name] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--runs", type=int, default=1,
                    help="whole measurements, one after the other; the JSON keeps per-case medians over them")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "preprocess.json")
    ap.add_argument("--kernel-build", choices=["auto", "x86-64-v2"], default="auto",
                    help="auto: the build roiclass.ext picks for this CPU; x86-64-v2: the baseline build")
    args = ap.parse_args()
    if args.kernel_build == "x86-64-v2":
        from roiclass.ext import _preprocess as baseline

        KERNEL.update(build=baseline.build_isa(), preprocess_rois=baseline.preprocess_rois)
    print(f"kernel build: {KERNEL['build']}")
    frames = {False: frame(False), True: frame(True)}
    # BGR bytes wrapped as "RGB"; run_pillow swaps the channels back
    pils = {g: Image.fromarray(f) for g, f in frames.items()}
    runs = []
    for r in range(args.runs):
        if args.runs > 1:
            print(f"-- run {r + 1} of {args.runs}", flush=True)
        runs.append(measure_all(frames, pils, args.repeats))
    results = combine(runs)
    report = {
        "machine": machine(),
        "load_average_after": os.getloadavg(),
        "versions": {"numpy": np.__version__, "opencv": cv2.__version__, "pillow": Image.__version__},
        "kernel": {"have_openmp": HAVE_OPENMP, "max_threads": max_threads(), "build": KERNEL["build"]},
        "repeats": args.repeats,
        "runs": args.runs,
        "unit": "milliseconds per ROI, median of interleaved repeats (and, with several runs, the median "
                "over runs); _1t one thread, _all all cores",
        "cases": results,
        "antialias_rms_levels_vs_exact_area": antialias_quality(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
