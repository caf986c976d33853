"""Serving benchmark: raw ONNX Runtime vs roiclass vs a KServe model server.

    .venv/bin/python bench/serving.py                 # full run, ~5 min
    .venv/bin/python bench/serving.py --quick         # smoke run, ~1 min

For each model (the built-in EfficientNet-Lite0 and a tiny CNN made here):
  1. raw ONNX Runtime in-process: ROIs/s per batch size (the best is the
     ceiling) and batch-1 latency; plus the preprocessing cost of one request;
  2. roiclass over loopback gRPC: unary at each concurrency, streams;
  3. KServe (bench/kserve_server.py) over v2 gRPC: unary at each concurrency;
  4. with --baseline-python PY, a second roiclass served by another
     interpreter (an earlier checkout's venv): the same points, interleaved,
     and the ratios of this checkout to it (a refactor must not be slower).
Servers run in their own processes; the load comes from one asyncio client
(bench/_load.py). Every point is measured `--repeats` times, the repeats of
all points interleaved so that drift of the noisy machine hits every system
alike; figures are medians over repeats. Writes bench/results/serving[-TAG].json
and the plots (bench/_report.py), and prints the targets as met / missed.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # run as a script: the helper modules sit beside it
    sys.path.insert(0, str(BENCH))

import _clients  # noqa: E402
import _load  # noqa: E402
import _machine  # noqa: E402
import _raw  # noqa: E402
import _report  # noqa: E402
import _servers  # noqa: E402
import kserve_env  # noqa: E402
import tiny_model  # noqa: E402

log = logging.getLogger("bench.serving")

ROOT = BENCH.parent
RESULTS = BENCH / "results"
PROFILES = BENCH / ".cache" / "profiles"
# A rotated ROI around the cat's head in skimage's chelsea (451 x 300 RGB):
# 170x150 at 10 degrees, a row in geometry.ROI_COLUMNS order (x, y, width,
# height, angle), which the kernel and the client's tuples both take.
ROI = (150.0, 20.0, 170.0, 150.0, 10.0)
UNARY_CONCURRENCY = (1, 4, 16, 64)
STREAMS = (1, 8)
# The points py-spy records with --profile: (model, system, mode, concurrency).
PROFILE_POINTS = {("efficientnet_lite0", "roiclass", "stream", 8), ("tiny_cnn", "roiclass", "unary", 16),
                  ("tiny_cnn", "roiclass", "unary", 1)}


@dataclass(frozen=True)
class Point:
    system: str  # "roiclass" | "baseline" | "kserve"
    mode: str  # "unary" | "stream"
    concurrency: int  # unary: calls in flight; stream: streams


def model_folders(names: list[str]) -> dict[str, Path]:
    folders = {}
    for name in names:
        if name == "efficientnet_lite0":
            folders[name] = ROOT / "models" / "efficientnet_lite0"
        elif name == "tiny_cnn":
            folders[name] = tiny_model.write_model_folder(BENCH / ".cache" / "tiny_cnn")
        else:
            raise SystemExit(f"--models: unknown model {name!r}; allowed: efficientnet_lite0, tiny_cnn")
    return folders


def load_spec(folder: Path):
    from roiclass.server.models.repository import load_model_dir

    loaded = load_model_dir(folder)
    spec = next((s for s in loaded if hasattr(s, "onnx_path")), None)
    if spec is None:
        raise SystemExit(f"{folder}: no loadable model: {loaded}")
    return spec


def kserve_spec(spec) -> dict:
    """What kserve_server.py needs to preprocess like the model's config says."""
    if spec.channel_order != "RGB" or spec.resize != "stretch":
        raise SystemExit(f"{spec.name}: the KServe side implements RGB + stretch only, "
                         f"got {spec.channel_order} + {spec.resize}")
    return {"onnx_path": str(Path(spec.onnx_path).resolve()), "width": spec.input_width,
            "height": spec.input_height, "layout": spec.layout, "mean": list(spec.mean[:3]),
            "std": list(spec.std[:3]), "softmax": spec.softmax, "top_k": _clients.TOP_K}


def bench_image(rois_per_request: int) -> tuple[np.ndarray, np.ndarray]:
    from skimage.data import chelsea

    image = np.ascontiguousarray(chelsea())
    # Extra ROIs step across the image so that they are not all the same.
    rois = np.array([(ROI[0] - 8 * i, ROI[1] + 4 * i, *ROI[2:]) for i in range(rois_per_request)], np.float64)
    return image, rois


class Profiler:
    """py-spy record on a server pid while one point runs (collapsed stacks)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.files: list[str] = []

    def start(self, pid: int, name: str, seconds: float):
        if not self.enabled:
            return None
        PROFILES.mkdir(parents=True, exist_ok=True)
        out = PROFILES / f"{name}.txt"
        pyspy = Path(sys.executable).with_name("py-spy")
        argv = [str(pyspy), "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-r", "200",
                "-f", "raw", "-o", str(out), "--nonblocking"]
        self.files.append(str(out))
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _measure_point(point: Point, targets: dict, args, warmup: float) -> _load.Sample:
    target = targets[point.system]
    rois = args.rois_per_request
    if point.mode == "stream":
        return await _load.run_streams(target.open_stream, target.request, target.stream_error, point.concurrency,
                                       args.stream_window, args.duration, warmup, rois)
    return await _load.run_unary(target.unary, point.concurrency, args.duration, warmup, rois)


async def measure_servers(model: str, servers: dict, plan: list[Point], image, rois, args, v2,
                          profiler: Profiler, raw: _raw.RawBench) -> tuple[dict, dict]:
    targets = {}
    for name in ("roiclass", "baseline"):
        if name in servers:
            targets[name] = _clients.RoiclassTarget(servers[name].port, model, image, rois)
    if "kserve" in servers:
        targets["kserve"] = _clients.KServeTarget(servers["kserve"].port, model, image, rois, v2)
    try:
        top1 = {name: await t.top1() for name, t in targets.items()}
        samples: dict[Point, list[_load.Sample]] = {p: [] for p in plan}
        for rep in range(args.repeats):
            raw.run_once(args.raw_duration)  # the servers sit idle meanwhile
            # Odd repeats walk the plan backwards: no system always goes first.
            for point in (plan if rep % 2 == 0 else plan[::-1]):
                spy = None
                if rep == 0 and (model, point.system, point.mode, point.concurrency) in PROFILE_POINTS:
                    spy = profiler.start(servers[point.system].pid,
                                         f"{model}-{point.system}-{point.mode}{point.concurrency}",
                                         args.duration + args.warmup)
                # A longer warm-up the first time a point runs (connections, batch tensors).
                warmup = args.warmup * (2 if rep == 0 else 1)
                server = servers[point.system]
                cpu0, wall0 = server.cpu_seconds(), time.perf_counter()
                sample = await _measure_point(point, targets, args, warmup)
                sample.server_cpu = (server.cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
                if spy is not None:
                    await asyncio.get_running_loop().run_in_executor(None, spy.wait)
                samples[point].append(sample)
                log.info("%s rep %d %s %s x%d: %.1f ROIs/s p50 %.2f ms p99 %.2f ms errors %d, cores: "
                         "server %.2f client %.2f", model, rep, point.system, point.mode, point.concurrency,
                         sample.rois_per_s, sample.percentile_ms(50), sample.percentile_ms(99), sample.errors,
                         sample.server_cpu, sample.client_cpu)
                for server in servers.values():
                    server.check_alive()
    finally:
        for t in targets.values():
            await t.close()
    points = {p: _load.summarize(s) for p, s in samples.items()}
    return top1, points


def run_model(name: str, folder: Path, args, v2, profiler: Profiler) -> dict:
    spec = load_spec(folder)
    image, rois = bench_image(args.rois_per_request)
    out: dict = {"onnx": str(Path(spec.onnx_path).relative_to(ROOT)) if Path(spec.onnx_path).is_absolute() and
                 ROOT in Path(spec.onnx_path).parents else str(spec.onnx_path),
                 "input": f"{spec.channels}x{spec.input_height}x{spec.input_width} {spec.layout}",
                 "max_batch_size": spec.max_batch_size, "max_queue_delay_us": spec.max_queue_delay_us,
                 "image": list(image.shape), "rois_per_request": len(rois)}
    raw = _raw.RawBench(spec, _raw_providers(args), max_batch=spec.max_batch_size)
    out["preprocess"] = _raw.measure_preprocess(spec, image, rois)
    plan = [Point("roiclass", "unary", c) for c in UNARY_CONCURRENCY]
    plan += [Point("roiclass", "stream", s) for s in STREAMS]
    servers = {}
    try:
        servers["roiclass"] = _servers.start_roiclass(folder, spec.name, args.server_arg)
        if args.baseline_python:
            servers["baseline"] = _servers.start_roiclass(folder, spec.name, args.server_arg,
                                                          python=args.baseline_python, label="baseline")
            # Each baseline point right after its roiclass point: drift hits both alike.
            plan = [q for p in plan for q in (p, Point("baseline", p.mode, p.concurrency))]
        if not args.no_kserve:
            servers["kserve"] = _servers.start_kserve(kserve_env.venv_python(), kserve_spec(spec), spec.name, v2)
            plan += [Point("kserve", "unary", c) for c in UNARY_CONCURRENCY]
        latencies = _clients.sync_client_latencies(servers["roiclass"].port, spec.name, image, rois,
                                                   args.duration, args.warmup)
        sync = _load.Sample(args.duration, len(rois), latencies)
        top1, points = asyncio.run(measure_servers(spec.name, servers, plan, image, rois, args, v2, profiler, raw))
    finally:
        for server in servers.values():
            server.stop()
    out["raw"] = raw.summary()
    out["top1"] = top1
    out["python_client_sync_c1"] = _load.summarize([sync])
    out["points"] = [{**asdict(p), **summary} for p, summary in points.items()]
    return out


def _baseline_describe(python: str) -> str | None:
    """The baseline's commit, as its own checkout says (or None without one)."""
    if not python:
        return None
    code = "import roiclass.ext, pathlib; print(pathlib.Path(roiclass.ext.__file__).parents[1])"
    root = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    commit = subprocess.run(["git", "-C", root, "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True).stdout.strip()
    return f"{root}: {commit}"


def _raw_providers(args) -> list[str]:
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if args.gpu else ["CPUExecutionProvider"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="efficientnet_lite0,tiny_cnn", help="comma list of models")
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per point and repeat")
    p.add_argument("--warmup", type=float, default=0.5, help="discarded seconds before each measurement")
    p.add_argument("--repeats", type=int, default=3, help="repeats per point (medians are reported)")
    p.add_argument("--raw-duration", type=float, default=1.0, help="seconds per raw batch size and repeat")
    p.add_argument("--rois-per-request", type=int, default=1)
    p.add_argument("--stream-window", type=int, default=32, help="frames in flight per stream")
    p.add_argument("--server-arg", action="append", default=[], help="extra roiclass server flag (repeatable)")
    p.add_argument("--no-kserve", action="store_true", help="skip the KServe server")
    p.add_argument("--baseline-python", default="",
                   help="also serve with this interpreter (an earlier checkout's venv) and report ratios to it")
    p.add_argument("--gpu", action="store_true", help="raw ORT on the CUDA provider (roiclass: --devices auto)")
    p.add_argument("--profile", action="store_true", help="py-spy the roiclass server on a few points")
    p.add_argument("--tag", default="", help="results go to serving-TAG.json (e.g. the GPU's name)")
    p.add_argument("--quick", action="store_true", help="1 repeat of 1 s: a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.repeats, args.raw_duration, args.warmup = 1.0, 1, 0.3, 0.3
    for name in ("duration", "raw_duration"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0")
    if args.repeats < 1 or args.rois_per_request < 1 or args.stream_window < 1:
        p.error("--repeats, --rois-per-request and --stream-window must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    v2 = None
    machine = _machine.describe()
    if not args.no_kserve:
        kserve_env.ensure_venv()
        v2 = kserve_env.v2_stubs()
        machine["kserve"] = kserve_env.kserve_version()
    profiler = Profiler(args.profile)
    results = {
        "machine": machine,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(args).items() if k not in ("quick",)},
        "baseline": _baseline_describe(args.baseline_python),
        "load": "one asyncio process, grpc.aio stubs, closed loop; unary: N calls in flight; "
                "stream: N streams x stream_window frames in flight",
        "models": {},
        # Other work on the machine skews every figure: recorded to judge a run by.
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
    }
    for name, folder in model_folders(args.models.split(",")).items():
        results["models"][name] = run_model(name, folder, args, v2, profiler)
    results["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    results["targets"] = _report.targets(results)
    if args.baseline_python:
        results["baseline_ratios"] = _report.baseline_ratios(results)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    if profiler.files:
        results["profiles"] = [str(Path(f).relative_to(ROOT)) for f in profiler.files]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "serving" + (f"-{args.tag}" if args.tag else "") + ("-quick" if args.quick else "")
    out = RESULTS / f"{stem}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    pngs = _report.plot(results, RESULTS / stem)
    print(_report.summary_text(results))
    print(f"wrote {out.relative_to(ROOT)} and {', '.join(str(p.relative_to(ROOT)) for p in pngs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
