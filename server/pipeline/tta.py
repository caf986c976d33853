"""Test-time augmentation: each ROI row becomes its variants' rows (all ROIs'
variants go to the engine in one call, so they batch with everything else),
and the variants' probabilities are averaged back to one row per ROI.

Variants, all about the ROI's centre (so they cover the same part of the
image) and all as kernel rows (x, y, width, height, angle, flags):
- "flip": the chip and its mirror (flag bit 0: np.flip along the model
  input's width axis, exact in the kernel).
- "dihedral": the ROI turned by 0, 90, 180 and 270 degrees, width and height
  swapped for 90 and 270 (the same rectangle of the image), each also
  mirrored. Turning the ROI's frame 90 degrees clockwise on the image shows
  the chip turned counter-clockwise: for a square model input the 90-degree
  variant is np.rot90(chip) (k=1, axes (H, W)), 180: np.rot90(chip, 2), 270:
  np.rot90(chip, 3).
- "rotations:N:DEG": N ROIs turned by (k - (N-1)/2) * DEG, k = 0..N-1.
A variant keeps the ROI's own mirror flag (XOR the variant's) and its polygon
(image coordinates). The result per ROI is the mean of its variants'
probabilities (after the model's softmax; a model with `activation = "none"`
gives its outputs as they are), the spread their population standard
deviation per class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roiclass.server.geometry import MIRROR_FLAG
from roiclass.server.models.pipeline import TtaMode


@dataclass(frozen=True)
class Variants:
    """One ROI's variants: angle offsets (degrees), whether width and height
    swap, whether the variant is mirrored; one entry per variant."""
    offsets: np.ndarray  # (V,) float64
    swap: np.ndarray  # (V,) bool
    mirror: np.ndarray  # (V,) bool


def variants_of(mode: TtaMode) -> Variants:
    if mode.name == "none":
        return Variants(np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))
    if mode.name == "flip":
        return Variants(np.zeros(2), np.zeros(2, bool), np.array([False, True]))
    if mode.name == "dihedral":
        quarter = np.repeat(np.arange(4), 2)  # 0, 0, 90, 90, ...: each turn, then its mirror
        return Variants(90.0 * quarter, quarter % 2 == 1, np.tile([False, True], 4))
    if mode.name == "rotations":
        k = np.arange(mode.count, dtype=np.float64)
        n = mode.count
        return Variants((k - (n - 1) / 2) * mode.step_deg, np.zeros(n, bool), np.zeros(n, bool))
    raise ValueError(f"unknown test-time augmentation {mode.name!r}")


def _cos_sin(angle_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact 0 / +-1 at multiples of 90 degrees, as the kernel's roi_to_affine."""
    a = np.mod(angle_deg, 360.0)
    r = np.radians(a)
    c, s = np.cos(r), np.sin(r)
    for deg, cc, ss in ((0.0, 1.0, 0.0), (90.0, 0.0, 1.0), (180.0, -1.0, 0.0), (270.0, 0.0, -1.0)):
        hit = a == deg
        c[hit], s[hit] = cc, ss
    return c, s


def variant_rows(rois: np.ndarray, mode: TtaMode) -> np.ndarray:
    """(N, 5|6) ROI rows -> (N * V, 6) rows, ROI i's variants at i*V .. i*V+V-1.
    A variant with no turn is the ROI's own row (bit for bit)."""
    rois = np.asarray(rois, dtype=np.float64)
    v = variants_of(mode)
    n, nv = len(rois), len(v.offsets)
    x, y, w, h, a = (rois[:, j:j + 1] for j in range(5))
    flags = rois[:, 5:6].astype(np.int64) if rois.shape[1] == 6 else np.zeros((n, 1), np.int64)
    c, s = _cos_sin(a)
    cx = x + 0.5 * (w * c - h * s)  # the centre: corner + R(angle) (w/2, h/2)
    cy = y + 0.5 * (w * s + h * c)
    na = a + v.offsets
    nw = np.where(v.swap, h, w)
    nh = np.where(v.swap, w, h)
    nc, ns = _cos_sin(na)
    nx = cx - 0.5 * (nw * nc - nh * ns)
    ny = cy - 0.5 * (nw * ns + nh * nc)
    same = (v.offsets == 0) & ~v.swap  # untouched geometry: keep the client's numbers
    nx, ny = np.where(same, x, nx), np.where(same, y, ny)
    nf = flags ^ v.mirror.astype(np.int64) * MIRROR_FLAG
    out = np.stack([nx, ny, nw, nh, np.where(same, a, na), np.broadcast_to(nf, (n, nv))], axis=-1)
    return out.reshape(n * nv, 6)


def variant_polygons(polygons, count: int):
    """Each ROI's polygon (or None) once per variant, in variant_rows' order."""
    if polygons is None:
        return None
    return [p for p in polygons for _ in range(count)]


def average(probs: np.ndarray, count: int, spread: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(N * V, C) variant probabilities -> (N, C) means and, with spread, the
    population standard deviations (float32)."""
    p = probs.reshape(-1, count, probs.shape[-1]).astype(np.float64)
    mean = p.mean(axis=1).astype(np.float32)
    return mean, (p.std(axis=1).astype(np.float32) if spread else None)
