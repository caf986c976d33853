"""A request's input tensors -> what the engine takes: images with their ROI
rows (IMAGE / IMAGE_ENCODED, ROIS, ALIGNMENT) or ready model tensors (the
model's own ONNX input: the raw-tensor mode).

The checks and the geometry are v1's (images.decode_image, geometry.py), so a
tensor request and a ClassifyObject request for the same input reach the
engine with the same arrays; messages name the tensor and what is allowed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from roiclass.server import formats
from roiclass.server.domain import RequestLimits
from roiclass.server.errors import InvalidArgument
from roiclass.server.formats import PixelFormat
from roiclass.server.geometry import ROI_COLUMNS, Alignment, Rect, overlaps_image, rect_rows
from roiclass.server.images import decode_image
from roiclass.server.oip.tensors import Tensor
from roiclass.v1 import classifier_pb2 as pb

IMAGE, IMAGE_ENCODED, ROIS, ALIGNMENT = "IMAGE", "IMAGE_ENCODED", "ROIS", "ALIGNMENT"
ALIGNMENT_COLUMNS = ("x", "y", "angle", "scale")  # geometry.Alignment's fields
# IMAGE's colour order by its channel count, unless its "pixel_format" parameter names one.
DEFAULT_FORMATS = {1: "GRAY", 3: "RGB", 4: "RGBA"}
PIXEL_FORMAT_PARAMETER = "pixel_format"


@dataclass(frozen=True)
class ImageJob:
    """One image and its ROI rows (N, 5) float64 in ROI_COLUMNS order: one engine.classify call."""
    array: np.ndarray
    pixel_format: PixelFormat
    rois: np.ndarray


def image_jobs(inputs: dict[str, Tensor], limits: RequestLimits) -> tuple[list[ImageJob], tuple[int, ...]]:
    """IMAGE or IMAGE_ENCODED (one of them), optional ROIS and ALIGNMENT -> a job per image,
    and the leading dimensions of the outputs: (B * N,) for ROIS [N, 5] (the same ROIs on
    each image; B = 1 for [H, W, C]), (B, N) for ROIS [B, N, 5] (each image its own)."""
    if (IMAGE in inputs) == (IMAGE_ENCODED in inputs):
        raise InvalidArgument.for_field(
            "inputs", f"send exactly one of {IMAGE} (UINT8 [H, W, C] or [B, H, W, C]) and "
            f"{IMAGE_ENCODED} (BYTES [B]: PNG/JPEG files)")
    images = _raw_images(inputs[IMAGE], limits) if IMAGE in inputs else _encoded_images(
        inputs[IMAGE_ENCODED], limits)
    rows, lead = _roi_rows(inputs.get(ROIS), inputs.get(ALIGNMENT), len(images), limits)
    jobs = []
    for b, (array, fmt) in enumerate(images):
        h, w = array.shape[:2]
        if rows is None:
            rois = np.array([[0.0, 0.0, float(w), float(h), 0.0]])
        else:
            rects = rows[b if len(rows) > 1 else 0]
            for i, rect in enumerate(rects):
                _check_overlap(_row_name(ROIS, b if len(rows) > 1 else None, i), rect, w, h,
                               b if len(images) > 1 else None)
            rois = rect_rows(rects)
        jobs.append(ImageJob(array, fmt, rois))
    return jobs, lead


def _raw_images(t: Tensor, limits: RequestLimits) -> list[tuple[np.ndarray, PixelFormat]]:
    if t.datatype not in ("UINT8", "UINT16"):
        raise InvalidArgument.for_field(IMAGE, f"datatype {t.datatype}: allowed UINT8 (or UINT16 for GRAY16)")
    if len(t.shape) not in (3, 4):
        raise InvalidArgument.for_field(IMAGE, f"shape {list(t.shape)}: allowed [H, W, C] or [B, H, W, C]")
    batch = t.data if len(t.shape) == 4 else t.data[np.newaxis]
    _, h, w, c = batch.shape
    fmt = _pixel_format(t, c)
    for name, value in (("height", h), ("width", w)):
        if not 1 <= value <= limits.max_image_side:
            raise InvalidArgument.for_field(IMAGE, f"{name} {value} is out of range: "
                                                   f"allowed 1..{limits.max_image_side}")
    limits.image.check(w, h, fmt, IMAGE)
    if len(batch) == 0:
        raise InvalidArgument.for_field(IMAGE, "holds no image (batch size 0)")
    shape = fmt.shape(h, w)  # a one-band image is (H, W), as v1 decodes it
    return [(image.reshape(shape), fmt) for image in batch]


def _pixel_format(t: Tensor, channels: int) -> PixelFormat:
    named = t.parameters.get(PIXEL_FORMAT_PARAMETER)
    if named is not None:
        fmt = formats.by_name(str(named))
        if fmt is None or fmt.chroma:  # an IMAGE tensor is (H, W, C): YUV 4:2:0 planes are not
            raise InvalidArgument.for_field(f"{IMAGE}.parameters.{PIXEL_FORMAT_PARAMETER}",
                                            f"{named!r} is not a pixel format of an (H, W, C) tensor; "
                                            f"allowed: {formats.INTERLEAVED_NAMES}")
        if fmt.channels != channels or fmt.dtype != t.data.dtype:
            raise InvalidArgument.for_field(
                IMAGE, f"pixel format {fmt.name} needs {fmt.channels} channel(s) of {fmt.dtype.name}; "
                f"the tensor has {channels} of {t.data.dtype.name}")
        return fmt
    order = "GRAY" if t.datatype == "UINT16" else DEFAULT_FORMATS.get(channels)
    fmt = formats.for_array(t.data.dtype, channels, order) if order else None
    if fmt is None:
        raise InvalidArgument.for_field(
            IMAGE, f"{channels} channels of {t.datatype}: allowed UINT8 with 1 (GRAY8), 3 (RGB8) or "
            f"4 (RGBA8) channels, UINT16 with 1 (GRAY16); other orders by the parameter "
            f"{PIXEL_FORMAT_PARAMETER} ({formats.INTERLEAVED_NAMES})")
    return fmt


def _encoded_images(t: Tensor, limits: RequestLimits) -> list[tuple[np.ndarray, PixelFormat]]:
    if t.datatype != "BYTES":
        raise InvalidArgument.for_field(IMAGE_ENCODED, f"datatype {t.datatype}: allowed BYTES (PNG/JPEG files)")
    if len(t.shape) > 2 or (len(t.shape) == 2 and t.shape[1] != 1):
        raise InvalidArgument.for_field(IMAGE_ENCODED, f"shape {list(t.shape)}: allowed [B] or [B, 1]")
    files = t.data.ravel()
    if len(files) == 0:
        raise InvalidArgument.for_field(IMAGE_ENCODED, "holds no image (batch size 0)")
    out = []
    for b, data in enumerate(files):
        try:
            image = decode_image(pb.Image(encoded=data), limits.image)
        except InvalidArgument as exc:  # v1 names image.encoded: name the tensor element
            reason = exc.violations[0].description if exc.violations else exc.message
            raise InvalidArgument.for_field(f"{IMAGE_ENCODED}[{b}]", reason) from None
        out.append(tuple(image))
    return out


def _roi_rows(rois: Tensor | None, alignment: Tensor | None, images: int,
              limits: RequestLimits) -> tuple[list[list[Rect]] | None, tuple[int, ...]]:
    """ROIS (and ALIGNMENT) -> rectangles in image coordinates, one list for every image or
    one per image; None: the whole image. And the outputs' leading dimensions."""
    if rois is None:
        if alignment is not None:
            raise InvalidArgument.for_field(ALIGNMENT, f"needs {ROIS}: one alignment row per ROI")
        return None, (images,)
    values = _rows(rois, ROIS, ROI_COLUMNS, images)
    per_image = values.ndim == 3
    lead = tuple(values.shape[:2]) if per_image else (images * len(values),)
    values = values if per_image else values[np.newaxis]
    if values.shape[1] * images > limits.max_rois:
        raise InvalidArgument.for_field(
            ROIS, f"has {values.shape[1]} ROIs x {images} images; at most {limits.max_rois} are allowed")
    aligns = None
    if alignment is not None:
        aligns = _rows(alignment, ALIGNMENT, ALIGNMENT_COLUMNS, images)
        aligns = aligns if aligns.ndim == 3 else aligns[np.newaxis]
        if aligns.shape[:2] != values.shape[:2]:
            raise InvalidArgument.for_field(ALIGNMENT, f"shape {list(alignment.shape)} does not match {ROIS} "
                                                       f"{list(rois.shape)}: one alignment per ROI")
    out = []
    for b, block in enumerate(values.tolist()):
        rects = []
        for i, (x, y, width, height, angle) in enumerate(block):
            name = _row_name(ROIS, b if per_image else None, i)
            for what, value in (("width", width), ("height", height)):
                if not value > 0:
                    raise InvalidArgument.for_field(name, f"{what} {value} must be > 0")
            rect = Rect(x, y, width, height, angle)
            if aligns is not None:
                ax, ay, a_angle, scale = aligns[b, i].tolist()
                if scale < 0:
                    raise InvalidArgument.for_field(_row_name(ALIGNMENT, b if per_image else None, i),
                                                    f"scale {scale} must be >= 0 (0 means 1)")
                rect = Alignment(ax, ay, a_angle, scale or 1.0).apply(rect)
            rects.append(rect)
        out.append(rects)
    return out, lead


def _rows(t: Tensor, name: str, names: tuple[str, ...], images: int) -> np.ndarray:
    """A finite FP32/FP64 [N, columns] or [B, N, columns] tensor (B: the images) as float64."""
    columns = len(names)
    if t.datatype not in ("FP32", "FP64"):
        raise InvalidArgument.for_field(name, f"datatype {t.datatype}: allowed FP32")
    shape = list(t.shape)
    if not (len(shape) in (2, 3) and shape[-1] == columns and (len(shape) == 2 or shape[0] == images)):
        raise InvalidArgument.for_field(
            name, f"shape {shape}: allowed [N, {columns}] or, for {images} image(s), [{images}, N, {columns}] "
            f"(columns {', '.join(names)})")
    values = t.data.astype(np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        *lead, j = bad[0].tolist()
        where = f"{name}[{', '.join(map(str, lead))}]"
        raise InvalidArgument.for_field(where, f"{names[j]} {values[tuple(bad[0])]} is not a finite number")
    return values


def _row_name(name: str, image: int | None, i: int) -> str:
    return f"{name}[{i}]" if image is None else f"{name}[{image}, {i}]"


def _check_overlap(name: str, rect: Rect, width: int, height: int, image: int | None) -> None:
    inside = 0.0 < rect.x < width and 0.0 < rect.y < height  # v1's fast path
    if not inside and not overlaps_image(rect, width, height):
        where = f" of image {image}" if image is not None else ""
        raise InvalidArgument.for_field(
            name, f"lies entirely outside the {width}x{height} image{where} (in image coordinates: "
            f"origin ({rect.x:g}, {rect.y:g}), angle {rect.angle:g}, size {rect.width:g}x{rect.height:g})")


def model_tensors(t: Tensor, model) -> np.ndarray:
    """The raw-tensor mode: the model's own input, [N, *item shape] of its dtype."""
    want = "FP16" if model.dtype == np.float16 else "FP32"
    item = list(model.item_shape)
    if t.datatype != want:
        raise InvalidArgument.for_field(t.name, f"datatype {t.datatype}: the model takes {want} [N, "
                                                f"{', '.join(map(str, item))}]")
    if len(t.shape) != 1 + len(item) or list(t.shape[1:]) != item:
        raise InvalidArgument.for_field(t.name, f"shape {list(t.shape)}: allowed [N, {', '.join(map(str, item))}]")
    if math.prod(t.shape) == 0:
        raise InvalidArgument.for_field(t.name, "holds no item (N = 0)")
    return t.data
