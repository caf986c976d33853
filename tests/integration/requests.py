"""Small builders of protobuf requests for the integration tests."""
from __future__ import annotations

import numpy as np

from roiclass.v1 import classifier_pb2 as pb

_FORMATS = {1: pb.GRAY8, 3: pb.RGB8, 4: pb.RGBA8}


def raw_image(array: np.ndarray, pixel_format: int | None = None, row_stride: int = 0) -> pb.Image:
    channels = 1 if array.ndim == 2 else array.shape[2]
    if pixel_format is None:
        pixel_format = pb.GRAY16 if array.dtype == np.uint16 else _FORMATS[channels]
    return pb.Image(raw=pb.RawImage(
        width=array.shape[1], height=array.shape[0], pixel_format=pixel_format,
        row_stride=row_stride, pixels=np.ascontiguousarray(array).tobytes(),
    ))


def roi(x, y, w, h, angle=0.0, roi_id="", alignment=None) -> pb.Roi:
    r = pb.Roi(rect=pb.Rectangle2D(origin=pb.Point2D(x=x, y=y), angle=angle, width=w, height=h), id=roi_id)
    if alignment is not None:
        ax, ay, aangle, scale = alignment
        r.alignment.CopyFrom(pb.CoordinateSystem2D(origin=pb.Point2D(x=ax, y=ay), angle=aangle, scale=scale))
    return r


def request(image: pb.Image, rois=(), **fields) -> pb.ClassifyObjectRequest:
    return pb.ClassifyObjectRequest(image=image, rois=list(rois), **fields)
