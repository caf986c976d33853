"""Which chips to cut from which raster, and how they travel: features
(in the layer's CRS) -> chips (ROIs in a raster's pixels) -> frames (one
read window and the chips cut from it, one request).

Frames follow the raster's tile order (chips grouped by the CELL x CELL
square of their centre, squares row by row), so GDAL reads each tile about
once with a small block cache; a frame's window holds at most MAX_WINDOW
pixels a side and MAX_ROIS chips. A chip larger than that is a frame of its
own, read resampled to about twice the model's input (GDAL picks overviews).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer

from .chips import ChipPolicy, axis_angle, chip_polygon, chip_rois, mask_rings, to_pixels
from .rasters import Raster

CELL = 512
MAX_WINDOW = 1024
MAX_ROIS = 64
MARGIN = 1  # pixels around a chip's box: bilinear sampling reads one pixel past it


@dataclass
class Chip:
    feature: int  # index in the chunk
    raster: int
    roi: np.ndarray  # x, y, w, h, angle in the raster's pixels
    rings: list[np.ndarray] | None  # BlackenAroundFeature polygon, raster pixels
    partial: bool  # the feature is partly outside the raster


@dataclass
class FramePlan:
    raster: int
    window: tuple[int, int, int, int]  # col, row, width, height (raster pixels)
    scale: float  # output pixels per raster pixel of the window
    chips: list[int]  # indices into the chip list

    def rois(self, chips: list[Chip]) -> np.ndarray:
        """The chips' ROIs in the window's (scaled) pixels."""
        col, row = self.window[:2]
        rois = np.array([chips[i].roi for i in self.chips], float)
        rois[:, 0] = (rois[:, 0] - col) * self.scale
        rois[:, 1] = (rois[:, 1] - row) * self.scale
        rois[:, 2:4] *= self.scale
        return rois

    def rings(self, chips: list[Chip]) -> list:
        col, row = self.window[:2]
        return [None if chips[i].rings is None else
                [(ring - np.array([col, row])) * self.scale for ring in chips[i].rings] for i in self.chips]


def reproject(geometries: np.ndarray, transformer: Transformer | None) -> np.ndarray:
    """Layer CRS -> raster CRS; a coordinate PROJ cannot transform becomes inf."""
    if transformer is None:
        return geometries

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1], errcheck=False)
        return np.column_stack([x, y])

    return shapely.transform(geometries, move)


def finite(geometries: np.ndarray) -> np.ndarray:
    """Which geometries have only finite coordinates (False for None/empty)."""
    ok = ~(shapely.is_missing(geometries) | shapely.is_empty(geometries))
    for i in np.flatnonzero(ok):
        ok[i] = bool(np.isfinite(shapely.get_coordinates(geometries[i])).all())
    return ok


def cut_chips(geometries: np.ndarray, candidates: np.ndarray, raster: Raster, raster_index: int,
              policy: ChipPolicy, cell_scale: float) -> tuple[list[Chip], np.ndarray]:
    """Chips of the candidate features (raster CRS) that touch the raster:
    (chips, touched mask over all features)."""
    touched = np.zeros(len(geometries), bool)
    idx = np.flatnonzero(candidates)
    if not len(idx):
        return [], touched
    pixels = to_pixels(geometries[idx], raster.transform)
    footprint = raster_footprint(raster)
    inside = shapely.intersects(pixels, footprint)
    idx, pixels = idx[inside], pixels[inside]
    touched[idx] = True
    partial = ~shapely.covers(footprint, pixels)
    rois = chip_rois(pixels, policy, axis_angle(raster.transform, policy.space), cell_scale)
    chips = [Chip(int(f), raster_index, rois[k], mask_rings(pixels[k]) if policy.blacken else None,
                  bool(partial[k])) for k, f in enumerate(idx)]
    return chips, touched


def raster_footprint(raster: Raster) -> shapely.Geometry:
    if raster.footprint is not None:
        return raster.footprint
    height, width = raster.shape
    return shapely.box(0, 0, width, height)


def plan_frames(chips: list[Chip], model_side: int, max_rois: int = MAX_ROIS) -> list[FramePlan]:
    """Chips -> frames in tile order (see the module docstring)."""
    boxes = np.array([_box(c.roi) for c in chips]).reshape(-1, 4)
    frames: list[FramePlan] = []
    small = []
    for i, (c0, r0, c1, r1) in enumerate(boxes):
        side = max(c1 - c0, r1 - r0)
        if side > MAX_WINDOW:
            scale = min(1.0, 2.0 * model_side / side)
            frames.append(FramePlan(chips[i].raster, (c0, r0, c1 - c0, r1 - r0), scale, [i]))
        else:
            small.append(i)
    order = sorted(small, key=lambda i: (chips[i].raster, _cell(boxes[i]), boxes[i][0]))
    current: list[int] = []
    window = None
    for i in order:
        box = boxes[i]
        if current:
            merged = (min(window[0], box[0]), min(window[1], box[1]), max(window[2], box[2]), max(window[3], box[3]))
            same = chips[current[0]].raster == chips[i].raster and _cell(boxes[current[0]]) == _cell(box)
            if (same and len(current) < max_rois and merged[2] - merged[0] <= MAX_WINDOW
                    and merged[3] - merged[1] <= MAX_WINDOW):
                current.append(i)
                window = merged
                continue
            frames.append(_frame(chips, current, window))
        current, window = [i], tuple(box)
    if current:
        frames.append(_frame(chips, current, window))
    return frames


def _frame(chips: list[Chip], members: list[int], window) -> FramePlan:
    c0, r0, c1, r1 = window
    return FramePlan(chips[members[0]].raster, (c0, r0, c1 - c0, r1 - r0), 1.0, list(members))


def _cell(box) -> tuple[int, int]:
    return (int((box[1] + box[3]) // 2 // CELL), int((box[0] + box[2]) // 2 // CELL))


def _box(roi: np.ndarray) -> tuple[int, int, int, int]:
    corners = np.asarray(chip_polygon(roi).exterior.coords)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return (math.floor(lo[0]) - MARGIN, math.floor(lo[1]) - MARGIN,
            math.ceil(hi[0]) + MARGIN, math.ceil(hi[1]) + MARGIN)
