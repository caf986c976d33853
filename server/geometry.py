"""ROI geometry: alignment to image coordinates and the image-overlap test.

Conventions (see the proto): (0,0) is the top-left corner of the top-left
pixel, y points down, angles are degrees clockwise on the image. A rectangle
is its top-left corner `origin`, rotated by `angle` about that corner.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

# The one order of an ROI row, on every surface that takes a row: the kernel's
# (N, 5) arrays, the engine, the Python client's tuples, the CLIs and examples.
ROI_COLUMNS = ("x", "y", "width", "height", "angle")
ROI_ORDER = ", ".join(ROI_COLUMNS)
_ROW = attrgetter(*ROI_COLUMNS)
MIRROR_FLAG = 1  # bit 0 of a row's flags column (column 5): the chip flipped along its width


@dataclass(frozen=True)
class Rect:
    # Fields in ROI_COLUMNS order.
    x: float
    y: float
    width: float
    height: float
    angle: float  # degrees, clockwise

    def corners(self) -> list[tuple[float, float]]:
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        # Local x axis is (c, s), local y axis is (-s, c) in image coordinates (y down).
        pts = ((0.0, 0.0), (self.width, 0.0), (self.width, self.height), (0.0, self.height))
        return [(self.x + u * c - v * s, self.y + u * s + v * c) for u, v in pts]


@dataclass(frozen=True)
class Alignment:
    x: float
    y: float
    angle: float
    scale: float  # > 0

    def apply(self, rect: Rect) -> Rect:
        """image point = origin + scale * R(angle) * local point."""
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        x = self.x + self.scale * (c * rect.x - s * rect.y)
        y = self.y + self.scale * (s * rect.x + c * rect.y)
        return Rect(x, y, rect.width * self.scale, rect.height * self.scale, rect.angle + self.angle)


def overlaps_image(rect: Rect, width: int, height: int) -> bool:
    """True when the rotated rectangle and the image share some area.

    Separating-axis test of two convex quadrilaterals: they are disjoint iff
    one of the four edge normals separates them.
    """
    quad = rect.corners()
    image = [(0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height))]
    c, s = math.cos(math.radians(rect.angle)), math.sin(math.radians(rect.angle))
    for ax, ay in ((1.0, 0.0), (0.0, 1.0), (c, s), (-s, c)):
        p = [x * ax + y * ay for x, y in quad]
        q = [x * ax + y * ay for x, y in image]
        if max(p) <= min(q) or max(q) <= min(p):
            return False
    return True


def rect_rows(rects) -> np.ndarray:
    """Rects (anything with the ROI_COLUMNS attributes) -> (N, 5) float64 ROI rows."""
    return np.array([_ROW(r) for r in rects], dtype=np.float64).reshape(-1, len(ROI_COLUMNS))


def roi_rows(rois) -> np.ndarray:
    """ROI rows as the kernel takes them: contiguous float64, (N, 6) kept (column 5:
    the kernel's flags, bit 0 mirror), anything else read as (N, 5)."""
    rows = np.ascontiguousarray(rois, dtype=np.float64)
    if rows.ndim == 2 and rows.shape[1] == len(ROI_COLUMNS) + 1:
        return rows
    return rows.reshape(-1, len(ROI_COLUMNS))
