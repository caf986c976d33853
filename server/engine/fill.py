"""Filling an instance's batch tensor from a batch of chunks (one kernel call)."""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from roiclass.ext import preprocess_batch
from roiclass.server import errors
from roiclass.server.engine.batcher import Chunk, Job

log = logging.getLogger(__name__)


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
    """
    placed: list[tuple[Chunk, int]] = []
    items, item_of = [], []  # kernel items and the index in placed of each
    off = 0
    for c in batch:
        job, n = c.job, c.count
        try:
            if job.tensors is not None:
                np.copyto(dst[off:off + n], job.tensors[c.start:c.start + n], casting="same_kind")
            else:
                rois = job.rois[c.start:c.start + n]
                if poison is not None:
                    _check_poison(rois, c.start, poison)
                ka = job.kargs
                items.append((job.image, rois, dst[off:off + n], ka.channel_map, ka.mean, ka.std,
                              ka.fill))
                item_of.append(len(placed))
        except Exception as exc:  # this request only; the batch goes on without it
            fail(job, item_error(exc, c))
            placed.append((c, -1))
            continue
        placed.append((c, off))
        off += n
    if not items:
        return placed
    try:
        results = preprocess_batch(items, **options)
    except Exception as exc:  # a shared option: every ROI chunk of the batch fails
        results = [exc] * len(items)
    failed = set()
    for k, exc in zip(item_of, results):
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
    for k, roi in enumerate(rois):
        if poison(roi):
            raise errors.InvalidArgument.for_field(f"rois[{start + k}]",
                                                   "poisoned item (fault injection)")


def item_error(exc: BaseException, c: Chunk) -> errors.RoiclassError:
    if isinstance(exc, errors.RoiclassError):
        return exc
    where = f"rois[{c.start}]" if c.count == 1 else f"rois[{c.start}..{c.start + c.count - 1}]"
    if isinstance(exc, (ValueError, TypeError)):
        return errors.InvalidArgument.for_field(where, f"preprocessing failed: {exc}")
    log.error("preprocessing %s failed: %r", where, exc)
    return errors.Internal(f"{where}: preprocessing failed: {exc}")
