"""Occlusion parameters, occluded tensors and the drops -> relevance grid map."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from roiclass.server.domain import HeatmapRequest
from roiclass.server.errors import InvalidArgument
from roiclass.server.heatmap.occlusion import (
    MAX_OCCLUSIONS,
    cell_centers,
    occlude,
    positions,
    relevance_grids,
    resolve,
)
from roiclass.server.models.spec import HeatmapDefaults, ModelSpec

SPEC = ModelSpec("m", "1", Path("m.onnx"), ("a", "b"), input_width=224, input_height=224, channels=3)
UNSET = HeatmapRequest(None, None, None)


@pytest.mark.parametrize("length,patch,stride", [(224, 32, 16), (224, 56, 28), (30, 7, 3), (10, 10, 1), (9, 4, 4)])
def test_positions_hide_every_pixel_and_stay_inside(length, patch, stride):
    starts = positions(length, patch, stride)
    covered = np.zeros(length, int)
    for s in starts:
        covered[s:s + patch] += 1
    assert covered.min() >= 1 and starts[0] == 0 and starts[-1] == length - patch
    assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


def test_defaults_are_a_seventh_of_the_input_with_half_stride():
    p = resolve(SPEC, UNSET)
    assert (p.patch, p.stride, p.max_side) == (32, 16, 256)
    assert p.occlusions == 13 * 13


def test_model_defaults_then_request_options_win():
    spec = dataclasses.replace(SPEC, heatmap=HeatmapDefaults(patch_size=56, stride=0, max_side=64))
    p = resolve(spec, UNSET)
    assert (p.patch, p.stride, p.max_side, p.occlusions) == (56, 28, 64, 49)
    p = resolve(spec, HeatmapRequest(patch_size=40, stride=40, max_side=100))
    assert (p.patch, p.stride, p.max_side) == (40, 40, 100)
    assert p.xs == (0, 40, 80, 120, 160, 184)


@pytest.mark.parametrize(
    "options,field,words",
    [
        (HeatmapRequest(0, None, None), "heatmap_options.patch_size", "allowed: >= 1"),
        (HeatmapRequest(225, None, None), "heatmap_options.patch_size", "allowed: 1..224"),
        (HeatmapRequest(None, 0, None), "heatmap_options.stride", "allowed: >= 1"),
        (HeatmapRequest(16, 17, None), "heatmap_options.stride", "allowed: 1..16"),
        (HeatmapRequest(None, None, 0), "heatmap_options.max_side", "allowed: >= 1"),
        (HeatmapRequest(None, None, 5000), "heatmap_options.max_side", "allowed: 1..4096"),
        (HeatmapRequest(4, 1, None), "heatmap_options.stride", f"more than {MAX_OCCLUSIONS}"),
    ],
)
def test_bad_options_name_the_field_and_the_allowed_values(options, field, words):
    with pytest.raises(InvalidArgument) as info:
        resolve(SPEC, options)
    assert info.value.violations[0].field == field
    assert str(info.value).startswith(field) and words in str(info.value)


def test_a_model_default_that_does_not_fit_is_reported_as_such():
    spec = dataclasses.replace(SPEC, input_width=16, input_height=64, heatmap=HeatmapDefaults(patch_size=20))
    with pytest.raises(InvalidArgument, match=r"20 \(model default\) is larger than the model input 16x64"):
        resolve(spec, UNSET)


def test_normalized_fill_is_in_tensor_units_per_channel():
    spec = dataclasses.replace(SPEC, fill=0.0, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
    np.testing.assert_allclose(spec.normalized_fill, [-2.1179, -2.0357, -1.8044], atol=1e-4)
    gray = dataclasses.replace(SPEC, channels=1, fill=255.0, mean=(0.0, 30.0, 60.0), std=(255.0,))
    np.testing.assert_allclose(gray.normalized_fill, [(255.0 - 30.0) / 255.0])


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_occlude_paints_one_patch_per_copy_in_roi_major_order(layout):
    spec = dataclasses.replace(SPEC, input_width=12, input_height=8, layout=layout)
    params = resolve(spec, HeatmapRequest(4, 4, None))  # xs 0,4,8; ys 0,4
    shape = (2, 3, 8, 12) if layout == "NCHW" else (2, 8, 12, 3)
    base = np.random.default_rng(0).random(shape, dtype=np.float32)
    fill = np.array([-1.0, -2.0, -3.0])
    out = occlude(base, params, fill, layout, 0, 2 * params.occlusions)
    assert out.shape == (12,) + shape[1:]
    # Copy 1 * 6 + 5: ROI 1, patch at x=8, y=4.
    item = out[11] if layout == "NCHW" else out[11].transpose(2, 0, 1)
    ref = base[1] if layout == "NCHW" else base[1].transpose(2, 0, 1)
    np.testing.assert_array_equal(item[:, 4:8, 8:12], np.broadcast_to(fill[:, None, None], (3, 4, 4)))
    changed = item != ref
    assert changed.sum() == 3 * 16 and not changed[:, :4].any() and not changed[:, :, :8].any()
    np.testing.assert_array_equal(occlude(base, params, fill, layout, 5, 9), out[5:9])


def test_grid_is_the_mean_drop_of_the_patches_covering_each_cell():
    spec = dataclasses.replace(SPEC, input_width=56, input_height=56)
    params = resolve(spec, HeatmapRequest(28, 14, None))  # 3x3 positions, 4x4 cells
    drops = np.zeros((1, 3, 3))
    drops[0, 0, 0] = 1.0
    grid = relevance_grids(drops, params, 56, 56)[0]
    # Cell (0,0) is covered by patch (0,0) only; cell (1,1) by 4 patches.
    expected = np.zeros((4, 4))
    expected[:2, :2] = [[1.0, 0.5], [0.5, 0.25]]
    np.testing.assert_allclose(grid, expected)
    np.testing.assert_allclose(relevance_grids(np.full((2, 3, 3), 0.3), params, 56, 56), 0.3)


def test_grid_matches_a_pixel_by_pixel_reference_for_uneven_patches():
    w, h = 37, 23
    spec = dataclasses.replace(SPEC, input_width=w, input_height=h)
    params = resolve(spec, HeatmapRequest(9, 4, None))
    drops = np.random.default_rng(1).random((2, len(params.ys), len(params.xs)))
    got = relevance_grids(drops, params, w, h)
    s = params.stride
    for n in range(2):
        total, count = np.zeros((h, w)), np.zeros((h, w))
        for i, y in enumerate(params.ys):
            for j, x in enumerate(params.xs):
                total[y:y + 9, x:x + 9] += drops[n, i, j]
                count[y:y + 9, x:x + 9] += 1
        per_pixel = total / count
        ref = np.array([[per_pixel[r:r + s, c:c + s].mean() for c in range(0, w, s)] for r in range(0, h, s)])
        np.testing.assert_allclose(got[n], ref, rtol=1e-12)
    assert got.shape == (2, 6, 10)
    np.testing.assert_allclose(cell_centers(w, s)[-1], (36 + 37) / 2)
