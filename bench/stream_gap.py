"""Where EfficientNet-Lite0's streaming throughput goes: raw ORT -> engine -> gRPC.

    .venv/bin/python bench/stream_gap.py              # ~3 min
    .venv/bin/python bench/stream_gap.py --repeats 3 --seconds 2

Splits the gap between the raw ONNX Runtime ceiling and roiclass's one-stream
throughput into its parts, all measured in one run, repeats interleaved:

  raw          ORT in this process, best ROIs/s over batch sizes 1-8 and both
               session settings (bench/_raw.py; the serving bench's ceiling);
  engine       roiclass's Engine in this process, no gRPC: 32 one-ROI requests
               in flight on the bench image (batching, preprocessing, the
               engine's ORT settings, its measured batch cap), with the
               server's defaults and with each `--engine` variant (EngineConfig
               fields; by default `cpu_spinning=run` and two one-thread
               instances, `instances_per_device=2,cpu_threads=1`);
  grpc full    roiclass over loopback gRPC, one stream of 32 frames in flight,
               the serving bench's 406 KB image;
  grpc crop    the same with a 250x230 crop around the ROI (172 KB): if the
               transport of the image limited the stream, this would be faster.

For `grpc full` the server's CPU is split by thread (from /proc): its main
thread (asyncio event loop: gRPC receive/send, servicer), gRPC's C-core
threads, and the rest (the inference worker and ORT's intra-op threads).
Writes bench/results/stream-gap.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import _clients  # noqa: E402
import _load  # noqa: E402
import _machine  # noqa: E402
import _raw  # noqa: E402
import _servers  # noqa: E402
import serving  # noqa: E402

log = logging.getLogger("bench.stream_gap")
MODEL = "efficientnet_lite0"
IN_FLIGHT = 32


def crop_around_roi(image: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = int(rois[0, 0]), int(rois[0, 1])
    y0, x0 = max(0, y - 40), max(0, x - 40)
    small = np.ascontiguousarray(image[y0:y0 + 230, x0:x0 + 250])
    moved = rois.copy()
    moved[:, 0] -= x0
    moved[:, 1] -= y0
    return small, moved


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds by thread group: main (event loop), grpc (C-core), other."""
    out = {"main": 0.0, "grpc": 0.0, "other": 0.0}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:  # the thread ended
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rpartition(")")[2].split()
        group = "main" if int(tid) == pid else "grpc" if name.startswith(("event_engine", "grpc")) else "other"
        out[group] += (int(fields[11]) + int(fields[12])) / tick
    return out


class EngineLoad:
    """The engine in this process, `IN_FLIGHT` one-ROI requests kept in flight."""

    def __init__(self, spec, image: np.ndarray, rois: np.ndarray, **config):
        from roiclass.server.engine import Engine, EngineConfig

        self.engine = Engine(EngineConfig(devices="cpu", **config))
        self.engine.load(spec)
        self.model = self.engine.resolve(spec.name)
        # Fresh copies, as each request brings its own pixels.
        self.images = [image.copy() for _ in range(2 * IN_FLIGHT)]
        self.rois = rois

    def run(self, seconds: float, warmup: float = 0.5) -> float:
        slots = threading.Semaphore(IN_FLIGHT)
        done = [0]
        lock = threading.Lock()
        counting = [False]

        def finished(_future) -> None:
            with lock:
                if counting[0]:
                    done[0] += 1
            slots.release()

        i, start = 0, time.perf_counter()
        t0 = start + warmup
        end = t0 + seconds
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if now >= t0 and not counting[0]:
                with lock:
                    counting[0] = True
            slots.acquire()
            self.engine.classify(self.model, self.images[i % len(self.images)], "RGB8",
                                 self.rois).add_done_callback(finished)
            i += 1
        with lock:
            counting[0] = False
        for _ in range(IN_FLIGHT):
            slots.acquire()
        return done[0] / seconds


async def _stream(port: int, model: str, image: np.ndarray, rois: np.ndarray, seconds: float) -> float:
    target = _clients.RoiclassTarget(port, model, image, rois)
    try:
        sample = await _load.run_streams(target.open_stream, target.request, target.stream_error, 1,
                                         IN_FLIGHT, seconds, 0.5, len(rois))
    finally:
        await target.close()
    if sample.errors:
        raise RuntimeError(f"stream errors: {sample.first_error}")
    return sample.rois_per_s


def parse_variant(text: str) -> dict:
    """'cpu_spinning=run,cpu_batch_cap=4' -> EngineConfig keyword arguments."""
    out: dict = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"--engine {text!r}: expected key=value[,key=value]")
        out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=4.0, help="measured seconds per point and repeat")
    p.add_argument("--engine", action="append",
                   default=["cpu_spinning=run", "instances_per_device=2,cpu_threads=1"],
                   help="an engine variant: EngineConfig fields key=value[,key=value] (repeatable)")
    p.add_argument("--out", default=str(serving.RESULTS / "stream-gap.json"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folder = serving.model_folders([MODEL])[MODEL]
    spec = serving.load_spec(folder)
    image, rois = serving.bench_image(1)
    crop, crop_rois = crop_around_roi(image, rois)
    raw = _raw.RawBench(spec, max_batch=8)
    engines = {"engine": EngineLoad(spec, image, rois)}
    for text in dict.fromkeys(args.engine):
        engines[f"engine {text}"] = EngineLoad(spec, image, rois, **parse_variant(text))
    rates: dict[str, list[float]] = {name: [] for name in engines} | {"grpc_full": [], "grpc_crop": []}
    cpu: list[dict[str, float]] = []
    with _servers.start_roiclass(folder, spec.name, []) as server:
        for rep in range(args.repeats):
            raw.run_once(1.0)
            for name, engine in engines.items():
                rates[name].append(engine.run(args.seconds))
            before, t0 = thread_cpu(server.pid), time.perf_counter()
            rates["grpc_full"].append(asyncio.run(_stream(server.port, spec.name, image, rois, args.seconds)))
            wall = time.perf_counter() - t0
            after = thread_cpu(server.pid)
            cpu.append({k: (after[k] - before[k]) / wall for k in after})
            rates["grpc_crop"].append(asyncio.run(_stream(server.port, spec.name, crop, crop_rois, args.seconds)))
            log.info("repeat %d: %s; server cores by thread %s", rep + 1,
                     ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items()),
                     ", ".join(f"{k} {v:.2f}" for k, v in cpu[-1].items()))
    summary = raw.summary()
    ceiling = summary["ceiling_rois_per_s"]
    med = {k: round(float(np.median(v)), 1) for k, v in rates.items()}
    cores = {k: round(float(np.median([c[k] for c in cpu])), 3) for k in cpu[0]}
    full = med["grpc_full"]
    result = {
        "machine": _machine.describe(),
        "model": MODEL,
        "repeats": args.repeats,
        "seconds": args.seconds,
        "raw": summary | {"batch1_cdf_ms": None},
        "engine_batch_cap": {name: e.model.max_batch for name, e in engines.items()},
        "rois_per_s_median": med,
        "rois_per_s_repeats": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "ratio_to_ceiling": {k: round(v / ceiling, 3) for k, v in med.items()},
        "server_cores_by_thread_grpc_full": cores,
        "server_core_ms_per_roi_grpc_full": {k: round(1e3 * v / full, 3) for k, v in cores.items()},
        "crop_shape": list(crop.shape),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"raw ceiling {ceiling:.0f} ROIs/s (batch {summary['ceiling_batch']}, {summary['ceiling_config']}); "
          + ", ".join(f"{k} {v:.0f} ({v / ceiling:.2f})" for k, v in med.items()))
    print("server cores by thread (grpc full): " + ", ".join(
        f"{k} {v:.2f} ({1e3 * v / full:.2f} core-ms/ROI)" for k, v in cores.items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
