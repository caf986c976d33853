"""The letterbox as ROI geometry: the whole image placed in the detector's input.

No kernel change: the image becomes one ROI rectangle of the input's aspect
(larger than the image), resized "stretch" onto the input; what lies outside
the image takes the detector's input.fill (114 for Ultralytics and YOLOX).
The same scale and offset map the boxes back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Letterbox:
    scale: float  # input pixels per image pixel
    pad_x: float  # where the image's left edge lands in the input
    pad_y: float

    def roi_rows(self, net_w: int, net_h: int) -> np.ndarray:
        """(1, 5) ROI row (x, y, width, height, angle) in image coordinates."""
        s = self.scale
        return np.array([[-self.pad_x / s, -self.pad_y / s, net_w / s, net_h / s, 0.0]])

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Input-pixel coordinates (..., 2k) as x, y pairs -> image coordinates."""
        out = np.array(xy, np.float64)
        out[..., 0::2] = (out[..., 0::2] - self.pad_x) / self.scale
        out[..., 1::2] = (out[..., 1::2] - self.pad_y) / self.scale
        return out


def letterbox(width: int, height: int, net_w: int, net_h: int, mode: str) -> Letterbox:
    """Ultralytics' LetterBox (center: half the padding on each side) or YOLOX's
    preproc (topleft: all of it right and below), without their rounding to whole
    pixels: the kernel resamples the exact rectangle."""
    scale = min(net_w / width, net_h / height)
    if mode == "topleft":
        return Letterbox(scale, 0.0, 0.0)
    return Letterbox(scale, (net_w - width * scale) / 2, (net_h - height * scale) / 2)
