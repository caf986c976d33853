"""Relevance grid (model-input space) -> GRAY8 image in the ROI's own frame.

The engine maps ROI-local point (p, q) (p along the ROI's width, in image
pixels) to model input (U, V) by p = p0 + U * kx, q = q0 + V * ky (the same
numbers as ext/_geometry.pxd's roi_to_affine with the rotation taken out):
stretch covers the whole ROI, letterbox puts it in a centred box of the input,
center_crop shows only its middle. Output pixels are mapped to input
coordinates, the grid is interpolated bilinearly between cell centres, and
ROI parts the model never saw (outside a centre crop) read 0.
"""
from __future__ import annotations

import math

import numpy as np

from roiclass.server.heatmap.occlusion import cell_centers
from roiclass.v1 import classifier_pb2 as pb


def roi_to_input(width: float, height: float, in_w: int, in_h: int, resize: str,
                 crop_fraction: float = 1.0) -> tuple[float, float, float, float]:
    """(p0, kx, q0, ky): ROI-local p = p0 + U * kx, q = q0 + V * ky."""
    if resize == "letterbox":
        scale = min(in_w / width, in_h / height)
        cw = max(1, min(in_w, math.floor(width * scale + 0.5)))
        ch = max(1, min(in_h, math.floor(height * scale + 0.5)))
        kx, ky = width / cw, height / ch
        return -((in_w - cw) // 2) * kx, kx, -((in_h - ch) // 2) * ky, ky
    if resize == "center_crop":
        cw, ch = width * crop_fraction, height * crop_fraction
        if cw * in_h > ch * in_w:  # keep the input's aspect: crop the longer side
            cw = ch * in_w / in_h
        else:
            ch = cw * in_h / in_w
        return (width - cw) / 2, cw / in_w, (height - ch) / 2, ch / in_h
    return 0.0, width / in_w, 0.0, height / in_h


def output_size(width: float, height: float, max_side: int) -> tuple[int, int]:
    """round(width) x round(height), scaled down so the longer side <= max_side."""
    w, h = max(1, round(width)), max(1, round(height))
    if max(w, h) > max_side:
        f = max_side / max(w, h)
        w, h = max(1, round(w * f)), max(1, round(h * f))
    return w, h


def _weights(n_out: int, roi_len: float, p0: float, k: float, in_len: int, stride: int) -> np.ndarray:
    """(n_out, cells) bilinear weights from grid cells to output pixel centres."""
    u = ((np.arange(n_out) + 0.5) * (roi_len / n_out) - p0) / k  # input coordinates
    centers = cell_centers(in_len, stride)
    eye = np.eye(len(centers))
    w = np.stack([np.interp(u, centers, eye[c]) for c in range(len(centers))], axis=1)
    w[(u < 0) | (u > in_len)] = 0.0  # not seen by the model
    return w


def heatmap_image(grid: np.ndarray, roi_w: float, roi_h: float, in_w: int, in_h: int,
                  stride: int, resize: str, crop_fraction: float, max_side: int) -> np.ndarray:
    """float (out_h, out_w) relevance over the ROI, bilinear from the grid."""
    out_w, out_h = output_size(roi_w, roi_h, max_side)
    p0, kx, q0, ky = roi_to_input(roi_w, roi_h, in_w, in_h, resize, crop_fraction)
    wx = _weights(out_w, roi_w, p0, kx, in_w, stride)
    wy = _weights(out_h, roi_h, q0, ky, in_h, stride)
    return wy @ grid @ wx.T


def to_proto(grid: np.ndarray, image: np.ndarray, patch: int, stride: int) -> pb.RelevanceHeatmap:
    """GRAY8 image = round(relevance / scale * 255), scale = the grid's maximum."""
    scale = float(grid.max()) if grid.size else 0.0
    if scale > 0:
        gray = np.rint(np.clip(image / scale, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        gray = np.zeros(image.shape, np.uint8)  # nothing moved the prediction
    h, w = gray.shape
    return pb.RelevanceHeatmap(
        image=pb.RawImage(width=w, height=h, pixel_format=pb.GRAY8, pixels=gray.tobytes()),
        grid_width=grid.shape[1], grid_height=grid.shape[0],
        relevance=grid.astype(np.float32).ravel().tolist(),
        scale=scale, patch_size=patch, stride=stride,
    )
