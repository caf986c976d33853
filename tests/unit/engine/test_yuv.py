"""YUV 4:2:0 frames (I420, NV12; server/engine/yuv.py): the planes resampled,
then converted, against OpenCV's conversion followed by the RGB8 path.

Tolerance: 1.5 levels of 0..255 (divided by the model's std in the tensor),
from three sources, each bounded for these frames: OpenCV rounds its RGB to
uint8 (0.5 level) and uses 3-decimal BT.601 constants (1.164, 1.596, ...;
under 0.1 level here); OpenCV repeats each chroma sample over its 2x2 block
where yuv.py interpolates it (the test's chroma moves under 0.5 level per
chroma sample: under 0.6 level of B after the 2.018 gain). The frames stay in
gamut (no clipping differs); clipping has its own test. Samples within
2 pixels (plus the footprint of a shrunk sample) of the image's edge are left
out of the comparison: there the chroma mixes with the fill's at half
resolution (yuv.py's docstring); samples further out must be the fill.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from roiclass.ext import preprocess_rois, roi_affine
from roiclass.server import errors, formats
from roiclass.server.engine import yuv
from tests.unit.engine.conftest import make_spec

H, W = 240, 320
TOLERANCE = 1.5  # levels of 0..255, see the module docstring


def i420_frame(seed: int = 0) -> np.ndarray:
    """OpenCV's (H * 3 / 2, W) I420 layout: luma with full detail in
    56..180, chroma smooth (128 +- 25) so that every pixel is in gamut."""
    rng = np.random.default_rng(seed)
    luma = rng.integers(56, 181, size=(H, W)).astype(np.uint8)
    luma[40:120, 60:200] = 170  # flat areas and edges, as in a picture
    ys, xs = np.mgrid[0:H // 2, 0:W // 2]
    u = 128 + 25 * np.sin(2 * np.pi * (xs / 330 + ys / 410 + rng.uniform()))
    v = 128 + 25 * np.cos(2 * np.pi * (xs / 370 - ys / 310 + rng.uniform()))
    chroma = np.concatenate([np.round(u), np.round(v)]).astype(np.uint8).reshape(H // 2, W)
    return np.concatenate([luma, chroma])


def to_nv12(i420: np.ndarray) -> np.ndarray:
    luma, (u, v) = i420[:H], yuv.planes(i420, formats.by_name("I420"))[1]
    return np.concatenate([luma, np.stack([u, v], axis=-1).reshape(H // 2, W)])


def random_rois(rng, n: int) -> np.ndarray:
    xy = rng.uniform(-30, [W - 40, H - 40], size=(n, 2))
    wh = rng.uniform(25, 220, size=(n, 2))
    return np.hstack([xy, wh, rng.uniform(-180, 180, size=(n, 1))])


def random_polygon(rng, roi) -> np.ndarray:
    """A star-shaped ring around the ROI's centre (image coordinates)."""
    x, y, w, h, angle = roi
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    cx, cy = x + c * w / 2 - s * h / 2, y + s * w / 2 + c * h / 2
    t = np.sort(rng.uniform(0, 2 * np.pi, 7))
    r = rng.uniform(0.2, 0.7, 7) * max(w, h)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def interior(rois, out_hw, resize: str) -> np.ndarray:
    """(N, Ho, Wo) True where a sample's source point is far from the image's edge."""
    ho, wo = out_hw
    v, u = np.mgrid[0:ho, 0:wo] + 0.5
    masks = []
    for roi in rois:
        a = roi_affine(roi, wo, ho, resize)
        sx, sy = a[0, 0] * u + a[0, 1] * v + a[0, 2], a[1, 0] * u + a[1, 1] * v + a[1, 2]
        margin = 2 + np.hypot(*a[:, 0]) + np.hypot(*a[:, 1])
        near = lambda p, size: (np.abs(p) < margin) | (np.abs(p - size) < margin)  # noqa: E731
        masks.append(~(near(sx, W) & (sy > -margin) & (sy < H + margin))
                     & ~(near(sy, H) & (sx > -margin) & (sx < W + margin)))
    return np.array(masks)


def both(tiny_onnx, image, name, rois, out_hw, layout, resize, polygons, channel_order="RGB"):
    spec = make_spec(tiny_onnx, mean=(120.0, 110.0, 100.0), std=(60.0, 55.0, 50.0), fill=90.0,
                     channel_order=channel_order, layout=layout, resize=resize)
    args = yuv.kernel_args(spec, name)
    options = dict(layout=layout, resize=resize, crop_fraction=1.0, border="constant", antialias=True,
                   num_threads=1)
    shape = (len(rois), 3) + out_hw if layout == "NCHW" else (len(rois),) + out_hw + (3,)
    got, want = np.empty(shape, np.float32), np.empty(shape, np.float32)
    yuv.preprocess(image, args, rois, got, polygons, options)
    code = cv2.COLOR_YUV2RGB_I420 if name == "I420" else cv2.COLOR_YUV2RGB_NV12
    rgb = cv2.cvtColor(image, code)
    preprocess_rois(rgb, rois, want, channel_map=args.channel_map, mean=args.mean, std=args.std,
                    fill=args.fill, polygons=polygons, **options)
    if layout == "NHWC":
        got, want = got.transpose(0, 3, 1, 2), want.transpose(0, 3, 1, 2)
    return got, want, np.asarray(args.std)[:, None, None]


@pytest.mark.parametrize("name", ["I420", "NV12"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize("masked", [False, True])
def test_planes_resampled_then_converted_equal_opencv_then_the_rgb_path(tiny_onnx, name, layout, resize, masked):
    seed = ["I420", "NV12"].index(name) * 8 + ["NCHW", "NHWC"].index(layout) * 4 + masked * 2 + (resize == "letterbox")
    rng = np.random.default_rng(seed)
    frame = i420_frame(seed)
    image = frame if name == "I420" else to_nv12(frame)
    rois = random_rois(rng, 6)
    polygons = [random_polygon(rng, r) if k % 3 else None for k, r in enumerate(rois)] if masked else None
    out_hw = (40, 48)  # shrinks from 0.5x to 5x: bilinear, area and supersampled taps
    got, want, std = both(tiny_onnx, image, name, rois, out_hw, layout, resize, polygons)
    keep = np.broadcast_to(interior(rois, out_hw, resize)[:, None], got.shape)
    err = np.abs(got - want) * std  # in levels of 0..255
    assert keep.mean() > 0.6
    assert err[keep].max() <= TOLERANCE, f"max {err[keep].max():.3f} levels"
    # Far outside the image, in the letterbox's padding and outside the masks: exactly the fill.
    fill = (90.0 - np.array([120.0, 110.0, 100.0])[:, None, None]) / std
    is_fill = np.broadcast_to(np.isclose(want, fill, atol=1e-4).all(axis=1, keepdims=True), got.shape) & keep
    assert is_fill.any()  # ROIs partly outside, masks, letterbox bands
    assert np.allclose(got[is_fill], np.broadcast_to(fill, got.shape)[is_fill], atol=1e-4)


def test_grey_models_take_the_luma_of_the_converted_rgb(tiny_onnx):
    rng = np.random.default_rng(3)
    frame, rois = i420_frame(3), random_rois(rng, 3)
    spec = make_spec(tiny_onnx, channels=1, channel_order="GRAY", mean=(100.0,), std=(50.0,), fill=0.0)
    args = yuv.kernel_args(spec, "I420")
    got = np.empty((3, 1, 32, 32), np.float32)
    want = np.empty_like(got)
    options = dict(layout="NCHW", resize="stretch", antialias=True)
    yuv.preprocess(frame, args, rois, got, None, options)
    rgb = cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_I420)
    preprocess_rois(rgb, rois, want, channel_map=args.channel_map, mean=args.mean, std=args.std, **options)
    keep = np.broadcast_to(interior(rois, (32, 32), "stretch")[:, None], got.shape)
    assert (np.abs(got - want) * 50.0)[keep].max() <= TOLERANCE


def test_out_of_gamut_yuv_is_clipped_as_a_decoders_rgb(tiny_onnx):
    frame = np.empty((H * 3 // 2, W), np.uint8)
    frame[:H], frame[H:H + H // 4], frame[H + H // 4:] = 100, 60, 250  # R over 255, B under 0
    spec = make_spec(tiny_onnx, mean=(0.0,) * 3, std=(1.0,) * 3)
    args = yuv.kernel_args(spec, "I420")
    got = np.empty((1, 3, 8, 8), np.float32)
    yuv.preprocess(frame, args, np.array([[50.0, 50, 100, 80, 30]]), got, None, dict(layout="NCHW"))
    want = cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_I420)[100, 100].astype(np.float32)
    assert want.min() == 0 and want.max() == 255  # the point of the test: both ends clipped
    assert np.abs(got[0].reshape(3, -1) - want[:, None]).max() <= TOLERANCE


def test_the_engine_path_and_the_batch_give_the_rgb_frames_results(make_engine, tiny_onnx):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx, mean=(120.0,) * 3, std=(60.0,) * 3))
    model = eng.resolve("tiny")
    frame = i420_frame(5)
    rgb = cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_I420)
    rois = np.array([[20.0, 30, 200, 150, 10], [100, 40, 120, 160, -30]])
    tensors = eng.preprocess(model, frame, "I420", rois)
    assert np.abs(tensors - eng.preprocess(model, rgb, "RGB8", rois)).max() * 60 <= TOLERANCE
    got = eng.classify(model, frame, "I420", rois).result(timeout=10).probabilities
    nv12 = eng.classify(model, to_nv12(frame), "NV12", rois).result(timeout=10).probabilities
    want = eng.classify(model, rgb, "RGB8", rois).result(timeout=10).probabilities
    assert np.allclose(got, want, atol=2e-3) and np.allclose(nv12, want, atol=2e-3)


@pytest.mark.parametrize("shape", [(H, W), (H * 3 // 2, W - 1), (H * 3 // 2, W, 3)])
def test_arrays_that_are_not_a_yuv_frame_are_invalid_argument(make_engine, tiny_onnx, shape):
    eng = make_engine()
    eng.load(make_spec(tiny_onnx))
    model = eng.resolve("tiny")
    with pytest.raises(errors.InvalidArgument) as info:
        eng.preprocess(model, np.zeros(shape if shape != (H, W) else (H + 1, W), np.uint8), "I420",
                       np.array([[0.0, 0, 10, 10, 0]]))
    assert info.value.violations[0].field == "image.raw.pixel_format"
    assert "height * 3 / 2, width" in info.value.violations[0].description


def test_chroma_sits_at_the_centre_of_its_2x2_block(tiny_onnx):
    """Chroma ramps of 4 levels per chroma sample: linear chroma at every luma
    pixel centre is then a whole number, so OpenCV can give the exact
    reference: a frame twice the size with each luma sample repeated 2x2 and
    the chroma upsampled by cv2.resize (centre-aligned, linear), converted,
    every other pixel kept. A linear ramp survives any of the kernel's
    filters, so what is left is the reference's rounding and constants
    (0.6 level); chroma sited a quarter of a chroma sample off is 2 levels of
    U, 4 of B."""
    size = 48
    rng = np.random.default_rng(11)
    luma = rng.integers(110, 141, size=(size, size)).astype(np.uint8)
    ramp = (82 + 4 * np.arange(size // 2)).astype(np.uint8)
    u, v = np.tile(ramp, (size // 2, 1)), np.tile(ramp[:, None], (1, size // 2))
    frame = np.concatenate([luma, u.reshape(size // 4, size), v.reshape(size // 4, size)])
    big = np.concatenate([np.repeat(np.repeat(luma, 2, 0), 2, 1)]
                         + [np.round(cv2.resize(p.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR))
                            .astype(np.uint8).reshape(size // 2, 2 * size) for p in (u, v)])
    rgb = np.ascontiguousarray(cv2.cvtColor(big, cv2.COLOR_YUV2RGB_I420)[::2, ::2])
    spec = make_spec(tiny_onnx, mean=(0.0,) * 3, std=(1.0,) * 3)
    args = yuv.kernel_args(spec, "I420")
    rois = np.array([[6.0, 5, 30, 34, 0], [20, 4, 20, 20, 35], [6, 30, 24, 14, -50], [40, 6, 34, 30, 90]])  # inside
    for out_hw in ((16, 16), (40, 36)):
        got, want = np.empty((4, 3) + out_hw, np.float32), np.empty((4, 3) + out_hw, np.float32)
        options = dict(layout="NCHW", resize="stretch", antialias=True)
        yuv.preprocess(frame, args, rois, got, None, options)
        preprocess_rois(rgb, rois, want, channel_map=args.channel_map, **options)
        assert np.abs(got - want).max() <= 0.75


def test_a_batch_mixing_rgb_and_yuv_chunks_packs_them_and_fails_a_bad_one_alone(tiny_onnx):
    from roiclass.server.engine import channels
    from roiclass.server.engine.batcher import Chunk, Job
    from roiclass.server.engine.fill import RoiPayload, fill_batch

    spec = make_spec(tiny_onnx, mean=(120.0,) * 3, std=(60.0,) * 3)
    frame = i420_frame(9)
    rgb = cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_I420)
    options = dict(layout="NCHW", resize="stretch", crop_fraction=1.0, border="constant", antialias=True,
                   num_threads=1)
    rois = np.array([[20.0, 30, 150, 120, 10], [100, 40, 120, 160, -30]])
    bad = np.array([[20.0, 30, np.inf, 120, 0]])

    def job(image, name, rows):
        args = (yuv.kernel_args if name in ("I420", "NV12") else channels.kernel_args)(spec, name)
        return Job(len(rows), RoiPayload(image, args, rows, 3), None, None)

    jobs = [job(rgb, "RGB8", rois), job(frame, "I420", bad), job(frame, "I420", rois),
            job(to_nv12(frame), "NV12", rois)]
    dst = np.full((8, 3, 16, 16), np.nan, np.float32)
    failed = {}
    placed = fill_batch(dst, [Chunk(j, 0, len(j.payload.rois), 0.0) for j in jobs], options,
                        lambda j, exc: failed.setdefault(id(j), exc))
    assert list(failed) == [id(jobs[1])] and isinstance(failed[id(jobs[1])], errors.InvalidArgument)
    assert [row for _, row in placed] == [0, -1, 2, 4]
    for first in (2, 4):  # the YUV chunks, moved up over the failed one's rows: the RGB frame's tensor
        assert np.abs(dst[first:first + 2] - dst[0:2]).max() * 60 <= TOLERANCE
    assert np.isnan(dst[7:]).all()  # 7 rows were placed before the packing; row 6 is past the packed block
