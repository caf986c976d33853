"""ModelSpec: everything the engine needs to know about one model version.

Built by the loaders in this package (our config.toml, Esri .emd/.dlpk, the
imgproxy-style command line), consumed by the engine and the servicer. What
can be derived from the fields (per-channel statistics, the band list, the
fill in tensor units) is derived once, here, so no consumer re-derives it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .pipeline import ChildSpec, DetectorSpec, TtaMode

# Channel-map sentinels understood by roiclass.ext (BT.601 luma of the source).
LUMA_RGB = -1
LUMA_BGR = -2
BANDS_PREFIX = "bands:"


@dataclass(frozen=True)
class HeatmapDefaults:
    patch_size: int = 0  # 0 = input side // 7
    stride: int = 0  # 0 = patch_size // 2
    max_side: int = 256


@dataclass(frozen=True)
class ModelIO:
    """The ONNX graph's input and output as the engine feeds and reads them."""
    input_name: str
    output_name: str
    dtype: np.dtype  # of the input tensor: float32 or float16
    item_shape: tuple[int, int, int]  # one item, in the spec's layout order
    fixed_batch: int  # the graph's fixed batch size; 0 = dynamic


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    onnx_path: Path
    classes: tuple[str, ...]
    input_width: int
    input_height: int
    # Model input channels (1 or 3, or len(extract_bands)).
    channels: int
    # "RGB", "BGR", "GRAY" or "bands:3,2,1" (Esri ExtractBands, 0-based; numbered as
    # formats.PixelFormat.band_index: by position, or R, G, B, A in the named formats).
    channel_order: str = "RGB"
    # Source bands for multi-band models: output channel i <- band extract_bands[i].
    # Set whenever channel_order is "bands:..." (and the other way round).
    extract_bands: tuple[int, ...] | None = None
    layout: str = "NCHW"  # "NCHW" | "NHWC"
    normalization: str = "unit"  # name as configured: none|unit|symmetric|imagenet|custom
    # Per model-input channel, in 0..255 source units (see raw_units): x_norm = (x - mean) / std.
    # Given as 1 or `channels` values (or 3 for a one-channel model); stored as
    # exactly `channels` values (see per_channel).
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (255.0, 255.0, 255.0)
    resize: str = "stretch"  # "stretch" | "letterbox" | "center_crop"
    crop_fraction: float = 1.0  # center_crop only
    border: str = "constant"  # "constant" | "replicate"
    fill: float = 0.0  # constant fill, in 0..255 source units
    # True: mean, std and fill are in the image's own sample values whatever
    # their type (Esri NormalizationStats); False: in 0..255 units, 0..255
    # being the sample type's full range (uint16: x 257, float32: / 255).
    raw_units: bool = False
    softmax: bool = True  # True: outputs are logits
    input_dtype: str = "float32"  # "float32" | "float16"
    max_batch_size: int = 32
    max_queue_delay_us: int = 500
    max_queue_size: int = 4096  # ROI jobs waiting, past it RESOURCE_EXHAUSTED
    instances_per_device: int = 0  # 0 = the server's --instances-per-device
    allow_cpu_fallback: bool = True
    top_k: int = 5  # default when a request says 0? no: 0 in a request means all
    min_confidence: float = 0.0
    golden_image: Path | None = None
    golden_class: int | None = None
    heatmap: HeatmapDefaults = field(default_factory=HeatmapDefaults)
    # Pipelines (models/pipeline.py): the models run on this one's ROIs where
    # their conditions hold; set when this model is an object detector; the
    # detector a request without ROIs runs first ("" = none); the default TTA.
    children: tuple[ChildSpec, ...] = ()
    detector: DetectorSpec | None = None
    default_detector: str = ""
    tta: TtaMode = field(default_factory=TtaMode)
    format: str = "roiclass"  # "roiclass" | "emd" | "dlpk" | "imgproxy"
    source: Path | None = None  # the config/emd/dlpk file it came from
    # The ONNX input/output read by the loaders (onnx_info.model_io); None for a
    # spec built by hand, which the engine then reads itself.
    io: ModelIO | None = None
    # Derived: the constant fill per model-input channel in tensor units,
    # (fill - mean) / std (what an occluded patch holds).
    normalized_fill: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        bands = _bands(self.channel_order, self.extract_bands, self.name)
        if bands is not None:
            if len(bands) != self.channels:
                raise ValueError(f"model {self.name}: channels = {self.channels} but the band list "
                                 f"{list(bands)} has {len(bands)} bands")
            self._set("extract_bands", bands)
            self._set("channel_order", BANDS_PREFIX + ",".join(str(b) for b in bands))
        mean = per_channel(self.mean, self.channels, "mean", self.name)
        std = per_channel(self.std, self.channels, "std", self.name)
        if any(s == 0 for s in std):
            raise ValueError(f"model {self.name}: std values must be non-zero, got {list(std)}")
        self._set("mean", mean)
        self._set("std", std)
        self._set("normalized_fill", tuple((float(self.fill) - m) / s for m, s in zip(mean, std)))
        if self.io is not None and self.io.item_shape != self.item_shape:
            raise ValueError(f"model {self.name}: the ONNX input item shape {self.io.item_shape} is not "
                             f"the spec's {self.layout} {self.item_shape}")

    @property
    def item_shape(self) -> tuple[int, int, int]:
        """One input item's shape in layout order: (C, H, W) or (H, W, C)."""
        if self.layout == "NHWC":
            return (self.input_height, self.input_width, self.channels)
        return (self.channels, self.input_height, self.input_width)

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # frozen: derived values are set once, here


def _bands(channel_order: str, extract_bands, name: str) -> tuple[int, ...] | None:
    """The band list of a multi-band model from extract_bands or "bands:3,2,1"."""
    parsed = None
    order = str(channel_order).strip()
    if order.lower().startswith(BANDS_PREFIX):
        try:
            parsed = tuple(int(b) for b in order[len(BANDS_PREFIX):].split(",") if b.strip())
        except ValueError:
            raise ValueError(f"channel_order {order!r}: expected bands:<int>,<int>,...") from None
    if extract_bands is None:
        return parsed
    bands = tuple(int(b) for b in extract_bands)
    if parsed is not None and parsed != bands:
        raise ValueError(f"model {name}: channel_order {order!r} and extract_bands {list(bands)} disagree")
    return bands


def per_channel(values, n: int, what: str, name: str) -> tuple[float, ...]:
    """`values` as exactly n per-channel values: 1 value is broadcast; a
    one-channel model given 3 values takes their mean (the luma's statistics)."""
    values = tuple(float(v) for v in values)
    if len(values) == n:
        return values
    if len(values) == 1 or (n == 1 and len(set(values)) == 1):
        return (values[0],) * n
    if n == 1:
        return (sum(values) / len(values),)
    raise ValueError(f"model {name}: {what} has {len(values)} values for {n} input channels")
