"""ModelSpec: everything the engine needs to know about one model version.

Built by the loaders in this package (our config.toml, Esri .emd/.dlpk, the
imgproxy-style command line), consumed by the engine and the servicer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Channel-map sentinels understood by roiclass.ext (BT.601 luma of the source).
LUMA_RGB = -1
LUMA_BGR = -2


@dataclass(frozen=True)
class HeatmapDefaults:
    patch_size: int = 0  # 0 = input side // 7
    stride: int = 0  # 0 = patch_size // 2
    max_side: int = 256


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
    # "RGB", "BGR", "GRAY" or "bands:3,2,1" (Esri ExtractBands, 0-based here).
    channel_order: str = "RGB"
    # Source bands for multi-band models: output channel i <- band extract_bands[i].
    extract_bands: tuple[int, ...] | None = None
    layout: str = "NCHW"  # "NCHW" | "NHWC"
    normalization: str = "unit"  # name as configured: none|unit|symmetric|imagenet|custom
    # Per model-input channel, in 0..255 source units: x_norm = (x - mean) / std.
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (255.0, 255.0, 255.0)
    resize: str = "stretch"  # "stretch" | "letterbox" | "center_crop"
    crop_fraction: float = 1.0  # center_crop only
    border: str = "constant"  # "constant" | "replicate"
    fill: float = 0.0  # constant fill, in 0..255 source units
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
    format: str = "roiclass"  # "roiclass" | "emd" | "dlpk" | "imgproxy"
    source: Path | None = None  # the config/emd/dlpk file it came from
