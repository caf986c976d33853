"""1 server process vs `--workers N`, and 1..R replicas behind the load-balanced
client: throughput and server CPU per ROI (tiny CNN).

Load: one asyncio client process with C channels, each its own connection
(`grpc.use_local_subchannel_pool`), so the kernel spreads them over the
workers (SO_REUSEPORT balances connections, not calls), K unary calls in
flight per channel, closed loop. Replicas: R single-process servers on their
own ports; each channel is the client's balanced channel over all R
(client/targets.py: round_robin, health checking, retries), so calls, not
connections, are spread. Server CPU: every server process and its children
(/proc), over the measured window, per ROI answered.

    .venv/bin/python bench/workers.py [--workers 1,2] [--replicas 1,2,3] [--duration 5] [--repeats 3]
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
from roiclass.client.targets import parse_targets  # noqa: E402
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


async def _load(ports: list[int], channels: int, per_channel: int, warmup: float, rois: int):
    image, roi_rows = bench_image(rois)
    req = build_request(image, [tuple(r) for r in roi_rows], model=MODEL, top_k=5)
    target = parse_targets([f"127.0.0.1:{p}" for p in ports])  # one port: a plain channel
    options = [*target.options, ("grpc.use_local_subchannel_pool", 1)]
    chans = [grpc.aio.insecure_channel(target.uri, options=options) for _ in range(channels)]
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


def _cpu(servers) -> float:
    return sum(tree_cpu_seconds(s.pid) for s in servers)


async def measure(servers, args) -> dict:
    counted, stop, tasks, chans = await _load([s.port for s in servers], args.channels, args.per_channel,
                                              args.warmup, args.rois_per_request)
    cpu0, client0, t0 = _cpu(servers), time.process_time(), time.perf_counter()
    await asyncio.sleep(args.duration)
    n, wall = counted["n"], time.perf_counter() - t0
    cpu, client = _cpu(servers) - cpu0, time.process_time() - client0
    stop.set()
    await asyncio.gather(*tasks)
    for c in chans:
        await c.close()
    rois = n * args.rois_per_request
    return {"rois_per_s": rois / wall, "server_cores": cpu / wall, "client_cores": client / wall,
            "server_cpu_us_per_roi": 1e6 * cpu / max(1, rois), "errors": counted["errors"]}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", default="1,2", help="comma list of --workers values ('' = none)")
    p.add_argument("--replicas", default="1,2,3", help="comma list of replica counts behind the client ('' = none)")
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
    setups = [(f"workers={w}", 1, ["--workers", str(w)]) for w in _ints(args.workers)]
    setups += [(f"replicas={r}", r, []) for r in _ints(args.replicas)]
    # Every setup runs at once (idle servers cost no CPU) and the repeats are
    # interleaved: a slow minute of this shared machine hits all setups alike.
    fleets: dict[str, list] = {}
    try:
        for name, replicas, flags in setups:
            fleets[name] = [_servers.start_roiclass(folder, MODEL, flags, label=f"{name.replace('=', '')}-{i}")
                            for i in range(replicas)]
        time.sleep(2.0)  # every worker loaded (health answered for one of them)
        reps: dict[str, list[dict]] = {name: [] for name in fleets}
        for _ in range(args.repeats):
            for name, servers in fleets.items():
                reps[name].append(asyncio.run(measure(servers, args)))
    finally:
        for server in (s for servers in fleets.values() for s in servers):
            server.stop(timeout=30)
    for name, runs in reps.items():
        point = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
        results["points"][name] = point
        log.info("%s: %s", name, point)
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print("setup        ROIs/s  server cores  server CPU us/ROI  client cores  errors")
    for name, pt in results["points"].items():
        print(f"{name:<11}  {pt['rois_per_s']:6.0f}  {pt['server_cores']:12.2f}  {pt['server_cpu_us_per_roi']:17.0f}  "
              f"{pt['client_cores']:12.2f}  {pt['errors']:6.0f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
