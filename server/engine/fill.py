"""What a job carries (ROIs of an image, or ready tensors) and filling an
instance's batch tensor from a batch of chunks (one kernel call)."""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from roiclass.ext import preprocess_batch
from roiclass.server import errors
from roiclass.server.engine import yuv
from roiclass.server.engine.batcher import Chunk, Job
from roiclass.server.engine.config import InferenceOutput

log = logging.getLogger(__name__)


class _Rows:
    """The (N, width) result rows a job's batches fill in, and its output: width is the
    classes, or the floats of a detector's per-image output (LoadedModel.row_width)."""
    __slots__ = ("probs",)

    def __init__(self, n: int, num_classes: int):
        self.probs = np.empty((n, num_classes), np.float32)

    def result(self, queue_s: float, pre_s: float, inf_s: float) -> InferenceOutput:
        return InferenceOutput(self.probs, int(queue_s * 1e6), int(pre_s * 1e6), int(inf_s * 1e6))


class RoiPayload(_Rows):
    """ROI rows of one image, the kernel arguments for its pixel format and,
    optionally, one polygon mask (None or a list of rings) per ROI."""
    __slots__ = ("image", "kargs", "rois", "polygons")
    tensors = None

    def __init__(self, image: np.ndarray, kargs, rois: np.ndarray, num_classes: int,
                 polygons: list | tuple | None = None):
        super().__init__(len(rois), num_classes)
        self.image, self.kargs, self.rois, self.polygons = image, kargs, rois, polygons


class TensorPayload(_Rows):
    """Items already in the model's input shape, copied into the batch as they are."""
    __slots__ = ("tensors",)

    def __init__(self, tensors: np.ndarray, num_classes: int):
        super().__init__(len(tensors), num_classes)
        self.tensors = tensors


def fill_batch(dst: np.ndarray, batch: list[Chunk], options: dict,
               fail: Callable[[Job, errors.RoiclassError], None],
               poison: Callable[[np.ndarray], bool] | None = None) -> list[tuple[Chunk, int]]:
    """Writes each chunk's rows into dst, packed from row 0, and returns
    (chunk, first row) per chunk, row -1 where the chunk failed: its request
    fails through `fail`, the batch goes on without it. Tensor chunks are
    copied; the ROI chunks of all requests go through one preprocess_batch call,
    i.e. one release of the GIL per batch instead of one per request (each
    return waits for the GIL while the event loop holds it). `options` are
    preprocess_batch's shared keyword options; `poison` is the fault
    injection test hook (an ROI row for which it is true fails its request).
    YUV 4:2:0 chunks (I420, NV12) go through yuv.fill_items: one more kernel
    call for all of them (their planes), then the conversion.
    """
    placed: list[tuple[Chunk, int]] = []
    items, item_of = [], []  # kernel items and the index in placed of each
    yuv_items, yuv_of = [], []  # YUV 4:2:0 images: their planes, then converted (yuv.py)
    off = 0
    for c in batch:
        job, n = c.job, c.count
        p = job.payload
        try:
            if p.tensors is not None:
                np.copyto(dst[off:off + n], p.tensors[c.start:c.start + n], casting="same_kind")
            else:
                rois = p.rois[c.start:c.start + n]
                if poison is not None:
                    _check_poison(rois, c.start, poison)
                ka = p.kargs
                masks = None if p.polygons is None else p.polygons[c.start:c.start + n]
                if isinstance(ka, yuv.YuvArgs):
                    yuv_items.append((p.image, rois, dst[off:off + n], ka, masks))
                    yuv_of.append(len(placed))
                else:
                    item = (p.image, rois, dst[off:off + n], ka.channel_map, ka.mean, ka.std, ka.fill)
                    if masks is not None:  # the chunk's masks, in the same kernel call
                        item += (masks,)
                    items.append(item)
                    item_of.append(len(placed))
        except Exception as exc:  # this request only; the batch goes on without it
            fail(job, item_error(exc, c))
            placed.append((c, -1))
            continue
        placed.append((c, off))
        off += n
    if not items and not yuv_items:
        return placed
    results = []
    for run, batch_items in ((preprocess_batch, items), (yuv.fill_items, yuv_items)):
        try:
            results += run(batch_items, **options) if batch_items else []
        except Exception as exc:  # a shared option: every ROI chunk of the batch fails
            results += [exc] * len(batch_items)
    failed = set()
    for k, exc in zip(item_of + yuv_of, results):
        if exc is not None:
            c = placed[k][0]
            fail(c.job, item_error(exc, c))
            failed.add(k)
    if not failed:
        return placed
    # Close the gaps: later rows move up so that the run sees one packed block.
    packed, off = [], 0
    for k, (c, row) in enumerate(placed):
        if row < 0 or k in failed:
            packed.append((c, -1))
            continue
        if row != off:
            dst[off:off + c.count] = dst[row:row + c.count]
        packed.append((c, off))
        off += c.count
    return packed


def _check_poison(rois: np.ndarray, start: int, poison: Callable[[np.ndarray], bool]) -> None:
    rows = rois[:, :5] if rois.ndim == 2 else rois  # ROI_COLUMNS order: no flags column (N, 6)
    for k, roi in enumerate(rows):
        if poison(roi):
            raise errors.InvalidArgument.for_field(f"rois[{start + k}]",
                                                   "poisoned item (fault injection)")


def item_error(exc: BaseException, c: Chunk) -> errors.RoiclassError:
    return preprocess_error(exc, c.start, c.count)


def preprocess_error(exc: BaseException, start: int, count: int) -> errors.RoiclassError:
    """The status of ROIs [start, start+count) failing the kernel: the kernel's
    argument checks are the caller's fault (INVALID_ARGUMENT), anything else ours."""
    if isinstance(exc, errors.RoiclassError):
        return exc
    where = f"rois[{start}]" if count == 1 else f"rois[{start}..{start + count - 1}]"
    if isinstance(exc, (ValueError, TypeError)):
        return errors.InvalidArgument.for_field(where, f"preprocessing failed: {exc}")
    log.error("preprocessing %s failed: %r", where, exc)
    return errors.Internal(f"{where}: preprocessing failed: {exc}")
