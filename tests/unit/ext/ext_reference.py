"""NumPy reference for roiclass.ext: the geometry and a bilinear warp.

Kept out of the package on purpose: when a parity test fails, comparing the
kernel, this reference and OpenCV says which one is wrong.
"""
from __future__ import annotations

import math

import numpy as np

BT601 = np.array([0.299, 0.587, 0.114])


def cos_sin(angle_deg: float) -> tuple[float, float]:
    a = angle_deg % 360.0
    exact = {0.0: (1.0, 0.0), 90.0: (0.0, 1.0), 180.0: (-1.0, 0.0), 270.0: (0.0, -1.0)}
    if a in exact:
        return exact[a]
    return math.cos(math.radians(a)), math.sin(math.radians(a))


def affine(roi, out_w: int, out_h: int, resize: str = "stretch", crop_fraction: float = 1.0):
    """(A, box): [sx, sy] = A @ [u+0.5, v+0.5, 1]; box = letterbox content (x0, y0, x1, y1)."""
    x, y, w, h, angle = map(float, roi)
    c, s = cos_sin(angle)
    box = (0, 0, out_w, out_h)
    p0 = q0 = 0.0
    if resize == "letterbox":
        scale = min(out_w / w, out_h / h)
        cw = min(out_w, max(1, math.floor(w * scale + 0.5)))
        ch = min(out_h, max(1, math.floor(h * scale + 0.5)))
        x0, y0 = (out_w - cw) // 2, (out_h - ch) // 2
        box = (x0, y0, x0 + cw, y0 + ch)
        kx, ky = w / cw, h / ch
        p0, q0 = -x0 * kx, -y0 * ky
    elif resize == "center_crop":
        cw, ch = w * crop_fraction, h * crop_fraction
        if cw / ch > out_w / out_h:
            cw = ch * out_w / out_h
        else:
            ch = cw * out_h / out_w
        p0, q0 = (w - cw) / 2, (h - ch) / 2
        kx, ky = cw / out_w, ch / out_h
    else:
        kx, ky = w / out_w, h / out_h
    a = np.array([[kx * c, -ky * s, x + p0 * c - q0 * s],
                  [kx * s, ky * c, y + p0 * s + q0 * c]])
    return a, box


def opencv_matrix(a: np.ndarray) -> np.ndarray:
    """The same map for cv2.warpAffine(WARP_INVERSE_MAP): pixel centres at integers."""
    m = np.array(a, dtype=np.float64).copy()
    m[:, 2] += 0.5 * (m[:, 0] + m[:, 1]) - 0.5
    return m


def warp(image, a, out_w, out_h, border="constant", fill=0.0, box=None):
    """Bilinear warp to (out_h, out_w, C) float64, index coordinates as OpenCV."""
    img = image.reshape(image.shape[0], image.shape[1], -1).astype(np.float64)
    height, width = img.shape[:2]
    v, u = np.mgrid[0:out_h, 0:out_w].astype(np.float64)
    sx = a[0, 0] * (u + 0.5) + a[0, 1] * (v + 0.5) + a[0, 2] - 0.5
    sy = a[1, 0] * (u + 0.5) + a[1, 1] * (v + 0.5) + a[1, 2] - 0.5
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]

    def tap(ix, iy):
        inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
        vals = img[np.clip(iy, 0, height - 1), np.clip(ix, 0, width - 1)]
        if border == "constant":
            vals = np.where(inside[..., None], vals, fill)
        return vals

    res = ((1 - fx) * (1 - fy) * tap(x0, y0) + fx * (1 - fy) * tap(x0 + 1, y0)
           + (1 - fx) * fy * tap(x0, y0 + 1) + fx * fy * tap(x0 + 1, y0 + 1))
    if box is not None:
        inside = np.zeros((out_h, out_w), bool)
        inside[box[1]:box[3], box[0]:box[2]] = True
        res = np.where(inside[..., None], res, fill)
    return res


def channels_and_normalize(samples, channel_map, mean, std):
    """samples (H, W, C_in) -> (H, W, C_out) normalized, float64."""
    outs = []
    for m in channel_map:
        if m == -1:
            outs.append(samples[..., :3] @ BT601)
        elif m == -2:
            outs.append(samples[..., 2::-1][..., :3] @ BT601)
        else:
            outs.append(samples[..., m])
    res = np.stack(outs, -1)
    return (res - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)


def area_truth(image, roi, out_w, out_h, k=12, fill=0.0):
    """Exact-ish area average per output pixel: k x k nearest samples of the
    piecewise-constant image inside each output pixel's footprint."""
    a, _ = affine(roi, out_w, out_h)
    gu, gv = (np.arange(out_w * k) + 0.5) / k, (np.arange(out_h * k) + 0.5) / k
    u, v = np.meshgrid(gu, gv)
    sx = a[0, 0] * u + a[0, 1] * v + a[0, 2]
    sy = a[1, 0] * u + a[1, 1] * v + a[1, 2]
    iy, ix = np.floor(sy).astype(int), np.floor(sx).astype(int)
    inside = (ix >= 0) & (iy >= 0) & (ix < image.shape[1]) & (iy < image.shape[0])
    vals = image[np.clip(iy, 0, image.shape[0] - 1), np.clip(ix, 0, image.shape[1] - 1)]
    vals = np.where(inside, vals, fill).astype(np.float64)
    return vals.reshape(out_h, k, out_w, k).mean(axis=(1, 3))
