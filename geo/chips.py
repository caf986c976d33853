"""Chips as ArcGIS cuts them: a feature's geometry (in the raster's pixel
coordinates) -> the rotated ROI the kernel crops, in the one row order of
roiclass (x, y, width, height, angle: top-left corner, clockwise degrees).

  fixed     (Esri CropSizeFixed 1) width x height cells centred on the feature
            (a point: the point; a line or polygon: its bounding box's centre)
  bbox      (CropSizeFixed 0) the feature's bounding box + padding on each side
  oriented  the feature's minimum rotated rectangle (shapely) + padding

The chip's axes: PIXEL_SPACE = the raster's pixel grid; MAP_SPACE = north-up
in the map, which on a raster with rotation terms is a rotated ROI. A point
has no extent: bbox and oriented chips of a point are fixed chips. Sizes are
in raster pixels (times `cell_scale` under --cell-size: cells of that size).
Pixel (i, j) covers [i, i+1) x [j, j+1), as in rasterio and the kernel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

MODES = ("fixed", "bbox", "oriented")
SPACES = ("MAP_SPACE", "PIXEL_SPACE")


@dataclass(frozen=True)
class ChipPolicy:
    """How chips are cut. width/height: the fixed chip's size in cells (the
    model input by default); padding: cells added on each side of bbox and
    oriented chips; blacken: BlackenAroundFeature (polygons only)."""

    mode: str = "fixed"
    width: int = 224
    height: int = 224
    padding: float = 0.0
    space: str = "MAP_SPACE"
    blacken: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"chip mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.space not in SPACES:
            raise ValueError(f"ImageSpaceUsed must be one of {', '.join(SPACES)}, got {self.space!r}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"chip size must be > 0, got {self.width}x{self.height}")
        if not (self.padding >= 0 and math.isfinite(self.padding)):
            raise ValueError(f"padding must be a number >= 0, got {self.padding!r}")


def to_pixels(geometries: np.ndarray, transform: Affine) -> np.ndarray:
    """Map coordinates (the raster's CRS) -> its continuous pixel coordinates."""
    inverse = ~transform
    matrix = np.array([[inverse.a, inverse.b], [inverse.d, inverse.e]])
    offset = np.array([inverse.c, inverse.f])
    return shapely.transform(geometries, lambda xy: xy @ matrix.T + offset)


def axis_angle(transform: Affine, space: str) -> float:
    """Degrees (clockwise on the image) of the chip's x axis in pixel space:
    0 on the pixel grid; map east as seen in pixels for MAP_SPACE."""
    if space == "PIXEL_SPACE":
        return 0.0
    inverse = ~transform
    east = (inverse.a, inverse.d)  # the linear part applied to (1, 0)
    return math.degrees(math.atan2(east[1], east[0]))


def chip_rois(pixel_geometries: np.ndarray, policy: ChipPolicy, angle: float, cell_scale: float = 1.0) -> np.ndarray:
    """(N, 5) ROI rows for N geometries in pixel coordinates (NaN rows for
    empty geometries). angle: axis_angle(); cell_scale: raster pixels per cell."""
    rois = np.full((len(pixel_geometries), 5), np.nan)
    theta = math.radians(angle)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    fixed_w, fixed_h = policy.width * cell_scale, policy.height * cell_scale
    pad = policy.padding * cell_scale
    for i, geometry in enumerate(pixel_geometries):
        if geometry is None or shapely.is_empty(geometry):
            continue
        points = shapely.get_type_id(geometry) in (0, 4)  # Point, MultiPoint of one
        single_point = points and shapely.get_num_coordinates(geometry) == 1
        if policy.mode == "oriented" and not single_point:
            centre, w, h, a = _oriented(geometry, angle)
            rois[i] = _roi(centre, w + 2 * pad, h + 2 * pad, a)
            continue
        # bounds in the chip's frame: the geometry rotated by -angle
        local = np.asarray(shapely.get_coordinates(geometry)) @ rot  # = rot.T applied to each row
        lo, hi = local.min(axis=0), local.max(axis=0)
        centre = rot @ ((lo + hi) / 2)
        if policy.mode == "fixed" or single_point:
            rois[i] = _roi(centre, fixed_w, fixed_h, angle)
        else:
            size = np.maximum(hi - lo, 1.0) + 2 * pad  # a straight line still gets one pixel across
            rois[i] = _roi(centre, size[0], size[1], angle)
    return rois


def _roi(centre: np.ndarray, width: float, height: float, angle: float) -> np.ndarray:
    theta = math.radians(angle)
    c, s = math.cos(theta), math.sin(theta)
    half = np.array([width / 2, height / 2])
    corner = centre - np.array([c * half[0] - s * half[1], s * half[0] + c * half[1]])
    return np.array([corner[0], corner[1], width, height, angle])


def _oriented(geometry, reference: float) -> tuple[np.ndarray, float, float, float]:
    """The minimum rotated rectangle: (centre, width, height, angle), its
    width along the side closest to the reference axis (angle within +-45
    degrees of it), so a chip never turns upside down."""
    rect = shapely.minimum_rotated_rectangle(geometry)
    coords = np.asarray(shapely.get_coordinates(rect))
    if len(coords) < 4:  # degenerate (a straight line): its segment
        lo, hi = coords[0], coords[-1]
        edge = hi - lo
        length = float(np.hypot(*edge))
        a = math.degrees(math.atan2(edge[1], edge[0])) if length > 0 else reference
        a = _near(a, reference)
        return (lo + hi) / 2, max(length, 1.0), 1.0, a
    p0, p1, p2 = coords[0], coords[1], coords[2]
    e1, e2 = p1 - p0, p2 - p1
    a1 = math.degrees(math.atan2(e1[1], e1[0]))
    centre = (p0 + p2) / 2
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    d1 = _near(a1, reference)
    if abs(d1 - reference) <= 45.0 + 1e-9:
        return centre, max(l1, 1.0), max(l2, 1.0), d1
    return centre, max(l2, 1.0), max(l1, 1.0), _near(a1 + 90.0, reference)


def _near(angle: float, reference: float) -> float:
    """angle + k*180 closest to the reference (a rectangle's side has two directions)."""
    return angle + 180.0 * round((reference - angle) / 180.0)


def chip_polygon(roi: np.ndarray) -> shapely.Polygon:
    """The chip's footprint in pixel coordinates."""
    x, y, w, h, a = roi
    c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
    local = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    return shapely.Polygon(local @ np.array([[c, s], [-s, c]]) + np.array([x, y]))


def mask_rings(pixel_geometry) -> list[np.ndarray] | None:
    """BlackenAroundFeature's polygon: every ring (outer rings and holes) of a
    polygon feature, in pixel coordinates, for the even-odd rule; None for
    points and lines (nothing to blacken around)."""
    if shapely.get_type_id(pixel_geometry) not in (3, 6):  # Polygon, MultiPolygon
        return None
    parts = shapely.get_parts(pixel_geometry)
    rings = []
    for part in parts:
        rings.append(np.asarray(shapely.get_coordinates(shapely.get_exterior_ring(part)))[:-1])
        rings += [np.asarray(shapely.get_coordinates(r))[:-1] for r in shapely.get_interior_ring(
            np.repeat(part, shapely.get_num_interior_rings(part)), np.arange(shapely.get_num_interior_rings(part)))]
    return rings
