"""Occlusion sensitivity in model-input space.

A square patch of `patch` x `patch` input pixels, filled with the model's
normalized fill value, slides over the preprocessed tensor in steps of
`stride`; the last position on each axis is moved back to touch the far edge
so every input pixel is hidden at least once. Each occlusion yields the drop
of the predicted class's probability, clipped at 0.

The relevance grid has one cell per `stride` x `stride` block of input pixels
(the last row/column of cells may be narrower): a cell's value is the mean,
over its pixels, of the mean drop of the patches covering that pixel. That
map is linear in the drops, so it is computed as two small matrix products.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from roiclass.server.domain import HeatmapRequest
from roiclass.server.errors import InvalidArgument
from roiclass.server.models.spec import ModelSpec

DEFAULT_MAX_SIDE = 256
MAX_SIDE_LIMIT = 4096  # bounds the response: a GRAY8 image per ROI
MAX_OCCLUSIONS = 4096  # per ROI; bounds the work one request can ask for
FIELD = "heatmap_options"


@dataclass(frozen=True)
class HeatmapParams:
    patch: int
    stride: int
    max_side: int
    xs: tuple[int, ...]  # patch left edges (input pixels)
    ys: tuple[int, ...]  # patch top edges

    @property
    def occlusions(self) -> int:
        return len(self.xs) * len(self.ys)


def positions(length: int, patch: int, stride: int) -> tuple[int, ...]:
    """Patch starts along one axis; the last one touches the far edge."""
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] + patch < length:
        starts.append(length - patch)
    return tuple(starts)


def resolve(spec: ModelSpec, req: HeatmapRequest) -> HeatmapParams:
    """Request options over model defaults over built-in defaults, checked.

    Raises InvalidArgument naming heatmap_options.<field> and the allowed range.
    """
    w, h = spec.input_width, spec.input_height
    side = min(w, h)
    dflt = spec.heatmap
    for name in ("patch_size", "stride", "max_side"):
        if getattr(req, name) == 0:
            raise InvalidArgument.for_field(
                f"{FIELD}.{name}", "is 0; allowed: >= 1, or leave it unset for the model's default")
    patch = req.patch_size if req.patch_size is not None else (dflt.patch_size or max(1, side // 7))
    origin = "" if req.patch_size is not None else " (model default)"
    if patch > side:
        raise InvalidArgument.for_field(
            f"{FIELD}.patch_size", f"{patch}{origin} is larger than the model input {w}x{h}; "
            f"allowed: 1..{side}")
    stride = req.stride if req.stride is not None else (dflt.stride or max(1, patch // 2))
    origin = "" if req.stride is not None else " (model default)"
    if stride > patch:
        # A stride past the patch would leave pixels that are never hidden.
        raise InvalidArgument.for_field(
            f"{FIELD}.stride", f"{stride}{origin} is larger than the patch size {patch}; "
            f"allowed: 1..{patch}")
    max_side = req.max_side if req.max_side is not None else (dflt.max_side or DEFAULT_MAX_SIDE)
    if max_side > MAX_SIDE_LIMIT:
        raise InvalidArgument.for_field(
            f"{FIELD}.max_side", f"{max_side} is too large; allowed: 1..{MAX_SIDE_LIMIT}")
    xs, ys = positions(w, patch, stride), positions(h, patch, stride)
    if len(xs) * len(ys) > MAX_OCCLUSIONS:
        least = _least_stride(w, h, patch)
        hint = f"allowed: {least}..{patch} for patch size {patch}" if least <= patch else \
            "use a larger patch_size and stride"
        raise InvalidArgument.for_field(
            f"{FIELD}.stride", f"{stride} gives {len(xs)}x{len(ys)} = {len(xs) * len(ys)} occlusions "
            f"per ROI on the {w}x{h} input, more than {MAX_OCCLUSIONS}; {hint}")
    return HeatmapParams(patch, stride, max_side, xs, ys)


def _least_stride(w: int, h: int, patch: int) -> int:
    for s in range(1, patch + 1):
        if len(positions(w, patch, s)) * len(positions(h, patch, s)) <= MAX_OCCLUSIONS:
            return s
    return patch + 1


def occlude(base: np.ndarray, params: HeatmapParams, fill, layout: str,
            start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
    """Occluded copies number start..stop-1 of the flat (ROI, occlusion) index.

    base: (N, *item) preprocessed ROIs; item k of ROI r is index r * occlusions + k,
    occlusion k hides the patch at (xs[k % len(xs)], ys[k // len(xs)]).
    fill: per channel, in tensor units (ModelSpec.normalized_fill).
    out: an optional buffer of at least stop - start items to reuse."""
    n_occ, nx, p = params.occlusions, len(params.xs), params.patch
    idx = np.arange(start, stop)
    # One copy per occlusion, then the patch is painted in.
    out = np.take(base, idx // n_occ, axis=0, out=None if out is None else out[:stop - start])
    fill = np.asarray(fill, dtype=base.dtype)
    for j, k in enumerate(idx % n_occ):
        x, y = params.xs[k % nx], params.ys[k // nx]
        if layout == "NCHW":
            out[j, :, y:y + p, x:x + p] = fill[:, None, None]
        else:
            out[j, y:y + p, x:x + p, :] = fill
    return out


def _axis_operator(length: int, starts: tuple[int, ...], patch: int, stride: int) -> np.ndarray:
    """(cells, positions): per-cell mean over its pixels of the per-pixel mean
    over the patches covering it, along one axis."""
    cover = np.zeros((len(starts), length))
    for i, s in enumerate(starts):
        cover[i, s:s + patch] = 1.0
    per_pixel = cover / cover.sum(axis=0, keepdims=True)  # (positions, pixels)
    cells = math.ceil(length / stride)
    pool = np.zeros((cells, length))
    for c in range(cells):
        lo, hi = c * stride, min((c + 1) * stride, length)
        pool[c, lo:hi] = 1.0 / (hi - lo)
    return pool @ per_pixel.T


def cell_centers(length: int, stride: int) -> np.ndarray:
    """Centres of the grid cells along one axis, in continuous input coordinates."""
    lo = np.arange(0, length, stride, dtype=np.float64)
    return (lo + np.minimum(lo + stride, length)) / 2.0


def relevance_grids(drops: np.ndarray, params: HeatmapParams, width: int, height: int) -> np.ndarray:
    """drops (N, len(ys), len(xs)) -> relevance (N, ceil(H/stride), ceil(W/stride)).

    The mean over covering patches is separable (a patch is a product of an x
    and a y interval), so grid = Ly @ drops @ Lx.T."""
    ly = _axis_operator(height, params.ys, params.patch, params.stride)
    lx = _axis_operator(width, params.xs, params.patch, params.stride)
    return np.einsum("ay,nyx,bx->nab", ly, drops, lx)
