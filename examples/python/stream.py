"""Stream frames to roiclass over one RPC and print one line per frame.

    python examples/python/stream.py [--server HOST:PORT] [--frames 20]

The frames are crops of skimage's chelsea drifting across the image, made
lazily by a generator, as a camera would; frame 5 is deliberately broken to
show that a bad frame yields an error and the stream goes on.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Iterator

from roiclass.client import Classifier, ClassifierError, Frame, classifier_pb2 as pb


def frames(count: int) -> Iterator[Frame]:
    from skimage import data

    image = data.chelsea()
    for i in range(count):
        if i == 5:  # a raw image whose pixel buffer is too short
            broken = pb.Image(raw=pb.RawImage(width=64, height=64, pixel_format=pb.RGB8, pixels=b"oops"))
            yield Frame(broken, request_id=f"frame-{i}")
            continue
        x = 20 + 10 * (i % 12)
        yield Frame(image, rois=[(x, 20, 220, 220, 5.0 * (i % 7))], request_id=f"frame-{i}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--frames", type=int, default=20)
    args = parser.parse_args()

    started = time.perf_counter()
    with Classifier(args.server) as classifier:
        try:
            for item in classifier.stream(frames(args.frames), top_k=1):
                if item.error is not None:
                    print(f"{item.request_id}: error {item.error.code.name}: {item.error.message}")
                else:
                    best = item.result.results[0]
                    print(f"{item.request_id}: {best.class_name} ({best.score:.3f})")
        except ClassifierError as error:  # the whole stream failed (server gone, deadline...)
            print(f"error: {error.code.name}: {error.message}", file=sys.stderr)
            return 1
    elapsed = time.perf_counter() - started
    print(f"{args.frames} frames in {elapsed:.2f} s ({args.frames / elapsed:.1f} frames/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
