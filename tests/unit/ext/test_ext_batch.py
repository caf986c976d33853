"""preprocess_batch: many images in one call, each item as preprocess_rois writes
it, a bad item rejected alone."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from skimage.data import camera, chelsea

from roiclass.ext import preprocess_batch, preprocess_rois

SHARED = dict(layout="NCHW", resize="letterbox", crop_fraction=0.9, border="replicate", antialias=True)
MEAN, STD = (120.0, 110.0, 100.0), (60.0, 50.0, 40.0)


def items_and_reference():
    """Items of three pixel formats, written into consecutive rows of one batch,
    and the same rows written by one preprocess_rois call per item."""
    rgb = chelsea()
    gray = camera()
    gray16 = (camera().astype(np.uint16) * 257)
    rng = np.random.default_rng(3)
    specs = [
        (rgb, None, MEAN, STD, 0.0),
        (gray, (0, 0, 0), (100.0,) * 3, (50.0,) * 3, 7.0),
        (rgb, (2, 1, 0), MEAN, STD, 255.0),
        (gray16, (0, 0, 0), (30000.0,) * 3, (9000.0,) * 3, 0.0),
        (rgb, (-1, -1, -1), MEAN, STD, 3.0),  # luma of RGB
    ]
    batch = np.full((sum(range(1, 6)), 3, 40, 56), -9.0, np.float32)
    reference = batch.copy()
    items, rows, off = [], [], 0
    for k, (image, cmap, mean, std, fill) in enumerate(specs):
        n = k + 1
        h, w = image.shape[:2]
        x, y, angle = rng.uniform(-20, w - 40, n), rng.uniform(-20, h - 40, n), rng.uniform(-180, 180, n)
        rois = np.column_stack([x, y, rng.uniform(8, 200, n), rng.uniform(8, 150, n), angle])
        items.append((image, rois, batch[off:off + n], cmap, mean, std, fill))
        preprocess_rois(image, rois, reference[off:off + n], channel_map=cmap, mean=mean, std=std, fill=fill,
                        **SHARED)
        rows.append((off, n))
        off += n
    return items, batch, reference, rows


def test_batch_equals_one_call_per_item():
    items, batch, reference, _ = items_and_reference()
    assert preprocess_batch(items, **SHARED) == [None] * len(items)
    assert np.array_equal(batch, reference)


def test_openmp_threads_match_one_thread():
    items, batch, reference, _ = items_and_reference()
    assert preprocess_batch(items, num_threads=2, **SHARED) == [None] * len(items)
    assert np.array_equal(batch, reference)


def test_a_bad_item_fails_alone_and_its_rows_stay_untouched():
    items, batch, reference, rows = items_and_reference()
    image, rois, out, cmap, mean, std, fill = items[1]
    bad_rois = rois.copy()
    bad_rois[0, 3] = np.nan
    items[1] = (image, bad_rois, out, cmap, mean, std, fill)
    items[3] = items[3][:2] + (items[3][2].astype(np.float64),) + items[3][3:]  # wrong out dtype
    image, rois, out, _, mean, std, fill = items[4]
    items[4] = (image, rois, out, (0, 1, 9), mean, std, fill)  # no source channel 9
    items.append(("not", "an", "item"))
    results = preprocess_batch(items, **SHARED)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError) and "finite" in str(results[1])
    assert isinstance(results[3], (TypeError, ValueError)) and "out" in str(results[3])
    assert isinstance(results[4], ValueError) and "channel_map" in str(results[4])
    assert isinstance(results[5], ValueError)  # cannot be unpacked into the 7 arguments
    for k, (off, n) in enumerate(rows):
        if k in (0, 2):
            assert np.array_equal(batch[off:off + n], reference[off:off + n])
        elif k != 3:  # item 3 wrote nothing: its out was a float64 copy
            assert np.all(batch[off:off + n] == -9.0)


@pytest.mark.parametrize("option, value, word", [
    ("layout", "NCWH", "layout"), ("resize", "zoom", "resize"), ("border", "wrap", "border"),
    ("crop_fraction", 0.0, "crop_fraction"), ("num_threads", -1, "num_threads"),
])
def test_a_bad_shared_option_raises_before_any_work(option, value, word):
    items, batch, _, _ = items_and_reference()
    options = dict(SHARED, **{option: value})
    with pytest.raises(ValueError, match=word):
        preprocess_batch(items, **options)
    assert np.all(batch == -9.0)


def test_no_items():
    assert preprocess_batch([], **SHARED) == []


def test_python_threads_give_identical_results():
    barrier = threading.Barrier(4)

    def worker(_):
        items, batch, reference, _ = items_and_reference()
        barrier.wait()
        for _ in range(5):
            batch[...] = -9.0
            assert preprocess_batch(items, **SHARED) == [None] * len(items)
            if not np.array_equal(batch, reference):
                return False
        return True

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(worker, range(4)))
