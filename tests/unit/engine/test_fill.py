"""fill_batch: the chunks of many requests packed into one batch tensor with one
kernel call; a failing chunk fails its request only and leaves no gap."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.data import camera

from roiclass.ext import preprocess_rois
from roiclass.server import errors
from roiclass.server.engine import channels
from roiclass.server.engine.batcher import Chunk, Job
from roiclass.server.engine.fill import RoiPayload, TensorPayload, fill_batch
from tests.unit.engine.conftest import SIZE, make_spec, rois_grid

OPTIONS = dict(layout="NCHW", resize="stretch", crop_fraction=1.0, border="constant", antialias=True,
               num_threads=1)


def roi_job(spec, image, fmt, rois) -> Job:
    payload = RoiPayload(image, channels.kernel_args(spec, fmt), np.ascontiguousarray(rois), 3)
    return Job(len(rois), payload, None, None)


def expected_rows(job: Job, start: int, n: int) -> np.ndarray:
    p = job.payload
    ka = p.kargs
    out = np.empty((n, 3, SIZE, SIZE), np.float32)
    preprocess_rois(p.image, p.rois[start:start + n], out, channel_map=ka.channel_map, mean=ka.mean,
                    std=ka.std, fill=ka.fill, **OPTIONS)
    return out


def failures():
    failed = {}

    def fail(job, exc):
        failed[id(job)] = exc
    return failed, fail


def test_chunks_of_many_requests_are_packed_in_order(tmp_path, chelsea):
    spec = make_spec(tmp_path / "unused.onnx")
    gray = camera()
    tensors = np.random.default_rng(0).normal(size=(4, 3, SIZE, SIZE)).astype(np.float32)
    tensor_job = Job(4, TensorPayload(tensors, 3), None, None)
    jobs = [roi_job(spec, chelsea, "RGB8", rois_grid(3, 1)), tensor_job,
            roi_job(spec, gray, "GRAY8", rois_grid(5, 2)), roi_job(spec, chelsea, "BGR8", rois_grid(2, 3))]
    # The third job's chunk is its items 1..3 (a request split across batches).
    chunks = [Chunk(jobs[0], 0, 3, 0.0), Chunk(jobs[1], 1, 2, 0.0), Chunk(jobs[2], 1, 3, 0.0),
              Chunk(jobs[3], 0, 2, 0.0)]
    dst = np.full((16, 3, SIZE, SIZE), np.nan, np.float32)
    failed, fail = failures()
    placed = fill_batch(dst, chunks, OPTIONS, fail)
    assert not failed
    assert [(c.job, row) for c, row in placed] == [(jobs[0], 0), (jobs[1], 3), (jobs[2], 5), (jobs[3], 8)]
    np.testing.assert_array_equal(dst[0:3], expected_rows(jobs[0], 0, 3))
    np.testing.assert_array_equal(dst[3:5], tensors[1:3])
    np.testing.assert_array_equal(dst[5:8], expected_rows(jobs[2], 1, 3))
    np.testing.assert_array_equal(dst[8:10], expected_rows(jobs[3], 0, 2))
    assert np.isnan(dst[10:]).all()  # nothing written past the batch


def test_failed_chunks_fail_their_request_and_leave_no_gap(tmp_path, chelsea):
    spec = make_spec(tmp_path / "unused.onnx")
    bad = rois_grid(2, 5)
    bad[1, 4] = np.inf
    poisoned = rois_grid(2, 6)
    poisoned[0, 0] = 123.5
    jobs = [roi_job(spec, chelsea, "RGB8", rois_grid(2, 4)), roi_job(spec, chelsea, "RGB8", bad),
            roi_job(spec, chelsea, "RGB8", poisoned), roi_job(spec, chelsea, "RGB8", rois_grid(3, 7))]
    chunks = [Chunk(job, 0, len(job.payload.rois), 0.0) for job in jobs]
    dst = np.full((16, 3, SIZE, SIZE), np.nan, np.float32)
    failed, fail = failures()
    placed = fill_batch(dst, chunks, OPTIONS, fail, poison=lambda roi: roi[0] == 123.5)
    assert [row for _, row in placed] == [0, -1, -1, 2]
    assert set(failed) == {id(jobs[1]), id(jobs[2])}
    assert isinstance(failed[id(jobs[1])], errors.InvalidArgument)
    assert "rois[0..1]" in str(failed[id(jobs[1])]) and "finite" in str(failed[id(jobs[1])])
    assert "rois[0]" in str(failed[id(jobs[2])]) and "poisoned" in str(failed[id(jobs[2])])
    # The last request moved up into the failed ones' rows.
    np.testing.assert_array_equal(dst[0:2], expected_rows(jobs[0], 0, 2))
    np.testing.assert_array_equal(dst[2:5], expected_rows(jobs[3], 0, 3))


@pytest.mark.parametrize("option", ["layout", "border"])
def test_a_bad_shared_option_fails_every_roi_chunk(tmp_path, chelsea, option):
    spec = make_spec(tmp_path / "unused.onnx")
    jobs = [roi_job(spec, chelsea, "RGB8", rois_grid(2, s)) for s in range(3)]
    failed, fail = failures()
    placed = fill_batch(np.zeros((8, 3, SIZE, SIZE), np.float32), [Chunk(j, 0, 2, 0.0) for j in jobs],
                        dict(OPTIONS, **{option: "bogus"}), fail)
    assert [row for _, row in placed] == [-1, -1, -1]
    assert all(isinstance(failed[id(j)], errors.InvalidArgument) for j in jobs)
