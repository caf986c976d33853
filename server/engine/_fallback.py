"""TEMPORARY NumPy stand-in for roiclass.ext.preprocess_rois (stretch only).

Only used while the Cython kernel is not built; delete once it lands.
"""
from __future__ import annotations

import numpy as np

LUMA_RGB = -1
LUMA_BGR = -2


def preprocess_rois(image, rois, out, *, layout="NCHW", channel_map=None, mean=None, std=None,
                    resize="stretch", crop_fraction=1.0, border="constant", fill=0.0,
                    antialias=True, num_threads=1):
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    H, W, C = img.shape
    if layout == "NCHW":
        oc, oh, ow = out.shape[1:]
    else:
        oh, ow, oc = out.shape[1:]
    cmap = list(channel_map) if channel_map is not None else list(range(oc))
    mean = np.zeros(oc) if mean is None else np.asarray(mean, dtype=np.float64)
    std = np.ones(oc) if std is None else np.asarray(std, dtype=np.float64)
    rois = np.asarray(rois, dtype=np.float64)
    for i, (x, y, ang, w, h) in enumerate(rois):
        if not (w > 0 and h > 0 and np.isfinite([x, y, ang, w, h]).all()):
            raise ValueError(f"roi {i}: width and height must be > 0 and finite")
        u = (np.arange(ow) + 0.5) * (w / ow)
        v = (np.arange(oh) + 0.5) * (h / oh)
        uu, vv = np.meshgrid(u, v)
        c, s = np.cos(np.radians(ang)), np.sin(np.radians(ang))
        px = x + c * uu - s * vv - 0.5
        py = y + s * uu + c * vv - 0.5
        x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
        fx, fy = (px - x0)[..., None], (py - y0)[..., None]

        def at(yy, xx):
            ok = ((yy >= 0) & (yy < H) & (xx >= 0) & (xx < W))[..., None]
            v = img[np.clip(yy, 0, H - 1), np.clip(xx, 0, W - 1)]
            return np.where(ok, v, fill)

        s00, s01 = at(y0, x0), at(y0, x0 + 1)
        s10, s11 = at(y0 + 1, x0), at(y0 + 1, x0 + 1)
        val = (s00 * (1 - fx) + s01 * fx) * (1 - fy) + (s10 * (1 - fx) + s11 * fx) * fy
        chans = []
        for k, src in enumerate(cmap):
            if src == LUMA_RGB:
                ch = val[..., 0] * 0.299 + val[..., 1] * 0.587 + val[..., 2] * 0.114
            elif src == LUMA_BGR:
                ch = val[..., 2] * 0.299 + val[..., 1] * 0.587 + val[..., 0] * 0.114
            else:
                ch = val[..., src]
            chans.append((ch - mean[k]) / std[k])
        res = np.stack(chans, 0 if layout == "NCHW" else -1)
        out[i] = res.astype(out.dtype)
