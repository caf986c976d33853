"""Classify a camera that PyAV cannot open, read through OpenCV's VideoCapture.

    python examples/camera/camera.py 0                          # /dev/video0 (V4L2), or a DirectShow index
    python examples/camera/camera.py "v4l2src ! videoconvert ! appsink" --gstreamer
    python examples/camera/camera.py clip.mp4 --roi 100,50,200,150 --max-frames 300

Frames go over one roiclass stream through roiclass.client.video's live
pipeline: at most --window frames in flight, and when the server falls
behind the oldest frame not yet sent is dropped, so each printed result is
at most about window / throughput behind the camera. Start a server first:
`roiclass serve`. Needs `pip install 'roiclass[video]' opencv-python-headless`.
"""
from __future__ import annotations

import argparse
import sys

import cv2

from roiclass.client import Classifier, ClassifierError, Roi
from roiclass.client.video import CameraFrames


def capture(source: str, gstreamer: bool) -> cv2.VideoCapture:
    if gstreamer:
        return cv2.VideoCapture(source, cv2.CAP_GSTREAMER)
    return cv2.VideoCapture(int(source) if source.isdigit() else source)


def rgb_frames(camera: cv2.VideoCapture, limit: int | None):
    """The camera's frames as RGB arrays until it stops (OpenCV reads BGR)."""
    count = 0
    while limit is None or count < limit:
        ok, bgr = camera.read()
        if not ok:
            return
        count += 1
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="device index, file or URL, or a GStreamer pipeline with --gstreamer")
    parser.add_argument("--gstreamer", action="store_true", help="SOURCE is a GStreamer pipeline ending in appsink")
    parser.add_argument("--roi", action="append", default=[], help="X,Y,W,H[,ANGLE] on every frame")
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--model", default="")
    parser.add_argument("--window", type=int, default=8, help="frames in flight (lag ~ window / throughput)")
    parser.add_argument("--max-side", type=int, help="shrink frames to at most this many pixels a side")
    parser.add_argument("--max-frames", type=int, help="stop after this many camera frames")
    args = parser.parse_args()

    camera = capture(args.source, args.gstreamer)
    if not camera.isOpened():
        print(f"error: cannot open camera {args.source!r}", file=sys.stderr)
        return 2
    rois = [Roi(*map(float, text.split(","))) for text in args.roi] or None
    frames = CameraFrames(rgb_frames(camera, args.max_frames), name=args.source, max_side=args.max_side)
    try:
        with Classifier(args.server) as classifier:
            run = classifier.classify_video(frames, rois=rois, window=args.window, model=args.model or None,
                                            top_k=1)
            for frame in run:
                if frame.ok:
                    best = " | ".join(f"{r.class_name} {r.score:.2f}" for r in frame.result.results)
                    print(f"frame {frame.index:6d}  {frame.time:8.2f}s  lag {frame.lag * 1000:5.0f} ms  {best}",
                          flush=True)
                else:
                    print(f"frame {frame.index:6d}  error: {frame.error.message}", flush=True)
    except ClassifierError as error:
        print(f"error: {error.code.name}: {error.message}", file=sys.stderr)
        return 1
    finally:
        camera.release()
    print(run.stats.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
