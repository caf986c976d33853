"""Real video files for the video tests, written with PyAV.

H.264 (libx264) where the wheel has the encoder, else MPEG-4 Part 2.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import av
import numpy as np
from PIL import Image

CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"
RATE = 30
WIDTH, HEIGHT = 320, 240


def write_video(path: Path, frames: Iterable[np.ndarray], *, gop: int | None = None, rate: int = RATE,
                codec: str = CODEC) -> Path:
    """RGB uint8 frames (all one size, even sides) -> a video file; gop: keyframe interval."""
    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"  # MJPEG: full-range YUV
        if gop is not None:
            stream.codec_context.gop_size = gop
            if codec == "libx264":  # keyframes exactly every `gop` frames, not only at scene cuts
                stream.codec_context.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        for array in (first, *frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def moving(image: np.ndarray, index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """`image` resized to height x (width + 30), a width-wide window sliding 1 px a frame."""
    base = np.asarray(Image.fromarray(image).resize((width + 30, height), Image.Resampling.BILINEAR))
    x = index % 30
    return np.ascontiguousarray(base[:, x:x + width])


def cat_then_coffee(chelsea: np.ndarray, coffee: np.ndarray, n: int = 60) -> list[np.ndarray]:
    """The test clip's frames: 0..n/2-1 chelsea (a cat), then coffee (espresso), a little motion."""
    return [moving(chelsea if i < n // 2 else coffee, i) for i in range(n)]


def decode_all(path: Path, yuv: bool = False) -> list[np.ndarray]:
    """Every frame of the file, decoded from the start: the reference for
    seeking; RGB, or (yuv) the decoder's own planes, (h * 3 / 2, w)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return [frame.to_ndarray() if yuv else frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]


def pixels(image) -> np.ndarray:
    """A DecodedFrame's image (the request's pb.Image) -> an (h, w, 3) array
    (RGB8), or OpenCV's (h * 3 / 2, w) I420 array, the row padding dropped."""
    from roiclass.client.types import raw_to_array
    from roiclass.v1 import classifier_pb2 as pb

    raw = image.raw
    if raw.pixel_format != pb.I420:
        return raw_to_array(raw)
    w, h, stride = raw.width, raw.height, raw.row_stride or raw.width
    data = np.frombuffer(raw.pixels, np.uint8)
    luma = np.lib.stride_tricks.as_strided(data, (h, w), (stride, 1))
    chroma = np.lib.stride_tricks.as_strided(data[h * stride:], (h, w // 2), (stride // 2, 1))
    return np.concatenate([luma, chroma.reshape(h // 2, w)])
