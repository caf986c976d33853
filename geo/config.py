"""GeoConfig: everything one `roiclass geo` run needs, built by the CLI (or
by classify_features' keyword arguments) and checked once here."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .chips import MODES, ChipPolicy
from .emd import EmdKeys
from .errors import GeoInputError
from .rows import FieldNames

PROCESSING_MODES = ("mosaic", "separately")
DEFAULT_BATCH = 64


@dataclass(frozen=True)
class Extent:
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    crs: str | None = None  # None: the layer's CRS


@dataclass(frozen=True)
class GeoConfig:
    rasters: tuple[str, ...]
    out: str | None = None
    features: str | None = None
    model: str = ""
    emd: str | None = None
    servers: tuple[str, ...] = ()
    local: bool = False
    fields: FieldNames = field(default_factory=FieldNames)
    processing_mode: str = "mosaic"
    chip: str | None = None  # None: the .emd's CropSizeFixed, else fixed
    padding: float | None = None
    blacken: bool | None = None  # None: the .emd's BlackenAroundFeature
    batch_size: int | None = None  # None: the .emd's BatchSize, else DEFAULT_BATCH
    min_confidence: float = 0.0
    all_classes: bool = False
    extent: Extent | None = None
    cell_size: float | None = None
    parallel: int = 1
    retries: int = 3
    overwrite: bool = False
    append: bool = False
    quiet: bool = True
    connection: dict = field(default_factory=dict)  # AsyncClassifier's tls=, token=
    cache_mb: int = 128
    window: int = 4  # frames in flight per lane

    def __post_init__(self) -> None:
        if self.processing_mode not in PROCESSING_MODES:
            raise GeoInputError("--processing-mode", f"must be one of {', '.join(PROCESSING_MODES)}, "
                                                     f"got {self.processing_mode!r}")
        if self.chip is not None and self.chip not in MODES:
            raise GeoInputError("--chip", f"must be one of {', '.join(MODES)}, got {self.chip!r}")
        if self.model and self.emd:
            raise GeoInputError("--emd", "give --model or --emd, not both")
        if self.local and self.servers:
            raise GeoInputError("--local", "give --server or --local, not both")
        for name, value, low in (("--parallel", self.parallel, 1), ("--retries", self.retries, 0),
                                 ("--batch-size", self.batch_size or 1, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise GeoInputError(name, f"must be an integer >= {low}, got {value!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise GeoInputError("--min-confidence", f"must be in 0..1, got {self.min_confidence!r}")
        if self.cell_size is not None and not (self.cell_size > 0 and math.isfinite(self.cell_size)):
            raise GeoInputError("--cell-size", f"must be a number > 0, got {self.cell_size!r}")
        if self.padding is not None and not (self.padding >= 0 and math.isfinite(self.padding)):
            raise GeoInputError("--padding", f"must be a number >= 0, got {self.padding!r}")

    def policy(self, keys: EmdKeys | None, input_width: int, input_height: int) -> ChipPolicy:
        """The chip policy: the flags, else the .emd's keys, else the defaults."""
        mode = self.chip
        if mode is None:
            mode = "bbox" if keys is not None and keys.crop_size_fixed is False else "fixed"
        blacken = self.blacken if self.blacken is not None else bool(keys and keys.blacken)
        width = (keys.width if keys and keys.width else None) or input_width
        height = (keys.height if keys and keys.height else None) or input_height
        space = (keys.space if keys and keys.space else None) or "MAP_SPACE"
        return ChipPolicy(mode, width, height, self.padding or 0.0, space, blacken)

    def chips_per_frame(self, keys: EmdKeys | None) -> int:
        return self.batch_size or (keys.batch_size if keys and keys.batch_size else None) or DEFAULT_BATCH
