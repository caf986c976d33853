"""Where frames come from: a video file, an image sequence, a live source.

Every source yields DecodedFrames in frame order, numbered from 0 (frame N is
the N-th decoded frame; seeking.py keeps a file's ranges exact). A selector
says per frame whether to keep it (its pixels taken), report it as skipped
(no conversion, no file read for a sequence) or pass over it (sampling).

A kept frame of a file or a camera PyAV opens goes as it was decoded when the
decoder gives yuv420p (I420: half the bytes of RGB, no conversion here; the
server resamples the planes), shrunk by libswscale for max_side; as RGB8 when
it gives anything else or when asked (pixels="rgb").
"""
from __future__ import annotations

import glob
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from roiclass.v1 import classifier_pb2 as pb

from ..errors import InvalidInputError
from ..images import yuv_image
from .errors import SourceStoppedError, VideoSourceError
from .seeking import build_index, decode_range, frame_time

logger = logging.getLogger(__name__)

KEEP, SKIP = "keep", "skip"
# selector(index, time) -> KEEP, SKIP or None (not sampled: not reported either).
Selector = Callable[[int, float], "str | None"]

LIVE_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SEQUENCE_RATE = 30.0  # frames per second an image sequence is timed at, unless told
OPEN_TIMEOUT_S = 10.0  # opening a live source, and each read from it
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.5, 5.0
PIXELS = ("yuv", "rgb")  # how decoded frames travel: I420 where the decoder gives it, or RGB8


@dataclass(frozen=True, eq=False)
class DecodedFrame:
    """index: frame number from 0; time: seconds from frame 0; image: what
    the request sends (an I420 or RGB8 pb.Image; a CameraFrames array that is not
    RGB as it came), None when skipped; captured: time.monotonic() it was decoded."""

    index: int
    time: float
    image: Any
    captured: float


def is_live(source: Any) -> bool:
    """A camera URL or device, read as it comes (not seekable, may stop)."""
    text = str(source)
    return text.startswith(LIVE_PREFIXES) or text.startswith("/dev/")


def open_source(source: Any, *, max_side: int | None = None, reconnect: int = 3,
                rate: float | None = None, pixels: str = "yuv") -> "FileSource | SequenceSource | LiveSource":
    """The source for `source` (a path, folder, glob or URL, or a source
    object such as CameraFrames, returned as is); raises VideoSourceError.
    pixels: "yuv" (I420 where the decoder gives yuv420p) or "rgb"."""
    if pixels not in PIXELS:
        raise InvalidInputError("pixels", f"must be one of {', '.join(PIXELS)}, got {pixels!r}")
    if hasattr(source, "frames") and hasattr(source, "live"):
        return source
    text = os.fspath(source) if isinstance(source, os.PathLike) else source
    if not isinstance(text, str) or not text:
        raise VideoSourceError("source", repr(source), "must be a file, folder, glob or URL")
    if is_live(text):
        return LiveSource(text, max_side=max_side, reconnect=reconnect, pixels=pixels)
    if any(ch in text for ch in "*?[") or os.path.isdir(text):
        return SequenceSource(text, max_side=max_side, rate=rate)
    return FileSource(text, max_side=max_side, pixels=pixels)


def _av():
    try:
        import av
    except ImportError:  # the `video` extra
        raise VideoSourceError("source", "PyAV", "is not installed: pip install 'roiclass[video]'") from None
    return av


def _scaled(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(width, height) <= max_side:
        return width, height
    factor = max_side / max(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


def _image(frame: Any, max_side: int | None, pixels: str) -> pb.Image:
    """A decoded frame as the request's image: I420 when asked for and the
    decoder gives yuv420p at even sides (reformatted only to shrink it), else RGB8."""
    if pixels == "yuv" and frame.format.name == "yuv420p":
        width, height = _scaled(frame.width, frame.height, max_side)
        if width % 2 == 0 and height % 2 == 0:
            if (width, height) != (frame.width, frame.height):
                frame = frame.reformat(format="yuv420p", width=width, height=height)
            return _i420(frame)
    return _rgb(frame, max_side)


def _i420(frame: Any) -> pb.Image:
    """A yuv420p frame's planes in one buffer, copied once: as they are (row
    padding as row_stride) when the chroma rows are half the luma's apart,
    else packed by PyAV."""
    luma, u, v = frame.planes
    if u.line_size * 2 == luma.line_size == v.line_size * 2:
        return yuv_image(b"".join((luma, u, v)), frame.width, frame.height, "I420", luma.line_size)
    return yuv_image(frame.to_ndarray().tobytes(), frame.width, frame.height, "I420")


def _rgb(frame: Any, max_side: int | None) -> pb.Image:
    """A decoded frame as the request's RGB8 image: the converted frame's
    buffer copied once (its row padding sent as row_stride)."""
    width, height = _scaled(frame.width, frame.height, max_side)
    plane = frame.reformat(format="rgb24", width=width, height=height).planes[0]
    return raw_message(bytes(plane), width, height, plane.line_size)


def raw_message(pixels: bytes, width: int, height: int, row_stride: int = 0) -> pb.Image:
    """An RGB8 pb.Image built in place. A message handed to a constructor is
    merged field by field (upb: ~17 ms for a 1080p frame's 6 MB); assigning
    the bytes is ~1 ms, and the stream passes a pb.Image through as it is."""
    image = pb.Image()
    raw = image.raw
    raw.width, raw.height, raw.pixel_format, raw.row_stride = width, height, pb.RGB8, row_stride
    raw.pixels = pixels
    return image


def array_message(array: np.ndarray) -> Any:
    """An RGB uint8 (h, w, 3) array -> raw_message; anything else as it is
    (the client's own conversion, which knows every pixel format)."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        return array
    return raw_message(np.ascontiguousarray(array).tobytes(), array.shape[1], array.shape[0])


def _open_container(av: Any, path: str, **options: Any) -> tuple[Any, Any]:
    try:
        container = av.open(path, **options)
    except av.FFmpegError as error:
        raise VideoSourceError("source", path, f"cannot open: {_reason(error)}") from None
    if not container.streams.video:
        container.close()
        raise VideoSourceError("source", path, "has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame threads: decoding keeps up with 1080p
    return container, stream


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error)


class FileSource:
    """A video file PyAV opens (MP4, MKV, AVI, MOV, WebM, ...): exact ranges."""

    live = False

    def __init__(self, path: str, *, max_side: int | None = None, pixels: str = "yuv") -> None:
        self.name = path
        self.max_side, self.pixels = max_side, pixels
        self._av = _av()
        container, stream = _open_container(self._av, path)
        try:
            self._index = build_index(container, stream)
            self.rate = float(stream.average_rate) if stream.average_rate else None
            self.declared_frames = _declared_frames(container, stream, self.rate)
        except self._av.FFmpegError as error:
            raise VideoSourceError("source", path, f"cannot read its packets: {_reason(error)}") from None
        finally:
            container.close()
        if self._index.frame_count == 0:
            raise VideoSourceError("source", path, "has no frames")
        self.frame_count = self._index.frame_count
        self.decoded = 0  # frames decoded so far, those decoded only to reach a range's start included

    def frames(self, start: int, end: int, select: Selector) -> Iterator[DecodedFrame]:
        container, stream = _open_container(self._av, self.name)
        if stream.codec_context.codec.intra_only and self._index.exact:
            yield from self._intra_frames(container, stream, start, end, select)
            return
        origin, time_base = self._index.pts[0], stream.time_base
        last = start - 1
        try:
            for number, frame in decode_range(container, stream, self._index, start, end, self._tally):
                seconds = frame_time(frame.pts, origin, time_base)
                choice = select(number, seconds)
                if choice is not None:
                    image = _image(frame, self.max_side, self.pixels) if choice == KEEP else None
                    yield DecodedFrame(number, seconds, image, time.monotonic())
                last = number
        except (self._av.FFmpegError, ValueError) as error:
            raise VideoSourceError("source", self.name, f"cannot decode past frame {last}: {_reason(error)}") from None
        finally:
            container.close()

    def _intra_frames(self, container: Any, stream: Any, start: int, end: int,
                      select: Selector) -> Iterator[DecodedFrame]:
        """An intra-only codec (MJPEG, ...): each packet is a frame that decodes
        alone, so frames not sampled or skipped are not decoded at all."""
        stream.thread_type = "SLICE"  # no frame threads: a packet's frame comes out of its own decode
        numbers = {pts: i for i, pts in enumerate(self._index.pts)}
        origin, time_base, last = self._index.pts[0], stream.time_base, start - 1
        try:
            if start:
                container.seek(self._index.pts[start], stream=stream, backward=True, any_frame=True)
            for packet in container.demux(stream):
                number = numbers.get(packet.pts) if packet.size else None
                if number is None or number < start:
                    continue
                if number >= end:
                    return
                seconds = frame_time(packet.pts, origin, time_base)
                choice = select(number, seconds)
                if choice == SKIP:
                    yield DecodedFrame(number, seconds, None, time.monotonic())
                elif choice == KEEP:
                    for frame in packet.decode():
                        self._tally()
                        yield DecodedFrame(number, seconds, _image(frame, self.max_side, self.pixels),
                                           time.monotonic())
                last = number
        except (self._av.FFmpegError, ValueError) as error:
            raise VideoSourceError("source", self.name, f"cannot decode past frame {last}: {_reason(error)}") from None
        finally:
            container.close()

    def _tally(self) -> None:
        self.decoded += 1


def _declared_frames(container: Any, stream: Any, rate: float | None) -> int | None:
    """The frame count the container's header gives (MP4's sample table), or
    its duration x frame rate; None when it gives neither."""
    if stream.frames:
        return int(stream.frames)
    if container.duration and rate:
        return round(container.duration / 1_000_000 * rate)
    return None


class SequenceSource:
    """Image files of a folder or a glob, in natural order (frame2 before frame10)."""

    live = False

    def __init__(self, pattern: str, *, max_side: int | None = None, rate: float | None = None) -> None:
        self.name = pattern
        self.max_side = max_side
        self.rate = rate or SEQUENCE_RATE
        if os.path.isdir(pattern):
            paths = [p for p in Path(pattern).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        else:
            paths = [Path(p) for p in glob.glob(pattern) if os.path.isfile(p)]
        if not paths:
            raise VideoSourceError("source", pattern, f"holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        self.paths = sorted(paths, key=natural_key)
        self.frame_count = len(self.paths)
        self.decoded = 0

    def frames(self, start: int, end: int, select: Selector) -> Iterator[DecodedFrame]:
        from PIL import Image

        for number in range(start, min(end, self.frame_count)):
            seconds = number / self.rate
            choice = select(number, seconds)
            if choice is None:
                continue
            image = None
            if choice == KEEP:
                path = self.paths[number]
                try:
                    with Image.open(path) as picture:
                        picture = picture.convert("RGB")
                        picture = picture.resize(_scaled(*picture.size, self.max_side), Image.Resampling.BILINEAR)
                        image = array_message(np.asarray(picture))
                except (OSError, ValueError) as error:
                    raise VideoSourceError("source", path, f"cannot read the image: {error}") from None
                self.decoded += 1
            yield DecodedFrame(number, seconds, image, time.monotonic())


def natural_key(path: Path) -> list[Any]:
    """frame2.png < frame10.png: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class LiveSource:
    """A camera: RTSP/HTTP URL or V4L2 device through PyAV, re-opened with
    backoff when it stops, up to `reconnect` times in all. Times are seconds
    of wall clock since the first frame (a camera's own clock restarts on a
    re-open)."""

    live = True
    frame_count = None
    rate = None

    def __init__(self, url: str, *, max_side: int | None = None, reconnect: int = 3,
                 pixels: str = "yuv") -> None:
        self.name = url
        self.max_side, self.pixels = max_side, pixels
        self.reconnect = reconnect
        self.reconnects = 0
        self.decoded = 0
        self._av = _av()
        self._first = self._open()  # a source that cannot be opened fails now, not mid-run

    def _open(self) -> tuple[Any, Any]:
        options: dict[str, Any] = {"timeout": (OPEN_TIMEOUT_S, OPEN_TIMEOUT_S)}
        if self.name.startswith("/dev/"):
            options["format"] = "v4l2"
        return _open_container(self._av, self.name, **options)

    def frames(self, start: int, end: int, select: Selector) -> Iterator[DecodedFrame]:
        number, origin = 0, None
        opened, self._first = self._first, None
        while number < end:
            container, stream = opened or self._reopen()
            opened = None
            try:
                for frame in container.decode(stream):
                    self.decoded += 1
                    now = time.monotonic()
                    origin = now if origin is None else origin
                    if number >= start:
                        choice = select(number, now - origin)
                        if choice is not None:
                            image = _image(frame, self.max_side, self.pixels) if choice == KEEP else None
                            yield DecodedFrame(number, now - origin, image, now)
                    number += 1
                    if number >= end:
                        return
                reason = "end of stream"
            except self._av.FFmpegError as error:
                reason = _reason(error)
            finally:
                container.close()
            logger.warning("live source %s stopped (%s)", self.name, reason)
            self._last_reason = reason

    def _reopen(self) -> tuple[Any, Any]:
        while True:
            if self.reconnects >= self.reconnect:
                raise SourceStoppedError(self.name, self.reconnects, getattr(self, "_last_reason", "stopped"))
            time.sleep(min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** self.reconnects))
            self.reconnects += 1
            try:
                return self._open()
            except VideoSourceError as error:
                self._last_reason = error.message
                logger.warning("re-opening live source %s failed: %s", self.name, error.message)


class CameraFrames:
    """A live source made of any iterator of RGB uint8 arrays (an OpenCV
    VideoCapture loop, a GStreamer appsink, a frame grabber's SDK): what
    PyAV cannot open still gets the live pipeline (window, drop-oldest).
    Times are seconds of wall clock since the first frame."""

    live = True
    frame_count = None
    rate = None
    reconnects = 0

    def __init__(self, frames: Any, name: str = "camera", max_side: int | None = None) -> None:
        self.name, self.max_side = name, max_side
        self._frames = iter(frames)
        self.decoded = 0

    def frames(self, start: int, end: int, select: Selector) -> Iterator[DecodedFrame]:
        from PIL import Image

        origin = None
        for number, image in enumerate(self._frames):
            if number >= end:
                return
            self.decoded += 1
            now = time.monotonic()
            origin = now if origin is None else origin
            choice = select(number, now - origin) if number >= start else None
            if choice is None:
                continue
            if choice == KEEP and self.max_side:
                size = _scaled(image.shape[1], image.shape[0], self.max_side)
                image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
            yield DecodedFrame(number, now - origin, array_message(image) if choice == KEEP else None, now)
