"""perf_analyzer against roiclass's Open Inference Protocol (v2) endpoint,
beside the same load on roiclass's v1 API and on a Triton peer.

    .venv/bin/python bench/oip.py                # full run, ~10 min; bench/results/oip.json
    .venv/bin/python bench/oip.py --quick        # smoke run, ~1 min; bench/results/oip-quick.json
    .venv/bin/python bench/oip.py --readme bench/results/oip.json   # the README's results text

Systems (each point one run, all points interleaved, medians of --repeats):
  v2_image  perf_analyzer -m efficientnet_lite0 -i grpc, --input-data JSON:
            IMAGE (UINT8 [H, W, 3]) + ROIS (FP32 [N, 5]), the payload a v1 client sends;
  v2_raw    perf_analyzer on the raw-tensor mode (the model's own ONNX input, FP32 [N, 3, 224, 224]);
  v1        ClassifyObject with the same image and ROIs, top-5, from bench/_load.py's asyncio client;
  v2_bench  ModelInfer with the same image and ROIs, top-5 by the classification extension, from
            the same asyncio client (v2 vs v1 with one client, bench/oip_client.py);
  triton    perf_analyzer, the same JSON, against Triton Inference Server (nvidia-pytriton's
            tritonserver) running bench/triton_peer/model.py (cv2 per ROI + ONNX Runtime,
            dynamic batching on), see bench/oip_peer.py.
perf_analyzer and tritonserver come from bench/.perf-venv (bench/oip_env.py).
Per point: ROIs/s, latency p50/p99 (client side), server cores and CPU ms per
ROI (the server's process tree), the client's cores, and the cores that other
work on the machine took meanwhile (the noise of a shared machine).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from roiclass.inference import grpc_service_pb2_grpc as pb2_grpc

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # run as a script: the helper modules sit beside it
    sys.path.insert(0, str(BENCH))

import _clients  # noqa: E402
import _load  # noqa: E402
import _machine  # noqa: E402
import _servers  # noqa: E402
import oip_check  # noqa: E402
import oip_client  # noqa: E402
import oip_cpu  # noqa: E402
import oip_env  # noqa: E402
import oip_peer  # noqa: E402
import oip_perf  # noqa: E402
import oip_report  # noqa: E402
import serving  # noqa: E402

log = logging.getLogger("bench.oip")

ROOT = BENCH.parent
RESULTS = BENCH / "results"
MODEL_DIR = ROOT / "models" / "efficientnet_lite0"
LABELS = {"v2_image": "roiclass v2 IMAGE+ROIS (perf_analyzer)", "v2_raw": "roiclass v2 raw tensor (perf_analyzer)",
          "v1": "roiclass v1 ClassifyObject (bench asyncio client)",
          "v2_bench": "roiclass v2 ModelInfer top-5 (bench asyncio client)",
          "triton": "Triton peer IMAGE+ROIS (perf_analyzer)"}
RATIOS = (("v2_image", "v1"), ("v2_bench", "v1"), ("v2_raw", "v1"), ("v2_image", "triton"))


@dataclass(frozen=True)
class PerfTarget:
    """What perf_analyzer is pointed at for one system."""
    server: object  # _servers.ServerProcess
    model: str
    data: str  # --input-data: a JSON file or "random"
    rois_per_infer: int  # ROIs per perf_analyzer "inference" (a batch element)
    shapes: dict | None = None
    batch: int = 1


class Measure:
    """Runs one point of one system and turns it into an oip_report.record."""

    def __init__(self, args, spec, image, rois):
        self.args, self.spec, self.image, self.rois = args, spec, image, rois
        self.settings = oip_perf.PerfSettings(measurement_ms=args.measurement_ms,
                                              stability_percent=args.stability_percent, max_trials=args.max_trials)
        self.commands: dict[str, str] = {}

    def _timed(self, server, run):
        cpu0, (busy0, _), t0 = oip_cpu.tree_cpu_seconds(server.pid), oip_cpu.machine_busy_seconds(), time.perf_counter()
        out = run()
        wall = time.perf_counter() - t0
        return out, wall, oip_cpu.tree_cpu_seconds(server.pid) - cpu0, oip_cpu.machine_busy_seconds()[0] - busy0

    def perf(self, system: str, t: PerfTarget, c: int) -> dict:
        point, wall, server_cpu, busy = self._timed(t.server, lambda: oip_perf.run_point(
            t.model, t.server.port, c, t.data, self.settings, t.shapes, t.batch))
        self.commands.setdefault(system, "perf_analyzer " + point.command)
        lat = point.latency_ms
        return oip_report.record(rois_per_s=point.infer_per_s * t.rois_per_infer, p50_ms=lat.get("p50_ms"),
                                 p99_ms=lat.get("p99_ms"), wall_s=wall, server_cpu_s=server_cpu,
                                 client_cpu_s=point.client_cpu_s, busy_s=busy, error=point.error)

    def perf_range(self, t: PerfTarget, lo: int, hi: int, step: int) -> dict:
        """The literal `--concurrency-range lo:hi:step` run, once (no CPU reading per point)."""
        r = oip_perf.run(t.model, t.server.port, f"{lo}:{hi}:{step}", t.data,
                         dataclasses.replace(self.settings, timeout_s=60.0 + 30.0 * len(range(lo, hi + 1, step))),
                         t.shapes, t.batch)
        rows = [{"concurrency": p.concurrency, "rois_per_s": round(p.infer_per_s * t.rois_per_infer, 2),
                 "p50_ms": p.latency_ms.get("p50_ms"), "p99_ms": p.latency_ms.get("p99_ms")}
                for p in sorted(r.points, key=lambda p: p.concurrency)]
        return {"command": "perf_analyzer " + r.command, "rows": rows, **({"error": r.error} if r.error else {})}

    def bench_client(self, server, make_target, c: int) -> dict:
        """`c` unary calls in flight from bench/_load.py, to the target make_target() builds."""
        async def go() -> _load.Sample:
            target = make_target()
            try:
                return await _load.run_unary(target.unary, c, self.args.v1_duration, self.args.v1_warmup,
                                             len(self.rois))
            finally:
                await target.close()

        cpu0 = time.process_time()
        sample, wall, server_cpu, busy = self._timed(server, lambda: asyncio.run(go()))
        error = f"{sample.errors} calls failed: {sample.first_error}" if sample.errors else ""
        return oip_report.record(rois_per_s=sample.rois_per_s, p50_ms=sample.percentile_ms(50),
                                 p99_ms=sample.percentile_ms(99), wall_s=wall, server_cpu_s=server_cpu,
                                 client_cpu_s=time.process_time() - cpu0, busy_s=busy, error=error)


def roi_json_shape(config, n: int) -> list[int]:
    """ROIS's shape in perf_analyzer's JSON: checked against the config's dims
    (without the batch dimension), so dims [5] take one ROI per image only."""
    dims = next((list(i.dims) for i in config.input if i.name == "ROIS"), [-1, 5])
    if len(dims) == 1:
        if n != 1:
            raise SystemExit(f"the server's ModelConfig gives ROIS dims {dims}: perf_analyzer can send one ROI "
                             f"per image; run with --rois-per-request 1")
        return [5]
    return [n, 5]


def image_payload(path: Path, config, image, rois) -> str:
    """The v1 payload for perf_analyzer: IMAGE [H, W, 3] and ROIS, shaped for this server's config."""
    rois32 = np.ascontiguousarray(rois, np.float32)
    return str(oip_perf.write_input_json(path, {"IMAGE": image,
                                                "ROIS": rois32.reshape(roi_json_shape(config, len(rois)))}))


def raw_payload(args, tmp: Path, config, metadata, n: int) -> dict:
    """The raw-tensor mode: perf_analyzer's `random` (or random values in a JSON
    file) for the model's one input; with max_batch_size > 0 it prepends the
    batch (-b n) to the shape."""
    tensor = metadata.inputs[0]
    batched = config.max_batch_size > 0
    shape = [int(d) for d in (tensor.shape[1:] if batched else [n, *tensor.shape[1:]])]
    batch = n if batched else 1
    if args.raw_data == "random":
        return {"data": "random", "shapes": {tensor.name: shape}, "batch": batch, "input": tensor.name}
    values = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    return {"data": str(oip_perf.write_input_json(tmp / "raw.json", {tensor.name: values})), "shapes": None,
            "batch": batch, "input": tensor.name}


def start_servers(args, spec, results: dict) -> dict:
    servers = {"roiclass": _servers.start_roiclass(MODEL_DIR, spec.name, args.server_arg)}
    if "triton" in args.systems:
        try:
            servers["triton"] = oip_peer.start_triton(spec, len(args.rois_rows), args.triton_instances)
        except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
            # Recorded, not fatal: the roiclass side still runs.
            results["triton_error"] = str(exc)[-2000:]
            log.error("the Triton peer did not start: %s", exc)
    return servers


def agreement(servers: dict, spec, image, rois) -> dict:
    port = servers["roiclass"].port
    rois32 = np.ascontiguousarray(rois, np.float32)
    v1 = oip_check.v1_top(port, spec.name, image, rois)
    v2 = peer = None
    problems = {}
    try:
        v2 = oip_check.v2_probabilities(port, spec.name, {"IMAGE": image, "ROIS": rois32})
    except Exception as exc:  # noqa: BLE001 - recorded; the bench goes on without that side's check
        problems["v2_error"] = str(exc)[:500]
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
                oip_client.classify_request(spec.name, image, rois, _clients.TOP_K), timeout=60)
        problems["v2_classification_top1"] = oip_client.top1_of_classification(response)
    except Exception as exc:  # noqa: BLE001
        problems["v2_classification_error"] = str(exc)[:500]
    if "triton" in servers:
        try:
            peer = oip_check.v2_probabilities(servers["triton"].port, spec.name, {"IMAGE": image[None],
                                                                                  "ROIS": rois32[None]})
        except Exception as exc:  # noqa: BLE001
            problems["triton_error"] = str(exc)[:500]
    return {**oip_check.compare(v1, v2, peer), **problems}


def plan(args) -> list[int]:
    lo, hi, step = args.concurrency
    return list(range(lo, hi + 1, step))


def _v2_targets(args, spec, servers, image, rois, tmp: Path, results: dict) -> dict[str, PerfTarget]:
    """roiclass's v2 systems, set up from its ModelConfig/ModelMetadata (none if they do not answer)."""
    server, n = servers["roiclass"], len(rois)
    try:
        config, _ = oip_check.model_config(server.port, spec.name)
        raw_model = args.raw_model or f"{spec.name}.tensors"
        raw_config, raw_metadata = oip_check.model_config(server.port, raw_model)
    except grpc.RpcError as exc:  # an endpoint without ModelConfig: v1 and the peer still run
        results["roiclass_v2_error"] = f"{exc.code().name}: {exc.details()}"
        return {}
    results["roiclass_model_config"] = {
        "max_batch_size": config.max_batch_size,
        "inputs": {i.name: list(i.dims) for i in config.input},
        raw_model: {i.name: list(i.dims) for i in raw_config.input}}
    raw = raw_payload(args, tmp, raw_config, raw_metadata, n)
    # perf_analyzer counts a request of batch b as b inferences: one ROI each in raw mode.
    return {"v2_image": PerfTarget(server, spec.name, image_payload(tmp / "roiclass.json", config, image, rois), n),
            "v2_raw": PerfTarget(server, raw_model, raw["data"], n // raw["batch"], raw["shapes"], raw["batch"])}


def perf_targets(args, spec, servers, image, rois, tmp: Path, results: dict) -> dict[str, PerfTarget]:
    targets = _v2_targets(args, spec, servers, image, rois, tmp, results)
    if "triton" in servers:
        config, _ = oip_check.model_config(servers["triton"].port, spec.name)
        targets["triton"] = PerfTarget(servers["triton"], spec.name,
                                       image_payload(tmp / "triton.json", config, image, rois), len(rois))
    return targets


def measure(args, spec, servers, image, rois, tmp: Path, results: dict) -> dict:
    m = Measure(args, spec, image, rois)
    targets = perf_targets(args, spec, servers, image, rois, tmp, results)
    roiclass = servers["roiclass"]
    runs = {"v1": lambda c: m.bench_client(roiclass, lambda: _clients.RoiclassTarget(
                roiclass.port, spec.name, image, rois), c),
            "v2_bench": lambda c: m.bench_client(roiclass, lambda: oip_client.V2Target(
                roiclass.port, spec.name, image, rois), c)}
    runs.update({name: (lambda c, name=name: m.perf(name, targets[name], c)) for name in targets})
    systems = [s for s in args.systems if s in runs]
    records: dict = {s: {c: [] for c in plan(args)} for s in systems}
    for rep in range(args.repeats):
        # Odd repeats walk backwards, and the systems rotate: none always goes first.
        for c in plan(args) if rep % 2 == 0 else plan(args)[::-1]:
            order = systems[rep % len(systems):] + systems[:rep % len(systems)]
            for system in order:
                rec = runs[system](c)
                records[system][c].append(rec)
                _log_point(rep, system, c, rec)
                for server in servers.values():
                    server.check_alive()
    results["commands"] = m.commands
    if args.range_run:
        results["perf_analyzer_range"] = {s: m.perf_range(targets[s], *args.concurrency)
                                          for s in ("v2_image", "triton") if s in targets and s in systems}
    return {s: {str(c): oip_report.summarize(r) for c, r in by_c.items()} for s, by_c in records.items()}


def _log_point(rep: int, system: str, c: int, rec: dict) -> None:
    if "error" in rec:
        log.warning("rep %d %-8s c=%-2d %s", rep, system, c, rec["error"])
        return
    log.info("rep %d %-8s c=%-2d %.1f ROIs/s p50 %.1f ms p99 %.1f ms server %.2f cores %.2f ms/ROI, "
             "client %.2f cores, others %.2f cores", rep, system, c, rec["rois_per_s"], rec["p50_ms"],
             rec["p99_ms"], rec["server_cores"], rec["cpu_ms_per_roi"], rec["client_cores"], rec["other_cores"])


def describe_machine() -> dict:
    machine = _machine.describe()
    machine["perf_venv"] = oip_env.versions()  # perf_analyzer's and the Triton peer's
    machine["cpu_cores_online"] = os.cpu_count()
    machine["opencv"] = __import__("cv2").__version__
    machine["roiclass"] = importlib.metadata.version("roiclass")
    return machine


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", default="v2_image,v1,v2_bench,triton,v2_raw",
                   help=f"comma list of {', '.join(LABELS)}")
    p.add_argument("--concurrency", default="1:16:5", help="perf_analyzer's --concurrency-range START:END:STEP")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rois-per-request", type=int, default=4)
    p.add_argument("--measurement-ms", type=int, default=2000, help="perf_analyzer --measurement-interval")
    # A point is 3 windows, whatever they measure: on a shared 2-core machine other work moves windows
    # by more than perf_analyzer's default 10 %, and the interleaved repeats' medians do the settling.
    p.add_argument("--stability-percent", type=int, default=999, help="perf_analyzer --stability-percentage")
    p.add_argument("--max-trials", type=int, default=3, help="perf_analyzer --max-trials")
    p.add_argument("--v1-duration", type=float, default=6.0, help="measured seconds of a v1 point")
    p.add_argument("--v1-warmup", type=float, default=1.0)
    p.add_argument("--raw-data", choices=("json", "random"), default="random",
                   help="raw-tensor payload: perf_analyzer's `random`, or random values in a JSON file")
    p.add_argument("--raw-model", default="", help="model name of the raw-tensor mode (default: MODEL.tensors)")
    p.add_argument("--no-range-run", dest="range_run", action="store_false",
                   help="skip the closing perf_analyzer --concurrency-range START:END:STEP run on v2 and Triton")
    p.add_argument("--triton-instances", type=int, default=1,
                   help="the peer's model instances (ORT threads: cores / instances when > 1)")
    p.add_argument("--server-arg", action="append", default=[], help="extra roiclass server flag (repeatable)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--readme", type=Path, default=None, metavar="RESULTS",
                   help="print the README's results text for a results file, measure nothing")
    p.add_argument("--quick", action="store_true", help="1 repeat, concurrency 1 and 8, short windows")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.concurrency, args.measurement_ms, args.v1_duration = 1, "1:8:7", 1000, 2.0
        args.range_run = False
    try:
        lo, hi, step = (int(v) for v in args.concurrency.split(":"))
    except ValueError:
        lo = hi = step = 0
    if not (1 <= lo <= hi and step >= 1):
        p.error(f"--concurrency: START:END:STEP with 1 <= START <= END and STEP >= 1, got {args.concurrency!r}")
    args.concurrency = (lo, hi, step)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - set(LABELS)
    if unknown:
        p.error(f"--systems: unknown {', '.join(sorted(unknown))}; allowed: {', '.join(LABELS)}")
    if args.repeats < 1 or args.rois_per_request < 1:
        p.error("--repeats and --rois-per-request must be >= 1")
    args.out = args.out or RESULTS / ("oip-quick.json" if args.quick else "oip.json")
    return args


def _git(*argv: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True).stdout.strip()


def header(args, spec, image) -> dict:
    """What the results file says about the run before any figure."""
    return {"machine": describe_machine(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "commit": _git("log", "-1", "--format=%h %s"),
            # The server runs from this work tree: uncommitted server code is part of what ran.
            "uncommitted_server_files": _git("status", "--short", "--", "server", "protos").splitlines(),
            "settings": {k: v for k, v in vars(args).items() if k not in ("quick", "out", "rois_rows")},
            "noise": "a shared 2-core VM: other engineers' builds and tests ran during the points; other_cores "
                     "per point is what the rest of the machine took (busy CPU - server - client); compare "
                     "systems inside this run, not with other runs",
            "payload": {"image": list(image.shape), "rois": args.rois_rows, "model": spec.name},
            "systems": {s: LABELS[s] for s in args.systems},
            "load_average_start": [round(v, 2) for v in os.getloadavg()]}


def write_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = path.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(results, indent=1) + "\n")
    tmp_out.replace(path)  # never a half-written result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.readme:
        print(oip_report.readme_results(json.loads(args.readme.read_text()), LABELS))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    oip_env.ensure_venv()
    spec = serving.load_spec(MODEL_DIR)
    image, rois = serving.bench_image(args.rois_per_request)
    args.rois_rows = rois.tolist()
    results = header(args, spec, image)
    servers = start_servers(args, spec, results)
    if "triton" in servers:
        results["machine"]["tritonserver"] = oip_peer.server_version(servers["triton"])
    try:
        results["agreement"] = agreement(servers, spec, image, rois)
        with tempfile.TemporaryDirectory() as tmp:
            summary = measure(args, spec, servers, image, rois, Path(tmp), results)
    finally:
        for server in servers.values():
            server.stop()
    results.update(points=summary, load_average_end=[round(v, 2) for v in os.getloadavg()],
                   ratios={f"{a}/{b}": oip_report.ratios(summary, a, b) for a, b in RATIOS},
                   targets=oip_report.targets(summary), elapsed_s=round(time.monotonic() - started, 1))
    write_results(args.out, results)
    print(oip_report.table(summary, LABELS))
    print(oip_report.ratio_table(results["ratios"]))
    for t in results["targets"]:
        print(f"{'met   ' if t['met'] else 'MISSED'} {t['target']}: worst ratio {t['worst_ratio']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
