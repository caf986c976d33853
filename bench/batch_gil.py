"""One kernel call per batch vs one per request, while another thread runs Python.

    .venv/bin/python bench/batch_gil.py           # ~20 s

The engine fills a batch of N one-ROI requests either with N preprocess_rois
calls (one GIL release and re-acquisition each) or with one preprocess_batch
call (one). Alone both cost the same; when another thread is running Python
(the server's event loop under load), every re-acquisition may wait for that
thread to give the GIL up (up to sys.getswitchinterval(), 5 ms). Medians of
--repeats fills of a 16-ROI batch (EfficientNet-Lite0's input, 3x224x224),
idle and beside a thread looping in Python; results/batch-gil.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import _machine  # noqa: E402
import serving  # noqa: E402

from roiclass.ext import preprocess_batch, preprocess_rois  # noqa: E402

OPTIONS = dict(layout="NCHW", resize="stretch", crop_fraction=1.0, border="constant", antialias=True,
               num_threads=1)
CHANNELS = dict(channel_map=(0, 1, 2), mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4), fill=0.0)


def spin(stop: threading.Event) -> None:
    """Python bytecode without pause, as an event loop busy with callbacks."""
    n = 0
    while not stop.is_set():
        n += 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rois", type=int, default=16, help="one-ROI requests per batch")
    p.add_argument("--repeats", type=int, default=31)
    p.add_argument("--out", default=str(serving.RESULTS / "batch-gil.json"))
    args = p.parse_args(argv)
    image, rois = serving.bench_image(1)
    images = [image.copy() for _ in range(args.rois)]  # each request brings its own pixels
    out = np.empty((args.rois, 3, 224, 224), np.float32)
    ch = CHANNELS

    def per_request() -> None:
        for k, img in enumerate(images):
            preprocess_rois(img, rois, out[k:k + 1], **ch, **OPTIONS)

    def per_batch() -> None:
        results = preprocess_batch([(img, rois, out[k:k + 1], ch["channel_map"], ch["mean"], ch["std"],
                                     ch["fill"]) for k, img in enumerate(images)], **OPTIONS)
        assert results == [None] * len(images)

    def median_ms(fill) -> float:
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fill()
            times.append(time.perf_counter() - t)
        return round(1e3 * float(np.median(times)), 3)

    reference = out.copy()
    per_request()
    reference[...] = out
    per_batch()
    assert np.array_equal(out, reference), "the two fills differ"
    result: dict = {"machine": _machine.describe(), "rois": args.rois, "repeats": args.repeats,
                    "switch_interval_s": sys.getswitchinterval()}
    # Interleaved: the two fills alternate inside each condition.
    for condition in ("idle", "python_thread_busy"):
        stop = threading.Event()
        busy = threading.Thread(target=spin, args=(stop,), daemon=True)
        if condition != "idle":
            busy.start()
        try:
            a, b = [], []
            for _ in range(3):
                a.append(median_ms(per_request))
                b.append(median_ms(per_batch))
        finally:
            stop.set()
            if busy.is_alive():
                busy.join()
        result[condition] = {"per_request_calls_ms": float(np.median(a)), "one_batch_call_ms": float(np.median(b)),
                             "ratio": round(float(np.median(a)) / float(np.median(b)), 2)}
        print(f"{condition}: {args.rois} preprocess_rois calls {np.median(a):.2f} ms, one preprocess_batch "
              f"{np.median(b):.2f} ms ({result[condition]['ratio']:.1f}x)")
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
