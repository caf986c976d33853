"""Benchmark: N-band images and polygon masks in roiclass.ext against the
NumPy/OpenCV/rasterio code a GIS script writes for the same tensor.

    .venv/bin/python bench/bands.py [--repeats 15] [--rois 16] [--out bench/results/bands.json]

Cases (224 x 224 model input, rotated 17 degrees, 1:1 scale: a chip as
`roiclass geo` cuts it; NCHW float32, per-band mean/std):
  u16x4        4-band uint16 (RGBN): the SIMD kernel
  u16x8        8-band uint16 (WorldView), 3 bands read: the generic kernel
  f32x4        4-band float32 reflectances: the generic kernel
  u16x4_mask   u16x4 plus a 64-vertex polygon mask (BlackenAroundFeature)
The peer per case: the chip's window sliced out (what a windowed raster read
returns), cv2.warpAffine (INTER_LINEAR, WARP_INVERSE_MAP; at most 4 channels
per call), band pick, normalization and transpose in NumPy; the mask with
rasterio.features.geometry_mask on the output grid + np.where.
Both give the same tensor (checked before timing). Per ROI microseconds,
single thread, medians of interleaved repeats.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from affine import Affine
from rasterio.features import geometry_mask
from shapely.geometry import Polygon, mapping

from roiclass.ext import KERNEL_ISA, preprocess_rois, roi_affine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402

SIDE = 224
BANDS = [2, 1, 0]  # a false-colour pick


def image(dtype, bands: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:1024, 0:1024].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 31.0) * np.cos(yy / 17.0)
    img = np.stack([base + rng.normal(0, 0.05, base.shape) for _ in range(bands)], -1).clip(0, 1)
    return img.astype(np.float32) if dtype == np.float32 else (img * 65535).astype(np.uint16)


def rois(n: int) -> np.ndarray:
    rng = np.random.default_rng(4)
    xy = rng.uniform(250, 700, (n, 2))
    return np.hstack([xy, np.full((n, 2), SIDE), np.full((n, 1), 17.0)])


def star(roi) -> np.ndarray:
    """A 64-vertex star inside the ROI, in image coordinates."""
    a = roi_affine(roi, SIDE, SIDE)
    t = np.arange(64) * np.pi / 32
    r = np.where(np.arange(64) % 2, 60.0, 105.0)
    uv = np.stack([112 + r * np.cos(t), 112 + r * np.sin(t), np.ones(64)], 1)
    return uv @ a.T


def kernel(img, boxes, out, mean, std, polygons=None):
    preprocess_rois(img, boxes, out, channel_map=BANDS, mean=mean, std=std, polygons=polygons)


def peer(img, boxes, out, mean, std, polygons=None):
    for k, roi in enumerate(boxes):
        a = roi_affine(roi, SIDE, SIDE)
        # the chip's window first (as a windowed raster read gives it), then the warp
        corners = np.array([[0, 0, 1], [SIDE, 0, 1], [0, SIDE, 1], [SIDE, SIDE, 1]]) @ a.T
        x0, y0 = np.floor(corners.min(0)).astype(int) - 1
        x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
        window = img[y0:y1, x0:x1]
        m = a.copy()
        m[:, 2] += 0.5 * (a[:, 0] + a[:, 1]) - 0.5 - np.array([x0, y0])  # pixel centres at integers
        planes = [cv2.warpAffine(np.ascontiguousarray(window[..., b:b + 4]), m, (SIDE, SIDE),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
                  for b in range(0, img.shape[2], 4)]
        warped = np.concatenate([p.reshape(SIDE, SIDE, -1) for p in planes], -1)[..., BANDS]
        chw = (warped.astype(np.float32) - mean) / std
        if polygons is not None:
            inside = geometry_mask([mapping(Polygon(polygons[k]))], (SIDE, SIDE), Affine(*a.ravel()), invert=True)
            chw = np.where(inside[..., None], chw, (0.0 - mean) / std)
        out[k] = chw.transpose(2, 0, 1)


def run_case(name, img, n, repeats, masked) -> dict:
    boxes = rois(n)
    hi = 1.0 if img.dtype == np.float32 else 65535.0
    mean = np.array([0.1, 0.2, 0.3], np.float32) * hi
    std = np.array([0.2, 0.25, 0.3], np.float32) * hi
    polygons = [star(r) for r in boxes] if masked else None
    ours, theirs = (np.empty((n, 3, SIDE, SIDE), np.float32) for _ in range(2))
    kernel(img, boxes, ours, mean, std, polygons)
    peer(img, boxes, theirs, mean, std, polygons)
    # OpenCV rounds uint16 samples to integers; the kernel keeps float32
    agree = float(np.abs(ours - theirs).max() * (std.min() / hi))
    times = {"roiclass": [], "peer": []}
    for _ in range(repeats):  # interleaved
        for label, fn in (("roiclass", kernel), ("peer", peer)):
            t0 = time.perf_counter()
            fn(img, boxes, ours if label == "roiclass" else theirs, mean, std, polygons)
            times[label].append((time.perf_counter() - t0) / n * 1e6)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"case": name, "rois": n, "us_per_roi": med, "speedup_vs_peer": med["peer"] / med["roiclass"],
            "max_abs_diff_in_range_units": agree}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--rois", type=int, default=16)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    u16x4 = image(np.uint16, 4)
    cases = [("u16x4", u16x4, False), ("u16x8", image(np.uint16, 8), False),
             ("f32x4", image(np.float32, 4), False), ("u16x4_mask", u16x4, True)]
    load_before = os.getloadavg()
    results = [run_case(name, img, args.rois, args.repeats, masked) for name, img, masked in cases]
    # the machine is shared: the load says how far the absolute times can be trusted (ratios: interleaved)
    report = {"benchmark": "bands", "kernel_isa": KERNEL_ISA, "threads": 1, "machine": describe(),
              "load_average_before_after": [load_before, os.getloadavg()], "cases": results}
    for r in results:
        us = r["us_per_roi"]
        print(f"{r['case']:<11} roiclass {us['roiclass']:8.0f} us/ROI   peer {us['peer']:8.0f} us/ROI   "
              f"x{r['speedup_vs_peer']:.2f}   max diff {r['max_abs_diff_in_range_units']:.2g}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
