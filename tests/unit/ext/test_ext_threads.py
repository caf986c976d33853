"""Thread safety, OpenMP threads, GIL release and no per-call allocations."""
from __future__ import annotations

import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from skimage.data import chelsea

from roiclass.ext import HAVE_OPENMP, max_threads, preprocess_rois


def workload(seed):
    rng = np.random.default_rng(seed)
    x, y, angle = rng.uniform(-50, 400, 24), rng.uniform(-50, 250, 24), rng.uniform(0, 360, 24)
    rois = np.column_stack([x, y, rng.uniform(10, 400, 24), rng.uniform(10, 300, 24), angle])
    return rois


def run(img, rois, layout="NCHW", num_threads=1, dtype=np.float32):
    shape = (len(rois), 3, 64, 48) if layout == "NCHW" else (len(rois), 64, 48, 3)
    out = np.empty(shape, dtype)
    preprocess_rois(img, rois, out, layout=layout, mean=[120, 110, 100], std=[60, 50, 40],
                    resize="letterbox", num_threads=num_threads)
    return out


def test_eight_python_threads_give_identical_results():
    img = chelsea()
    jobs = [(workload(i % 4), ("NCHW", "NHWC")[i % 2], (np.float32, np.float16)[(i // 2) % 2]) for i in range(8)]
    expected = [run(img, rois, layout, 1, dtype) for rois, layout, dtype in jobs]
    barrier = threading.Barrier(8)

    def worker(i):
        rois, layout, dtype = jobs[i]
        barrier.wait()
        return [run(img, rois, layout, 1 + i % 3, dtype) for _ in range(5)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    for i, outs in enumerate(results):
        for o in outs:
            assert np.array_equal(o, expected[i])


def test_openmp_threads_match_one_thread():
    img = chelsea()
    for rois in (workload(7), workload(8)[:1]):
        one = run(img, rois, num_threads=1)
        assert np.array_equal(run(img, rois, num_threads=4), one)
        assert np.array_equal(run(img, rois, num_threads=0), one)
    # one large ROI: split into row bands across threads
    big = [[30.5, 20.25, 300, 250, 33]]
    outs = [np.empty((1, 3, 256, 256), np.float32) for _ in range(2)]
    preprocess_rois(img, big, outs[0], num_threads=1)
    preprocess_rois(img, big, outs[1], num_threads=4)
    assert np.array_equal(outs[0], outs[1])
    assert max_threads() >= 1 and (HAVE_OPENMP or max_threads() == 1)


def test_gil_is_released_during_the_kernel():
    img = np.zeros((2000, 2000, 3), np.uint8)
    rois = [[0, 0, 2000, 2000, 10]] * 4
    out = np.empty((4, 3, 512, 512), np.float32)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        n0 = len(ticks)
        preprocess_rois(img, rois, out, antialias=False)
        ran_meanwhile = len(ticks) - n0
    finally:
        done.set()
        t.join()
    assert ran_meanwhile >= 3


def test_no_allocation_grows_with_the_work():
    img = chelsea()
    small, large = workload(1)[:2], workload(1)
    outs = {len(small): np.empty((2, 3, 224, 224), np.float32), len(large): np.empty((24, 3, 224, 224), np.float32)}
    peaks = {}
    for rois in (small, large):
        preprocess_rois(img, rois, outs[len(rois)])  # warm caches
        tracemalloc.start()
        preprocess_rois(img, rois, outs[len(rois)])
        peaks[len(rois)] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # argument checks only: a few KiB, not proportional to ROIs or output size
    assert peaks[24] < 16384, peaks
    assert peaks[24] - peaks[2] < 4096, peaks
