"""1 server process vs `--workers N`: throughput and server CPU per ROI (tiny CNN).

Load: one asyncio client process with C channels, each its own connection
(`grpc.use_local_subchannel_pool`), so the kernel spreads them over the
workers (SO_REUSEPORT balances connections, not calls), K unary calls in
flight per channel, closed loop. Server CPU: the parent and every child
process it has (/proc), over the measured window, per ROI answered.

    .venv/bin/python bench/workers.py [--workers 1,2] [--duration 5] [--repeats 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import grpc

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # run as a script: the helper modules sit beside it
    sys.path.insert(0, str(BENCH))

import _machine  # noqa: E402
import _servers  # noqa: E402
import tiny_model  # noqa: E402
from serving import bench_image  # noqa: E402

from roiclass.client import build_request  # noqa: E402
from roiclass.v1 import classifier_pb2_grpc  # noqa: E402

log = logging.getLogger("bench.workers")
MODEL = "tiny_cnn"


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of pid and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
        todo += children.get(p, [])
    return total


async def _load(port: int, channels: int, per_channel: int, warmup: float, duration: float, rois: int):
    image, roi_rows = bench_image(rois)
    req = build_request(image, [tuple(r) for r in roi_rows], model=MODEL, top_k=5)
    chans = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
             for _ in range(channels)]
    stubs = [classifier_pb2_grpc.ObjectClassifierStub(c) for c in chans]
    counted = {"on": False, "n": 0, "errors": 0}
    stop = asyncio.Event()

    async def caller(stub):
        while not stop.is_set():
            try:
                await stub.ClassifyObject(req, timeout=30)
                counted["n"] += counted["on"]
            except grpc.RpcError:
                counted["errors"] += 1

    tasks = [asyncio.create_task(caller(s)) for s in stubs for _ in range(per_channel)]
    await asyncio.sleep(warmup)
    counted["on"] = True
    return counted, stop, tasks, chans


async def measure(server, args) -> dict:
    counted, stop, tasks, chans = await _load(server.port, args.channels, args.per_channel, args.warmup,
                                              args.duration, args.rois_per_request)
    cpu0, client0, t0 = tree_cpu_seconds(server.pid), time.process_time(), time.perf_counter()
    await asyncio.sleep(args.duration)
    n, wall = counted["n"], time.perf_counter() - t0
    cpu, client = tree_cpu_seconds(server.pid) - cpu0, time.process_time() - client0
    stop.set()
    await asyncio.gather(*tasks)
    for c in chans:
        await c.close()
    rois = n * args.rois_per_request
    return {"rois_per_s": rois / wall, "server_cores": cpu / wall, "client_cores": client / wall,
            "server_cpu_us_per_roi": 1e6 * cpu / max(1, rois), "errors": counted["errors"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", default="1,2", help="comma list of --workers values")
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--per-channel", type=int, default=4, help="unary calls in flight per channel")
    p.add_argument("--rois-per-request", type=int, default=1)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=BENCH / "results" / "workers.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folder = tiny_model.write_model_folder(BENCH / ".cache" / MODEL)
    results = {"machine": _machine.describe(), "settings": {**vars(args), "out": str(args.out)}, "points": {}}
    for workers in [int(w) for w in args.workers.split(",")]:
        server = _servers.start_roiclass(folder, MODEL, ["--workers", str(workers)], label=f"workers{workers}")
        try:
            time.sleep(2.0)  # every worker loaded (health answered for one of them)
            reps = [asyncio.run(measure(server, args)) for _ in range(args.repeats)]
        finally:
            server.stop(timeout=30)
        point = {k: round(statistics.median(r[k] for r in reps), 2) for k in reps[0]}
        results["points"][str(workers)] = point
        log.info("--workers %d: %s", workers, point)
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print("workers  ROIs/s  server cores  server CPU us/ROI  client cores  errors")
    for w, pt in results["points"].items():
        print(f"{w:>7}  {pt['rois_per_s']:6.0f}  {pt['server_cores']:12.2f}  {pt['server_cpu_us_per_roi']:17.0f}  "
              f"{pt['client_cores']:12.2f}  {pt['errors']:6.0f}")
    print(f"wrote {out.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
