"""The per-ROI mirror flag: (N, 6) ROI rows, column 5 = flags, bit 0 =
mirror. A mirrored ROI's output is bit for bit np.flip of its unmirrored
output along the model input's width axis (NCHW: the last axis, NHWC: axis
-2), on every path of the kernel and in both builds."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.data import chelsea

from roiclass.ext import _preprocess as baseline
from roiclass.ext import HAVE_OPENMP, preprocess_batch

IMG = chelsea()  # (300, 451, 3) uint8


def builds():
    mods = [baseline]
    if baseline.cpu_has_avx2_fma():
        try:
            from roiclass.ext import _preprocess_avx2
            mods.append(_preprocess_avx2)
        except ImportError:  # not built, or blocked by ROICLASS_EXT_SO
            pass
    return mods


BUILDS = builds()
# One ROI per path: axis-aligned upscale (separable), axis-aligned shrink > 2x
# (area cells), rotated upscale (bilinear), rotated shrink (supersampling),
# partly outside the image (border), a 90-degree turn.
ROIS = np.array([
    [40.2, 30.7, 25.3, 19.9, 0.0],
    [10.0, 5.0, 300.0, 250.0, 0.0],
    [120.4, 60.2, 30.1, 21.7, 23.0],
    [200.0, 20.0, 220.0, 180.0, 31.5],
    [-20.3, 250.1, 90.4, 80.2, -12.0],
    [300.5, 40.5, 60.0, 45.0, 90.0],
])
OUT_HW = (21, 33)  # odd width: the middle column stays put


def as_mirrored(rois, flags):
    return np.concatenate([rois, np.asarray(flags, np.float64)[:, None]], axis=1)


def run(mod, img, rois, layout="NCHW", dtype=np.float32, **kw):
    h, w = OUT_HW
    shape = (len(rois), 3, h, w) if layout == "NCHW" else (len(rois), h, w, 3)
    out = np.full(shape, 1234.0, dtype)
    mod.preprocess_rois(img, rois, out, layout=layout, **kw)
    return out


def assert_mirrored(plain, mirrored, flags, layout):
    axis = -1 if layout == "NCHW" else -2
    bits = np.uint32 if plain.dtype == np.float32 else np.uint16
    for k, f in enumerate(flags):
        want = np.flip(plain[k], axis) if f else plain[k]
        # bit for bit (views as integers: -0.0 and 0.0 differ)
        assert np.array_equal(mirrored[k].view(bits), np.ascontiguousarray(want).view(bits)), k


FLAGS = [1, 0, 1, 1, 1, 1]


@pytest.mark.parametrize("mod", BUILDS, ids=lambda m: m.build_isa())
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center_crop"])
@pytest.mark.parametrize("border", ["constant", "replicate"])
def test_mirror_is_np_flip_of_the_unmirrored_output(mod, layout, resize, border):
    kw = dict(resize=resize, border=border, fill=17.0, crop_fraction=0.8, channel_map=[2, 0, 1],
              mean=[100.0, 110.0, 120.0], std=[50.0, 60.0, 70.0])
    plain = run(mod, IMG, ROIS, layout, **kw)
    mirrored = run(mod, IMG, as_mirrored(ROIS, FLAGS), layout, **kw)
    assert not np.array_equal(plain, mirrored)  # the flag did something
    assert_mirrored(plain, mirrored, FLAGS, layout)


@pytest.mark.parametrize("mod", BUILDS, ids=lambda m: m.build_isa())
@pytest.mark.parametrize("case", ["uint16", "float32", "bands7", "luma", "float16", "no_antialias"])
def test_mirror_on_every_source_type_and_output(mod, case):
    img, kw, dtype = IMG, {}, np.float32
    if case == "uint16":
        img = IMG.astype(np.uint16) * 257
    elif case == "float32":  # the generic kernel
        img = IMG.astype(np.float32) / 3.0
    elif case == "bands7":
        img = np.concatenate([IMG, IMG[..., ::-1], IMG[..., :1]], axis=2).copy()
        kw = dict(channel_map=[6, 3, 1])
    elif case == "luma":
        kw = dict(channel_map=[-1, -2, 0])
    elif case == "float16":
        dtype = np.float16
    else:
        kw = dict(antialias=False)
    for layout in ("NCHW", "NHWC"):
        plain = run(mod, img, ROIS, layout, dtype, **kw)
        mirrored = run(mod, img, as_mirrored(ROIS, FLAGS), layout, dtype, **kw)
        assert_mirrored(plain, mirrored, FLAGS, layout)


@pytest.mark.parametrize("mod", BUILDS, ids=lambda m: m.build_isa())
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_mirror_flips_the_polygon_mask_too(mod, layout):
    t = np.linspace(0, 2 * np.pi, 9, endpoint=False)
    # an off-centre wedge: its mask is not symmetric, so a flip shows
    ring = np.stack([150 + 70 * np.cos(t) ** 3, 100 + 60 * np.sin(t)], 1)
    wedge = np.array([[200.0, 20.0], [420.0, 60.0], [260.0, 190.0]])
    polygons = [ring, None, [ring], [wedge], None, [wedge]]
    kw = dict(fill=-5.0, polygons=polygons, resize="letterbox")
    plain = run(mod, IMG, ROIS, layout, **kw)
    mirrored = run(mod, IMG, as_mirrored(ROIS, FLAGS), layout, **kw)
    assert (plain == -5.0).any()
    assert_mirrored(plain, mirrored, FLAGS, layout)


@pytest.mark.skipif(not HAVE_OPENMP, reason="built without OpenMP (ROICLASS_NO_OPENMP=1)")
@pytest.mark.parametrize("mod", BUILDS, ids=lambda m: m.build_isa())
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center_crop"])
def test_mirror_with_openmp_row_bands_and_many_rois(mod, layout, resize):
    t = np.linspace(0, 2 * np.pi, 7, endpoint=False)
    ring = np.stack([150 + 90 * np.cos(t) ** 3, 100 + 70 * np.sin(t)], 1)
    big = np.tile(ROIS, (6, 1))
    flags = (np.arange(len(big)) % 3 == 0) | (np.arange(len(big)) == 0)
    # one ROI of 200 x 201 (40,200 pixels): 2 threads, each ROI split into row
    # bands; 36 ROIs of 64 x 65: whole ROIs per thread
    for rois, (h, w), nthreads in ((ROIS[:1], (200, 201), 2), (big, (64, 65), 2), (big, (64, 65), 0)):
        shape = (len(rois), 3, h, w) if layout == "NCHW" else (len(rois), h, w, 3)
        kw = dict(layout=layout, resize=resize, fill=-3.0, polygons=[ring] * len(rois))
        out1, out2 = np.zeros(shape, np.float32), np.full(shape, 7.0, np.float32)
        mod.preprocess_rois(IMG, rois, out1, num_threads=1, **kw)
        mod.preprocess_rois(IMG, as_mirrored(rois, flags[:len(rois)]), out2, num_threads=nthreads, **kw)
        assert_mirrored(out1, out2, flags[:len(rois)], layout)


def test_mirror_in_preprocess_batch_per_item():
    outs = [np.zeros((len(ROIS), 3, *OUT_HW), np.float32) for _ in range(3)]
    items = [(IMG, ROIS, outs[0], None, 0.0, 1.0, 0.0),
             (IMG, as_mirrored(ROIS, FLAGS), outs[1], None, 0.0, 1.0, 0.0),
             (IMG, as_mirrored(ROIS, [0] * len(ROIS)), outs[2], None, 0.0, 1.0, 0.0)]
    assert preprocess_batch(items, num_threads=2) == [None, None, None]
    assert_mirrored(outs[0], outs[1], FLAGS, "NCHW")
    assert np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize("mod", BUILDS, ids=lambda m: m.build_isa())
@pytest.mark.parametrize("bad", [2.0, 3.0, 0.5, -1.0, 1.0000001, 256.0])
def test_any_other_flag_is_a_value_error_naming_the_cell(mod, bad):
    rois = as_mirrored(ROIS[:3], [0, 1, 0])
    rois[2, 5] = bad
    out = np.full((3, 3, *OUT_HW), 9.0, np.float32)
    with pytest.raises(ValueError, match=r"rois\[2, 5\].*0 or 1"):
        mod.preprocess_rois(IMG, rois, out)
    assert (out == 9.0).all()  # checked before any work
    res = mod.preprocess_batch([(IMG, rois, out, None, 0.0, 1.0, 0.0)])
    assert isinstance(res[0], ValueError) and "rois[2, 5]" in str(res[0])
    assert (out == 9.0).all()


def test_seven_columns_are_refused_naming_the_shapes():
    out = np.zeros((1, 3, *OUT_HW), np.float32)
    with pytest.raises(ValueError, match=r"rois must have shape \(N, 5\) or \(N, 6\)"):
        baseline.preprocess_rois(IMG, np.zeros((1, 7)) + 5, out)


def test_mirror_from_several_python_threads_at_once():
    from concurrent.futures import ThreadPoolExecutor

    rows = [as_mirrored(np.roll(ROIS, k, axis=0), np.roll(FLAGS, k)) for k in range(8)]
    want = [run(baseline, IMG, r) for r in rows]
    with ThreadPoolExecutor(4) as pool:  # the kernel releases the GIL: these overlap
        got = list(pool.map(lambda r: run(baseline, IMG, r, num_threads=2), rows * 3))
    for k, out in enumerate(got):
        assert np.array_equal(out, want[k % 8])
    plain = run(baseline, IMG, ROIS)
    assert_mirrored(plain, want[0], FLAGS, "NCHW")
