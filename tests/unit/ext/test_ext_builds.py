"""The kernel ships two builds on x86-64 (x86-64-v2 and x86-64-v3, see
setup.py): roiclass.ext picks the one the CPU runs, and both compute the same
numbers up to float rounding (FMA contraction in the v3 build). The whole ext
suite also runs against the v2 build in `make test` (ROICLASS_EXT_SO)."""
from __future__ import annotations

import numpy as np
import pytest

import roiclass.ext as ext
from roiclass.ext import _preprocess as baseline


def v3_build():
    if not baseline.cpu_has_avx2_fma():
        pytest.skip("this CPU has no AVX2 + FMA: only the baseline build can run")
    return pytest.importorskip("roiclass.ext._preprocess_avx2", reason="x86-64-v3 build not built or blocked (ROICLASS_EXT_SO run)")


def test_the_package_uses_the_fastest_build_this_cpu_runs():
    try:
        import roiclass.ext._preprocess_avx2  # noqa: F401
        built = True
    except ImportError:
        built = False
    expected = "x86-64-v3" if built and baseline.cpu_has_avx2_fma() else baseline.build_isa()
    assert ext.KERNEL_ISA == expected
    assert ext.preprocess_rois.__module__ == ext._kernel.__name__


def random_case(rng, dtype, c):
    hi = 256 if dtype == np.uint8 else 65536
    h, w = int(rng.integers(40, 300)), int(rng.integers(40, 300))
    img = rng.integers(0, hi, (h, w, c)).astype(dtype)
    rois = []
    for _ in range(6):
        x, y, angle = rng.uniform(-20, w), rng.uniform(-20, h), rng.uniform(0, 360)
        rois.append([x, y, rng.uniform(4, 1.5 * w), rng.uniform(4, 1.5 * h), angle])
    return img, rois


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("antialias", [True, False])
def test_v3_and_baseline_builds_agree(dtype, c, layout, antialias):
    v3 = v3_build()
    rng = np.random.default_rng([c, antialias, dtype == np.uint8])
    img, rois = random_case(rng, dtype, c)
    shape = (len(rois), 3, 32, 48) if layout == "NCHW" else (len(rois), 32, 48, 3)
    outs = []
    for mod in (baseline, v3):
        out = np.full(shape, np.nan, np.float32)
        mod.preprocess_rois(img, rois, out, layout=layout, antialias=antialias,
                            channel_map=[0, 0, 0] if c == 1 else [2, 1, 0])
        outs.append(out)
    assert not np.isnan(outs[0]).any()
    scale = 255.0 if dtype == np.uint8 else 65535.0
    # FMA rounds the float32 chunk coordinates differently (~1e-5 px): a few
    # thousandths of a level on a full-range edge, far below one level
    np.testing.assert_allclose(outs[1], outs[0], rtol=0, atol=5e-3 * scale / 255.0)
