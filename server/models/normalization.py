"""Named input normalizations -> per-channel mean/std in 0..255 source units.

The engine computes x_norm = (x - mean) / std on source values (0..255 for
8-bit images). Names:
  none       0..255, unchanged            (mean 0,     std 1)
  unit       [0, 1]                       (mean 0,     std 255)
  symmetric  [-1, 1]                      (mean 127.5, std 127.5)
  imagenet   ImageNet mean/std of RGB      (mean 0.485*255..., std 0.229*255...)
  custom     explicit mean and std
imgproxy's names are accepted as aliases, with imgproxy's meaning
(docs.imgproxy.net, classification): `half` = [0, 1] -> unit,
`full` = [-1, 1] -> symmetric.

Esri's two forms (server/models/emd.py reads them): `data_range` (DataRange,
the range the model expects) and `minmax_scaled` (arcgis.learn's
NormalizationStats, in the raster's raw values).
"""
from __future__ import annotations

from .errors import ModelConfigError

ALIASES = {"half": "unit", "full": "symmetric"}
NAMES = ("none", "unit", "symmetric", "imagenet", "half", "full", "custom")

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def canonical(name: str, where: str) -> str:
    """Lower-cased name with aliases resolved; unknown names raise."""
    key = str(name).strip().lower()
    if key not in NAMES:
        raise ModelConfigError(f"{where}: unknown normalization {name!r}; allowed: {', '.join(NAMES)}")
    return ALIASES.get(key, key)


def mean_std(name: str, channels: int, channel_order: str = "RGB") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of a canonical name other than custom.

    ImageNet statistics are RGB: reversed for BGR, their average for GRAY or
    band lists that are not 3 channels long.
    """
    if name == "none":
        return (0.0,) * channels, (1.0,) * channels
    if name == "unit":
        return (0.0,) * channels, (255.0,) * channels
    if name == "symmetric":
        return (127.5,) * channels, (127.5,) * channels
    if name == "imagenet":
        if channels == 3:
            if channel_order == "BGR":
                return IMAGENET_MEAN[::-1], IMAGENET_STD[::-1]
            return IMAGENET_MEAN, IMAGENET_STD
        m, s = sum(IMAGENET_MEAN) / 3, sum(IMAGENET_STD) / 3
        return (m,) * channels, (s,) * channels
    raise ValueError(f"no built-in statistics for normalization {name!r}")


def data_range(lo: float, hi: float) -> tuple[float, float]:
    """(mean, std) in 0..255 units that map 0..255 (the sample type's full
    range) linearly onto the model's range [lo, hi]: x' = lo + x / 255 (hi - lo)."""
    std = 255.0 / (hi - lo)
    return -lo * std, std


# arcgis.learn's _tensor_scaler divides by (max - min + 1e-05)
MINMAX_EPS = 1e-05


def minmax_scaled(band_min: float, band_max: float, scaled_mean: float, scaled_std: float) -> tuple[float, float]:
    """(mean, std) in raw units of arcgis.learn's ((x - band_min) /
    (band_max - band_min + 1e-05) - scaled_mean) / scaled_std."""
    span = band_max - band_min + MINMAX_EPS
    return band_min + scaled_mean * span, scaled_std * span
