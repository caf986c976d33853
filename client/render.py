"""Draws a relevance heatmap over the crop of its (rotated) ROI, for people.

The crop is sampled with Pillow's affine transform (bilinear) in the proto's
pixel convention: pixel (i, j) covers [i, i+1) x [j, j+1).
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from roiclass.server import formats

from .types import Roi

# Inferno colour map, a few stops of matplotlib's table, interpolated to 256.
_INFERNO_STOPS = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float64,
)
INFERNO = np.stack(
    [
        np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_INFERNO_STOPS)), _INFERNO_STOPS[:, c])
        for c in range(3)
    ],
    axis=1,
).round().astype(np.uint8)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """uint8 gray / RGB / RGBA or uint16 gray -> uint8 (h, w, 3) for display."""
    if image.dtype == np.uint16:
        top = int(image.max()) or 1  # stretch to the image's range, 16-bit data is rarely full-scale
        image = (image.astype(np.float32) * (255.0 / top)).round().astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def crop_roi(image: np.ndarray, roi: Roi, width: int, height: int) -> np.ndarray:
    """Samples the rotated rectangle `roi` (image coordinates) of an RGB uint8
    image into a (height, width, 3) array; outside the image is black."""
    angle = math.radians(roi.angle)
    c, s = math.cos(angle), math.sin(angle)
    sx, sy = roi.width / width, roi.height / height
    # Output point (u, v) -> image point origin + R(angle) @ (u * sx, v * sy).
    coefficients = (c * sx, -s * sy, roi.x, s * sx, c * sy, roi.y)
    source = Image.fromarray(to_rgb8(image), "RGB")
    crop = source.transform((width, height), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)
    return np.asarray(crop)


def colorize(heat: np.ndarray) -> np.ndarray:
    """uint8 (h, w) -> uint8 (h, w, 3) through the inferno map."""
    return INFERNO[heat]


def overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blends the coloured heatmap over the crop (same height and width)."""
    if heat.shape != crop.shape[:2]:
        resized = Image.fromarray(heat, "L").resize((crop.shape[1], crop.shape[0]), Image.Resampling.BILINEAR)
        heat = np.asarray(resized)
    blended = (1.0 - alpha) * crop.astype(np.float32) + alpha * colorize(heat).astype(np.float32)
    return blended.round().clip(0, 255).astype(np.uint8)


def render_heatmap(image: np.ndarray, roi: Roi, heat: np.ndarray, min_side: int = 128) -> Image.Image:
    """The ROI crop of `image` with the heatmap `heat` (uint8 (h, w)) on top;
    small heatmaps are drawn at least `min_side` pixels on their short side."""
    height, width = heat.shape
    factor = max(1, math.ceil(min_side / max(1, min(height, width))))
    out_w, out_h = width * factor, height * factor
    crop = crop_roi(image, roi, out_w, out_h)
    return Image.fromarray(overlay(crop, heat), "RGB")


def load_image_array(path: str) -> np.ndarray:
    """A file -> uint8 gray/RGB/RGBA or uint16 gray array, as the server sees it."""
    with Image.open(path) as picture:
        return formats.pil_array(picture)[0]
