"""The floor under any grpc.aio Python server on this payload: an ObjectClassifier
that answers a canned top-5 response without looking at the request (`--serve`),
measured with the same load as bench/serving.py, interleaved with roiclass
serving the tiny CNN. What the floor cannot do, no Python grpc.aio server
(roiclass, KServe) can.

    .venv/bin/python bench/grpc_floor.py            # ~1 min; writes results/serving-grpc-floor.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import _clients  # noqa: E402
import _load  # noqa: E402
import _servers  # noqa: E402
import serving  # noqa: E402

log = logging.getLogger("bench.grpc_floor")


async def serve() -> None:
    import grpc

    from roiclass.v1 import classifier_pb2 as pb
    from roiclass.v1 import classifier_pb2_grpc as pb_grpc

    result = pb.RoiResult(class_index=5, class_name="5", score=0.5, confidences=[
        pb.ClassConfidence(class_index=i, class_name=str(i), confidence=0.1) for i in range(5)])
    response = pb.ClassifyObjectResponse(model="tiny_cnn", model_version="1", results=[result])

    class Floor(pb_grpc.ObjectClassifierServicer):
        async def ClassifyObject(self, request, context):
            return response

    # The transport options roiclass uses (server/app.py), so the floor is its own.
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20),
                                      ("grpc.max_send_message_length", 64 << 20)])
    pb_grpc.add_ObjectClassifierServicer_to_server(Floor(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


def start_floor() -> _servers.ServerProcess:
    s = _servers.ServerProcess("grpc-floor", [sys.executable, str(Path(__file__).resolve()), "--serve"])
    deadline = time.monotonic() + 60
    while not s.port:
        s.check_alive()
        match = _servers._LISTENING.search(s.log_path.read_text())
        if match:
            s.port = int(match.group(1))
        elif time.monotonic() > deadline:
            s.stop()
            raise TimeoutError("grpc floor server did not start")
        else:
            time.sleep(0.1)
    return s


async def measure(servers: dict, model: str, concurrency: tuple[int, ...], repeats: int,
                  duration: float) -> dict:
    image, rois = serving.bench_image(1)
    targets = {n: _clients.RoiclassTarget(s.port, model, image, rois) for n, s in servers.items()}
    runs: dict = {}
    try:
        for rep in range(repeats):
            for c in concurrency:
                for name, target in targets.items():
                    cpu0, t0 = servers[name].cpu_seconds(), time.monotonic()
                    sample = await _load.run_unary(target.unary, c, duration, 0.5, 1)
                    cores = (servers[name].cpu_seconds() - cpu0) / (time.monotonic() - t0)
                    runs.setdefault(f"{name} unary x{c}", []).append(
                        (sample.rois_per_s, sample.percentile_ms(50), sample.percentile_ms(99), cores))
                    log.info("rep %d %s x%d: %.0f ROIs/s p50 %.2f ms", rep, name, c, sample.rois_per_s,
                             sample.percentile_ms(50))
    finally:
        for t in targets.values():
            await t.close()
    out = {}
    for key, values in runs.items():
        v = np.array(values)
        out[key] = {"rois_per_s": float(np.median(v[:, 0])), "p50_ms": float(np.median(v[:, 1])),
                    "p99_ms": float(np.median(v[:, 2])), "server_cores": float(np.median(v[:, 3])),
                    "rois_per_s_repeats": [round(float(x), 1) for x in v[:, 0]]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--serve", action="store_true", help="run the floor server (used by the bench itself)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0)
    args = p.parse_args(argv)
    if args.serve:
        asyncio.run(serve())
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folder = serving.model_folders(["tiny_cnn"])["tiny_cnn"]
    spec = serving.load_spec(folder)
    with start_floor() as floor, _servers.start_roiclass(folder, spec.name, []) as roiclass:
        result = asyncio.run(measure({"grpc_floor": floor, "roiclass": roiclass}, spec.name, (1, 16),
                                     args.repeats, args.duration))
    for key, r in result.items():
        print(f"{key:24s} {r['rois_per_s']:7.0f} ROIs/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
              f"server cores {r['server_cores']:.2f}  repeats {r['rois_per_s_repeats']}")
    path = serving.RESULTS / "serving-grpc-floor.json"
    path.write_text(json.dumps({"model": spec.name, "points": result}, indent=1) + "\n")
    print(f"wrote {path.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
