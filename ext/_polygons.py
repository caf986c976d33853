"""Polygon masks' preparation, before the kernel runs (ext/_mask.pxd applies
them): each ROI's rings checked, mapped into output pixel coordinates and
turned into an edge list, all ROIs in one NumPy pass.

Samples on an edge must agree with GDAL's polygon rasterization (what
rasterio.features.geometry_mask computes), so the arithmetic is GDAL's: the
inverse map as GDALInvGeoTransform computes it, applied in
GDALApplyGeoTransform's order, in plain IEEE operations (Python floats and
NumPy ufuncs; the Cython module is built with -ffast-math), and every ring
turned to one orientation (GDAL's horizontal-edge rule depends on it).
"""
from __future__ import annotations

import numpy as np

MAX_COORD = 1 << 24  # as the ROI rows (_preprocess.pyx)


def _ring(ring, where: str) -> np.ndarray:
    try:
        r = np.asarray(ring, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where} must be an (M, 2) array-like of numbers: {exc}") from None
    if r.ndim != 2 or r.shape[1] != 2 or r.shape[0] < 3:
        raise ValueError(f"{where} must have shape (M, 2) with M >= 3 vertices, got {r.shape}")
    return r


def rings(poly, where: str) -> list[np.ndarray]:
    """A polygon: an (M, 2) array-like (one ring) or a sequence of rings."""
    if isinstance(poly, np.ndarray) and poly.ndim == 2:
        return [_ring(poly, where)]
    try:
        items = list(poly)
    except TypeError:
        raise TypeError(f"{where} must be None, an (M, 2) array-like or a list of rings, "
                        f"got {type(poly).__name__}") from None
    if not items:
        raise ValueError(f"{where} has no ring")
    if np.ndim(items[0]) == 1 and len(items[0]) == 2 and np.ndim(items[0][0]) == 0:
        return [_ring(items, where)]  # a list of (x, y) pairs: one ring
    return [_ring(r, f"{where}[{i}]") for i, r in enumerate(items)]


def inverse(a) -> tuple[float, ...]:
    """The inverse of a = (A00, A01, A02, A10, A11, A12) (output pixel ->
    image) as GDALInvGeoTransform computes it: (offset, x, y) per output axis."""
    a0, a1, a2, a3, a4, a5 = (float(v) for v in a)
    if a1 == 0.0 and a3 == 0.0:
        return (-a2 / a0, 1.0 / a0, 0.0, -a5 / a4, 0.0, 1.0 / a4)
    inv_det = 1.0 / (a0 * a4 - a1 * a3)
    return ((a1 * a5 - a2 * a4) * inv_det, a4 * inv_det, -a1 * inv_det,
            (-a0 * a5 + a2 * a3) * inv_det, -a3 * inv_det, a0 * inv_det)


def edges(polygons: list, affines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E, 4) float64 edges x1, y1, x2, y2 in output pixel coordinates and the
    (N + 1,) intp offsets of each ROI's edges. polygons: one entry per ROI
    (None or a polygon); affines: (N, 6) rows of each ROI's map."""
    n = len(polygons)
    parts, coefs, owners = [], [], []
    for k, poly in enumerate(polygons):
        if poly is not None:
            inv = inverse(affines[k])
            for ring in rings(poly, f"polygons[{k}]"):
                parts.append(ring)
                coefs.append(inv)
                owners.append(k)
    offsets = np.zeros(n + 1, dtype=np.intp)
    if not parts:
        return np.zeros((0, 4), dtype=np.float64), offsets
    sizes = np.array([len(p) for p in parts], dtype=np.intp)
    np.add.at(offsets, np.asarray(owners) + 1, sizes)
    offsets = np.cumsum(offsets)
    xy = np.concatenate(parts)
    ok = np.isfinite(xy).all(1) & (np.abs(xy) <= MAX_COORD).all(1)
    if not ok.all():
        bad = int(np.searchsorted(offsets, np.argmin(ok), side="right")) - 1
        raise ValueError(f"polygons[{bad}] vertices must be finite and within +-{MAX_COORD}")
    c = np.repeat(np.array(coefs), sizes, axis=0)
    x, y = xy[:, 0], xy[:, 1]
    uv = np.stack([c[:, 0] + x * c[:, 1] + y * c[:, 2], c[:, 3] + x * c[:, 4] + y * c[:, 5]], 1)
    return _oriented_edges(uv, sizes), offsets


def _oriented_edges(uv: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each ring's edges (vertex i to i + 1, the last to the first), rings of
    positive signed area walked backwards: one orientation for all."""
    starts = np.cumsum(sizes) - sizes
    ring = np.repeat(np.arange(len(sizes)), sizes)
    first, size = starts[ring], sizes[ring]
    pos = np.arange(len(uv)) - first
    nxt = first + (pos + 1) % size
    area = np.add.reduceat(uv[:, 0] * uv[nxt, 1] - uv[nxt, 0] * uv[:, 1], starts)
    back = (area > 0)[ring]
    src = np.where(back, first + size - 1 - pos, first + pos)
    nxt = np.where(back, first + (size - 2 - pos) % size, nxt)
    return np.ascontiguousarray(np.hstack([uv[src], uv[nxt]]))
