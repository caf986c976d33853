"""Classify ROIs of one image with the roiclass Python client.

    python examples/python/classify.py cat.png --roi 140,20,200,200 --roi 10,10,80,60,30
    python examples/python/classify.py            # skimage's chelsea, if scikit-image is installed

Start a server first: `roiclass serve` (or `make serve`).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from roiclass.client import Classifier, ClassifierError, Roi


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", help="image file (default: skimage.data.chelsea())")
    parser.add_argument("--roi", action="append", default=[], help="X,Y,W,H[,ANGLE]")
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()

    if args.image:
        image = args.image  # sent as an encoded file, decoded by the server
    else:
        from skimage import data

        image = data.chelsea()  # an RGB numpy array, sent as raw pixels
    rois = [Roi(*map(float, text.split(","))) for text in args.roi] or None

    with Classifier(args.server, timeout=30) as classifier:
        try:
            result = classifier.classify(image, rois=rois, top_k=args.top_k)
        except ClassifierError as error:
            print(f"error: {error.code.name}: {error.message}", file=sys.stderr)
            for violation in error.details:
                print(f"  {violation.field}: {violation.description}", file=sys.stderr)
            return 1

    print(f"model {result.model} v{result.model_version}, {result.timing.total_us / 1000:.1f} ms")
    for i, roi_result in enumerate(result.results):
        print(f"ROI {i}: {roi_result.class_name} ({roi_result.score:.3f})")
        for score in roi_result.confidences:
            print(f"    {score.index:4d} {score.name:<30} {score.confidence:.3f}")
    if isinstance(image, np.ndarray):
        print(f"(image: numpy array {image.shape} {image.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
