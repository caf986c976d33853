"""Small builders of protobuf requests for the integration tests."""
from __future__ import annotations

import numpy as np

from roiclass.server import formats
from roiclass.v1 import classifier_pb2 as pb


def raw_image(array: np.ndarray, pixel_format: int | None = None, row_stride: int = 0) -> pb.Image:
    """pixel_format None: the registry's first format of the array's dtype and bands."""
    channels = 1 if array.ndim == 2 else array.shape[2]
    if pixel_format is None:
        pixel_format = next(f.proto for f in formats.FORMATS if f.dtype == array.dtype and f.channels == channels)
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
