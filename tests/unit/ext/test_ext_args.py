"""Bad arguments raise ValueError/TypeError naming the argument, before any work."""
from __future__ import annotations

import numpy as np
import pytest

from roiclass.ext import preprocess_rois, roi_affine, roi_content_box, warp_affine

IMG = np.zeros((20, 30, 3), np.uint8)
ROIS = [[1, 2, 10, 10, 3]]


def out(shape=(1, 3, 8, 8), dtype=np.float32):
    return np.full(shape, 42.0, dtype)


def strided(row_stride):
    return np.lib.stride_tricks.as_strided(np.zeros(1000, np.uint8), (10, 30, 3), (row_stride, 3, 1))


BAD = [
    ("image dtype", dict(image=IMG.astype(np.float64)), TypeError, "image.dtype must be uint8, uint16 or float32"),
    ("image big endian", dict(image=IMG.astype(">u2")), TypeError, "image.dtype"),
    ("image type", dict(image=[[1, 2]]), TypeError, "image must be a numpy.ndarray"),
    ("image channels", dict(image=np.zeros((4, 4, 17), np.uint8)), ValueError, "channels must be 1..16"),
    ("polygons count", dict(polygons=[None, None]), ValueError, "one entry .* per ROI"),
    ("polygon vertices", dict(polygons=[[(1, 1), (2, 2)]]), ValueError, "M >= 3"),
    ("polygon not finite", dict(polygons=[[(1, 1), (2, np.nan), (3, 1)]]), ValueError, "finite"),
    ("polygon type", dict(polygons=[3.5]), TypeError, "polygons\\[0\\]"),
    ("image ndim", dict(image=np.zeros((2, 4, 4, 3), np.uint8)), ValueError, "shape"),
    ("image empty", dict(image=np.zeros((0, 4, 3), np.uint8)), ValueError, "must not be empty"),
    ("row stride small", dict(image=strided(60)), ValueError, "row stride 60 is smaller than a row"),
    ("pixels strided", dict(image=IMG[:, ::2]), ValueError, "within a row must be contiguous"),
    ("flipped rows", dict(image=IMG[::-1]), ValueError, "row stride -90"),
    ("out dtype", dict(out=out(dtype=np.float64)), TypeError, "out.dtype must be float32 or float16"),
    ("out type", dict(out=[0.0]), TypeError, "out must be a numpy.ndarray"),
    ("out ndim", dict(out=np.zeros((1, 3, 8), np.float32)), ValueError, "out must be 4-D"),
    ("out non contiguous", dict(out=np.zeros((1, 3, 8, 16), np.float32)[..., ::2]), ValueError,
     "C-contiguous"),
    ("out read only", dict(out=np.broadcast_to(np.float32(0), (1, 3, 8, 8))), ValueError, "C-contiguous|writeable"),
    ("out too small", dict(out=out((0, 3, 8, 8))), ValueError, r"out.shape\[0\] must equal the number of ROIs \(1\)"),
    ("out empty plane", dict(out=out((1, 3, 0, 8))), ValueError, "height and width must be >= 1"),
    ("rois nan", dict(rois=[[1, np.nan, 5, 5, 0]]), ValueError, r"rois\[0\] must be finite"),
    ("rois inf", dict(rois=[[1, 2, 5, 5, 0], [np.inf, 0, 5, 5, 0]]), ValueError, r"rois\[1\] must be finite"),
    ("rois huge", dict(rois=[[1e12, 2, 5, 5, 0]]), ValueError, "must be within"),
    ("rois shape", dict(rois=[[1, 2, 3, 4]]), ValueError, r"rois must have shape \(N, 5\)"),
    ("rois zero width", dict(rois=[[1, 2, 0, 4, 3]]), ValueError, "width and height must be > 0"),
    ("rois text", dict(rois=[["a", 2, 4, 5, 3]]), TypeError, "rois must be an array-like of numbers"),
    ("layout", dict(layout="CHW"), ValueError, "layout must be one of 'NCHW', 'NHWC', got 'CHW'"),
    ("resize", dict(resize="fit"), ValueError, "resize must be one of 'stretch', 'letterbox', 'center_crop'"),
    ("border", dict(border="reflect"), ValueError, "border must be one of 'constant', 'replicate'"),
    ("crop", dict(resize="center_crop", crop_fraction=1.5), ValueError, r"crop_fraction must be in \(0, 1\]"),
    ("fill", dict(fill=float("nan")), ValueError, "fill must be a finite number"),
    ("cmap length", dict(channel_map=[0, 1]), ValueError, "channel_map must have one entry per output channel"),
    ("cmap range", dict(channel_map=[0, 1, 3]), ValueError, r"channel_map\[2\] must be a source channel 0..2"),
    ("cmap luma gray", dict(image=np.zeros((20, 30), np.uint8), channel_map=[-1, 0, 0]), ValueError, "luma needs 3 or 4"),
    ("cmap none", dict(out=out((1, 2, 8, 8))), ValueError, "channel_map is required to map 3 source channels to 2"),
    ("mean length", dict(mean=[1, 2]), ValueError, "mean must have one value per output channel"),
    ("std zero", dict(std=[1, 0, 1]), ValueError, r"std\[1\] must be finite and non-zero"),
    ("std nan", dict(std=[1, np.nan, 1]), ValueError, "std must be finite"),
    ("threads", dict(num_threads=-1), ValueError, "num_threads must be >= 0"),
]


@pytest.mark.parametrize("name,kwargs,exc,message", BAD, ids=[b[0] for b in BAD])
def test_bad_argument_raises_before_any_work(name, kwargs, exc, message):
    args = dict(image=IMG, rois=ROIS, out=out())
    args.update(kwargs)
    dest = args["out"]
    before = dest.copy() if isinstance(dest, np.ndarray) else None
    with pytest.raises(exc, match=message):
        preprocess_rois(args.pop("image"), args.pop("rois"), args.pop("out"), **args)
    if before is not None:
        assert np.array_equal(dest, before, equal_nan=True), "wrote before failing"


def test_roi_affine_and_warp_affine_check_their_arguments():
    with pytest.raises(ValueError, match="resize must be one of"):
        roi_affine([0, 0, 1, 1, 0], 4, 4, "zoom")
    with pytest.raises(ValueError, match=r"roi\[0\] must be finite"):
        roi_affine([0, np.nan, 1, 1, 0], 4, 4)
    with pytest.raises(ValueError, match="out_width and out_height must be >= 1"):
        roi_affine([0, 0, 1, 1, 0], 0, 4)
    with pytest.raises(ValueError, match=r"matrices must have shape \(N, 2, 3\)"):
        warp_affine(IMG, np.eye(3)[None], out())


@pytest.mark.parametrize("geometry", [roi_affine, roi_content_box])
def test_roi_geometry_helpers_check_crop_fraction_alike(geometry):
    with pytest.raises(ValueError, match=r"crop_fraction must be in \(0, 1\]"):
        geometry([0, 0, 10, 10, 0], 4, 4, "center_crop", 1.5)
    with pytest.raises(ValueError, match="resize must be one of"):
        geometry([0, 0, 1, 1, 0], 4, 4, "zoom")


def test_no_rois_is_a_no_op():
    dest = np.zeros((0, 3, 8, 8), np.float32)
    preprocess_rois(IMG, np.zeros((0, 5)), dest)
    assert dest.shape == (0, 3, 8, 8)


def test_far_outside_and_degenerate_rois_do_not_crash():
    dest = out((4, 3, 8, 8))
    rois = [[1e7, -1e7, 1e-3, 1e-3, 45], [-5e6, 5e6, 1e7, 1e7, 0], [0, 0, 1e7, 3, 1e6], [29.9, 19.9, 0.2, 0.2, 0]]
    preprocess_rois(IMG + 9, rois, dest, fill=3.0)
    assert np.all(dest[0] == 3.0)
    assert np.all(np.isfinite(dest))
    assert np.all((dest >= 3.0) & (dest <= 9.0))
