"""YUV 4:2:0 images (I420, NV12) into the batch tensor: resample the planes,
then convert.

Converting YUV to RGB and normalizing are affine and resampling is linear, so
the kernel resamples the planes as they are (no full-size RGB frame): the Y
plane as a one-band image with the ROI rows, the chroma at half size with the
rows halved (a chroma sample sits at the centre of its 2x2 luma block, so its
continuous coordinate is exactly the luma's / 2), each into a small float
temporary in raw sample units (mean 0, std 1). Then per output sample
RGB = clip(M @ (Y - 16, U - 128, V - 128)) and the model's channel map, mean
and std into the batch. Samples outside the image, the letterbox padding and
polygon masks take the YUV of the model's fill grey, which converts back to
the fill. The clip (to 0..255, as a decoder's RGB is) comes after the
resampling: it differs from converting first only where out-of-gamut YUV is
mixed with in-gamut YUV in one sample.

Chroma is interpolated (bilinear or area, as the kernel samples), where
OpenCV's COLOR_YUV2RGB_I420 repeats each chroma sample over its 2x2 block;
within one luma pixel of the image's edge the chroma mixes with the fill's
(the kernel's border rule at half size).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roiclass.ext import LUMA_BGR, LUMA_RGB, preprocess_batch
from roiclass.server.engine import channels
from roiclass.server.formats import PixelFormat
from roiclass.server.geometry import roi_rows
from roiclass.server.models.spec import ModelSpec

# BT.601, limited range (the proto's I420 comment): the one copy of these constants.
KR, KB = 0.299, 0.114
KG = 1.0 - KR - KB
Y_OFFSET, Y_RANGE, C_OFFSET, C_RANGE = 16.0, 219.0, 128.0, 224.0
_CY, _CC = 255.0 / Y_RANGE, 255.0 / C_RANGE
# RGB (0..255) = YUV_TO_RGB @ (Y - 16, U - 128, V - 128)
YUV_TO_RGB = np.array([
    [_CY, 0.0, _CC * 2 * (1 - KR)],
    [_CY, -_CC * 2 * (1 - KB) * KB / KG, -_CC * 2 * (1 - KR) * KR / KG],
    [_CY, _CC * 2 * (1 - KB), 0.0],
])
YUV_OFFSET = np.array([Y_OFFSET, C_OFFSET, C_OFFSET])
# A model channel from the converted RGB: a band (R, G, B), or the luma the
# kernel's codes ask for (the bands here are in RGB order either way).
_LUMA = {LUMA_RGB: (KR, KG, KB), LUMA_BGR: (KR, KG, KB)}


@dataclass(frozen=True, eq=False)
class YuvArgs(channels.KernelArgs):
    """KernelArgs of the RGB the frame converts to, plus the conversion:
    out[k] = sum_j weights[k, j] * clip(rgb[j]) + bias[k]; plane_fill the
    (Y, chroma) of the fill grey; clip the RGB range."""
    fmt: PixelFormat = None
    weights: np.ndarray = None  # (model channels, 3): channel map / std
    bias: np.ndarray = None  # (model channels,): -mean / std
    plane_fill: tuple[float, float] = (Y_OFFSET, C_OFFSET)
    clip: tuple[float, float] = (0.0, 255.0)


def kernel_args(spec: ModelSpec, fmt: PixelFormat | str) -> YuvArgs:
    fmt = channels.pixel_format(fmt)
    ka = channels.kernel_args(spec, fmt)  # the model's map of the converted RGB (bands as RGB8)
    rows = [_LUMA[c] if c < 0 else tuple(float(c == j) for j in range(3)) for c in ka.channel_map]
    n = len(ka.channel_map)
    mean = np.broadcast_to(np.asarray(ka.mean, np.float64), (n,))
    std = np.broadcast_to(np.asarray(ka.std, np.float64), (n,))
    weights = np.asarray(rows, np.float64) / std[:, None]
    yuv_fill = np.linalg.solve(YUV_TO_RGB, np.full(3, ka.fill)) + YUV_OFFSET  # (f, f, f) back to YUV
    return YuvArgs(ka.channel_map, ka.mean, ka.std, ka.fill, fmt, weights, -mean / std,
                   (float(yuv_fill[0]), float(yuv_fill[1])), (min(0.0, ka.fill), max(255.0, ka.fill)))


def planes(image: np.ndarray, fmt: PixelFormat) -> tuple[np.ndarray, list[np.ndarray]]:
    """Views of an (H * 3 / 2, W) frame: Y (H, W) and the chroma: [U, V] of
    (H/2, W/2) (I420), or [UV] of (H/2, W/2, 2) (NV12)."""
    height, width = fmt.size_of(image.shape)
    chroma = image[height:]
    if fmt.chroma == "interleaved":
        return image[:height], [chroma.reshape(height // 2, width // 2, 2)]
    stacked = chroma.reshape(height, width // 2)  # U rows, then V rows (a copy if rows are padded)
    return image[:height], [stacked[:height // 2], stacked[height // 2:]]


def preprocess(image: np.ndarray, args: YuvArgs, rois: np.ndarray, out: np.ndarray, polygons,
               options: dict) -> None:
    """preprocess_rois for one YUV image (model.preprocess, the golden image)."""
    error = fill_items([(image, rois, out, args, polygons)], **options)[0]
    if error is not None:
        raise error


def fill_items(items: list, **options) -> list[BaseException | None]:
    """(image, rois, out, YuvArgs, polygons or None) per item -> None once
    `out` is written, else the item's error; one preprocess_batch call for
    every plane of every item. A bad shared option raises."""
    layout = options.get("layout", "NCHW")
    errors: list[BaseException | None] = [None] * len(items)
    kernel, spans, temps = [], [], []
    for i, (image, rois, out, args, polygons) in enumerate(items):
        try:
            plane_items, yuv = _plane_items(image, rois, out, args, polygons, layout)
        except (TypeError, ValueError) as exc:
            errors[i] = exc
            continue
        spans.append((i, len(kernel), len(plane_items)))
        kernel.extend(plane_items)
        temps.append(yuv)
    if not kernel:
        return errors
    results = preprocess_batch(kernel, **options)
    for (i, start, count), yuv in zip(spans, temps):
        failed = next((r for r in results[start:start + count] if r is not None), None)
        if failed is not None:
            errors[i] = failed
            continue
        _convert(items[i][3], yuv, items[i][2], layout)
    return errors


def _plane_items(image, rois, out, args: YuvArgs, polygons, layout: str):
    fmt = args.fmt
    if image.dtype != np.uint8 or fmt.size_of(image.shape) is None:
        raise ValueError(f"image must be a uint8 (height * 3 / 2, width) {fmt.name} array with an even "
                         f"height and width, got {image.dtype} {image.shape}")
    rois = roi_rows(rois)
    n = len(rois)
    if out.ndim != 4 or len(out) != n:
        raise ValueError(f"out must be (N, ...) with N = {n} ROIs, got {out.shape}")
    ho, wo = out.shape[2:4] if layout == "NCHW" else out.shape[1:3]
    one_band = (n, 1, ho, wo) if layout == "NCHW" else (n, ho, wo, 1)
    halved = rois.copy()
    halved[:, :4] *= 0.5
    masks = None if polygons is None else [_halved(p) for p in polygons]
    y_fill, c_fill = args.plane_fill
    temp = np.empty((3, n, ho, wo), np.float32)
    luma, chroma = planes(image, fmt)
    items = [_item(luma, rois, temp[0].reshape(one_band), (0,), y_fill, polygons)]
    if fmt.chroma == "interleaved":
        uv = np.empty((n, 2, ho, wo) if layout == "NCHW" else (n, ho, wo, 2), np.float32)
        items.append(_item(chroma[0], halved, uv, (0, 1), c_fill, masks))
        yuv = (temp[0], uv[:, 0], uv[:, 1]) if layout == "NCHW" else (temp[0], uv[..., 0], uv[..., 1])
    else:
        items += [_item(plane, halved, temp[k].reshape(one_band), (0,), c_fill, masks)
                  for k, plane in ((1, chroma[0]), (2, chroma[1]))]
        yuv = (temp[0], temp[1], temp[2])
    return items, yuv


def _item(plane, rois, out, channel_map, fill, polygons):
    item = (plane, rois, out, channel_map, 0.0, 1.0, fill)
    return item if polygons is None else item + (polygons,)


def _halved(polygon):
    """A polygon (an (M, 2) ring or a list of rings) in chroma coordinates;
    as it is when it is not numbers (the Y plane's item reports it)."""
    if polygon is None:
        return None
    try:
        if isinstance(polygon, np.ndarray) and polygon.ndim == 2:
            return np.asarray(polygon, np.float64) * 0.5
        rings = list(polygon)
        if rings and np.ndim(rings[0]) == 1:  # a list of (x, y) pairs: one ring
            return np.asarray(rings, np.float64) * 0.5
        return [np.asarray(r, np.float64) * 0.5 for r in rings]
    except (TypeError, ValueError):
        return polygon


def _convert(args: YuvArgs, yuv: tuple[np.ndarray, ...], out: np.ndarray, layout: str) -> None:
    """The resampled planes (each (N, Ho, Wo) raw samples) -> RGB -> the model's channels in `out`."""
    shape = yuv[0].shape
    rgb = np.empty((3,) + shape, np.float32)
    scratch = np.empty(shape, np.float32)
    bias = -(YUV_TO_RGB @ YUV_OFFSET)
    for i in range(3):
        _affine(YUV_TO_RGB[i], bias[i], yuv, rgb[i], scratch)
    np.clip(rgb, *args.clip, out=rgb)
    channel = np.empty(shape, np.float32)
    for k in range(len(args.weights)):
        _affine(args.weights[k], args.bias[k], rgb, channel, scratch)
        if layout == "NCHW":
            out[:, k] = channel
        else:
            out[..., k] = channel


def _affine(row: np.ndarray, offset: float, planes, dst: np.ndarray, scratch: np.ndarray) -> None:
    """dst = sum_j row[j] * planes[j] + offset, skipping zero weights."""
    terms = [(float(c), p) for c, p in zip(row, planes) if c != 0.0]
    if not terms:
        dst.fill(offset)
        return
    (c0, p0), rest = terms[0], terms[1:]
    np.multiply(p0, np.float32(c0), out=dst)
    for c, p in rest:
        np.multiply(p, np.float32(c), out=scratch)
        dst += scratch
    dst += np.float32(offset)
