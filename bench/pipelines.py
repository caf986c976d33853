"""Pipelines (issue #15): one request (detector + classifier + one child level
in the server) against the three calls a client makes today, and against the
pure compute of the three stages in-process (the bound).

    .venv/bin/python bench/pipelines.py [--repeats 5] [--duration 3] [--sets small,large]

Per model set (bench/_pipeline_models.py: the same grid-cell YOLOv8-layout
detector, then tiny CNNs or EfficientNet-Lite0 as classifier and child; the
bench image gives 4 detections, and the child runs on each):

- pipeline: ClassifyObject(model=classifier, detector=square_det, no ROIs)
  to a roiclass server serving the repository; the classifier's
  [[children]] runs the child on every ROI; one round trip.
- three calls: what a client does today. (1) the detector on a tensor server
  (a minimal Open Inference Protocol ModelInfer server in its own process,
  `serve-detector` below: the image in, letterboxed there, ONNX Runtime,
  the raw [1, 5, 64] output back), (2) the client decodes the YOLOv8 output
  (confidence threshold + NMS, NumPy) into ROIs in image coordinates and
  re-sends the image with them to roiclass for the classifier (children
  off), (3) checks each result against the child's condition and sends the
  image again with those ROIs to the child model.
- bound: the three ONNX Runtime sessions run one after the other in this
  process on the same inputs (the letterboxed image, the 4 crops), nothing
  else: no preprocessing, transport, decoding or batching waits; the faster
  of bench/_raw.py's two session configurations (ORT's defaults, spinning
  off), measured while the servers are idle.

Latency at concurrency 1 (p50) and throughput at concurrency 16 (requests,
i.e. whole pipelines, per second), closed loop from one asyncio client
(bench/_load.py). The repeats of every point are interleaved; figures are
medians over repeats; ratios are those of the medians, with the range of the
per-repeat ratios. Writes bench/results/pipelines.json.
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
import numpy as np

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # run as a script: the helper modules sit beside it
    sys.path.insert(0, str(BENCH))

import _load  # noqa: E402
import _machine  # noqa: E402
import _pipeline_models as models  # noqa: E402
import _raw  # noqa: E402
import _servers  # noqa: E402

from roiclass.client import build_request  # noqa: E402
from roiclass.inference import grpc_service_pb2 as oip, grpc_service_pb2_grpc as oip_grpc  # noqa: E402
from roiclass.v1 import classifier_pb2_grpc  # noqa: E402
from roiclass.v1 import classifier_pb2 as pb  # noqa: E402

log = logging.getLogger("bench.pipelines")
TOP_K = 5
_OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]


# -- the detector's tensor server (its own process) ------------------------------
def letterbox(image: np.ndarray, side: int) -> tuple[np.ndarray, float, float, float]:
    """(the (1, 3, side, side) unit-range tensor, scale, pad x, pad y): centred, black padding."""
    import cv2

    h, w = image.shape[:2]
    scale = side / max(h, w)
    nw, nh = round(w * scale), round(h * scale)
    px, py = (side - nw) / 2, (side - nh) / 2
    canvas = np.zeros((side, side, 3), np.float32)
    canvas[int(py):int(py) + nh, int(px):int(px) + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return (canvas * (1 / 255)).transpose(2, 0, 1)[None].copy(), scale, int(px), int(py)


class DetectorServicer(oip_grpc.GRPCInferenceServiceServicer):
    def __init__(self, onnx_path: str):
        import onnxruntime as ort

        self.session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])

    def _run(self, msg) -> oip.ModelInferResponse:
        shape = tuple(msg.inputs[0].shape)
        image = np.frombuffer(msg.raw_input_contents[0], np.uint8).reshape(shape)
        x, *_ = letterbox(image, models.DET_SIDE)
        out = self.session.run(None, {"images": x})[0]
        tensor = oip.ModelInferResponse.InferOutputTensor(name="output0", datatype="FP32", shape=list(out.shape))
        return oip.ModelInferResponse(model_name=msg.model_name, outputs=[tensor],
                                      raw_output_contents=[np.ascontiguousarray(out).tobytes()])

    async def ModelInfer(self, request, context):  # noqa: N802 - the protocol's name
        # ONNX Runtime releases the GIL: calls in flight overlap on the executor's threads.
        return await asyncio.get_running_loop().run_in_executor(None, self._run, request)


async def serve_detector(onnx_path: str) -> None:
    server = grpc.aio.server(options=_OPTIONS)
    oip_grpc.add_GRPCInferenceServiceServicer_to_server(DetectorServicer(onnx_path), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"detector listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


# -- the client's decode of the detector's output ----------------------------------
def decoder(repo: Path):
    """rows(out, image) -> (K, 5) ROI rows in image coordinates, best first: the server's own
    decode + NMS + mapping back (roiclass.server.pipeline.detect), run in the client on the
    raw output, with the detector's config."""
    from roiclass.server.geometry import ROI_COLUMNS
    from roiclass.server.models.repository import load_model_dir
    from roiclass.server.pipeline.detect.detector import postprocess
    from roiclass.server.pipeline.detect.letterbox import letterbox as place

    spec = next(s for s in load_model_dir(repo / models.DETECTOR) if hasattr(s, "onnx_path"))

    def rows(out: np.ndarray, width: int, height: int) -> np.ndarray:
        box = place(width, height, spec.input_width, spec.input_height, spec.detector.letterbox)
        found = postprocess(spec, out, box, width, height, spec.detector.max_detections)
        return np.array([[getattr(d.rect, c) for c in ROI_COLUMNS] for d in found], np.float64).reshape(-1, 5)

    return rows


# -- the two client paths -------------------------------------------------------------
class Paths:
    """One model set's servers as the client sees them (use inside a loop)."""

    def __init__(self, port: int, det_port: int, classifier: str, child: str, image: np.ndarray, decode):
        self.image, self.classifier, self.child, self.decode = image, classifier, child, decode
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=_OPTIONS)
        self.det_channel = grpc.aio.insecure_channel(f"127.0.0.1:{det_port}", options=_OPTIONS)
        self.stub = classifier_pb2_grpc.ObjectClassifierStub(self.channel)
        self.det_stub = oip_grpc.GRPCInferenceServiceStub(self.det_channel)
        self.pipeline_request = build_request(image, None, model=classifier, top_k=TOP_K)
        self.pipeline_request.detector = models.DETECTOR
        tensor = oip.ModelInferRequest.InferInputTensor(name="image", datatype="UINT8", shape=list(image.shape))
        self.det_request = oip.ModelInferRequest(model_name=models.DETECTOR, inputs=[tensor],
                                                 raw_input_contents=[np.ascontiguousarray(image).tobytes()])

    async def pipeline(self) -> pb.ClassifyObjectResponse:
        return await self.stub.ClassifyObject(self.pipeline_request, timeout=60)

    async def three_calls(self) -> tuple[np.ndarray, pb.ClassifyObjectResponse, pb.ClassifyObjectResponse]:
        det = await self.det_stub.ModelInfer(self.det_request, timeout=60)
        out = np.frombuffer(det.raw_output_contents[0], np.float32).reshape(tuple(det.outputs[0].shape))[0]
        rois = self.decode(out, self.image.shape[1], self.image.shape[0])
        request = build_request(self.image, [tuple(r) for r in rois], model=self.classifier, top_k=TOP_K)
        request.children = False
        parents = await self.stub.ClassifyObject(request, timeout=60)
        # The child's condition (when = [], min_confidence = 0): every ROI with a result.
        keep = [i for i, r in enumerate(parents.results) if r.confidences]
        request = build_request(self.image, [tuple(rois[i]) for i in keep], model=self.child, top_k=TOP_K)
        children = await self.stub.ClassifyObject(request, timeout=60)
        return rois, parents, children

    async def close(self) -> None:
        await self.channel.close()
        await self.det_channel.close()


def _classes(result) -> list[int]:
    return [c.class_index for c in result.confidences]


async def agreement(paths: Paths) -> dict:
    """Both paths' boxes and classes (parent and child) on the bench image, and whether they agree."""
    one = await paths.pipeline()
    rois, parents, children = await paths.three_calls()
    tree = [(round(r.detection.box.origin.x), round(r.detection.box.origin.y), _classes(r),
             [_classes(c.result) for c in r.children]) for r in one.results]
    flat = [(round(r[0]), round(r[1]), _classes(p), [_classes(c)]) for r, p, c in
            zip(rois, parents.results, children.results)]
    return {"rois_pipeline": len(one.results), "rois_three_calls": len(rois),
            "children_pipeline": sum(len(r.children) for r in one.results), "agree": tree == flat}


# -- the in-process bound ---------------------------------------------------------------
class Bound:
    """The three ONNX Runtime sessions on fixed inputs of the request's shapes, in each of
    bench/_raw.py's configurations (ORT's defaults; spinning off): the bound is the faster."""

    def __init__(self, repo: Path, classifier: str, child: str, image: np.ndarray, rois: np.ndarray):
        import cv2

        from roiclass.server.models.repository import load_model_dir

        specs = {n: next(s for s in load_model_dir(repo / n) if hasattr(s, "onnx_path"))
                 for n in (models.DETECTOR, classifier, child)}
        feeds = [{"images": letterbox(image, models.DET_SIDE)[0]}]
        for name in (classifier, child):
            spec = specs[name]
            crops = [cv2.resize(image[int(y):int(y + h), int(x):int(x + w)], (spec.input_width, spec.input_height))
                     for x, y, w, h, _ in rois]
            x = ((np.stack(crops).astype(np.float32) - spec.mean[0]) / spec.std[0]).transpose(0, 3, 1, 2).copy()
            feeds.append({spec.io.input_name: x})
        self.configs = {c: [(_raw.make_session(specs[n], entries=e), f) for n, f in zip(specs, feeds)]
                        for c, e in _raw.CONFIGS.items()}
        self.times: list[float] = []  # per repeat: the faster configuration's median run
        self.stage_times: list[list[float]] = []
        self.config_used: list[str] = []
        for stages in self.configs.values():
            for _ in range(3):  # warm-up: first runs allocate
                self.once(stages)

    @staticmethod
    def once(stages) -> list[float]:
        """Seconds of each stage (detector, classifier, child), run one after the other."""
        t = [time.perf_counter()]
        for sess, feed in stages:
            sess.run(None, feed)
            t.append(time.perf_counter())
        return list(np.diff(t))

    def repeat(self, seconds: float) -> None:
        """One repeat: `seconds` per configuration; keeps the faster one's median run (and stages)."""
        best = None
        for config, stages in self.configs.items():
            runs, end = [], time.perf_counter() + seconds
            while not runs or time.perf_counter() < end:
                runs.append(self.once(stages))
            total = statistics.median(sum(r) for r in runs)
            if best is None or total < best[0]:
                best = (total, [statistics.median(r[i] for r in runs) for i in range(3)], config)
        self.times.append(best[0])
        self.stage_times.append(best[1])
        self.config_used.append(best[2])


# -- servers ------------------------------------------------------------------------------
def start_repository(repo: Path, which: str, names: tuple[str, ...], timeout: float = 180.0):
    """roiclass serving the repository, back once health says SERVING for every model in names."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    argv = [sys.executable, "-m", "roiclass.server.cli", "--port", "0", "--models", str(repo),
            "--default-model", names[1]]
    server = _servers.ServerProcess(f"pipelines-{which}", argv)
    try:
        server.port = _wait_port(server, _servers._LISTENING, timeout)
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in names:
                _servers._wait_ready(server, lambda n=name: health.Check(health_pb2.HealthCheckRequest(service=n),
                                                                         timeout=2).status == 1,
                                     deadline, f"model {name} not SERVING")
    except BaseException:
        server.stop()
        raise
    return server


def start_detector(repo: Path, which: str, timeout: float = 60.0):
    argv = [sys.executable, str(Path(__file__).resolve()), "serve-detector",
            str(repo / models.DETECTOR / "1" / "model.onnx")]
    server = _servers.ServerProcess(f"pipelines-detector-{which}", argv)
    try:
        server.port = _wait_port(server, _servers._LISTENING, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_port(server, pattern, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        server.check_alive()
        match = pattern.search(server.log_path.read_text())
        if match:
            return int(match.group(1))
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server.name} did not log 'listening on' in {timeout:.0f} s")
        time.sleep(0.1)


# -- measurement ----------------------------------------------------------------------------
POINTS = (("pipeline", 1), ("three_calls", 1), ("pipeline", 16), ("three_calls", 16))


async def _measure(paths: Paths, path: str, concurrency: int, servers, args) -> _load.Sample:
    """One point; server_cpu: the roiclass and detector processes' cores over the whole run (warm-up too)."""
    call = paths.pipeline if path == "pipeline" else paths.three_calls
    cpu0, t0 = sum(s.cpu_seconds() for s in servers), time.perf_counter()
    sample = await _load.run_unary(call, concurrency, args.duration, args.warmup, rois_per_call=1)
    sample.server_cpu = (sum(s.cpu_seconds() for s in servers) - cpu0) / (time.perf_counter() - t0)
    return sample


async def _one_repeat(fleet: dict, bounds: dict, samples: dict, args) -> None:
    for which, (ports, names, decode, servers) in fleet.items():
        # The bound first, while the servers are idle (after a load, their ORT threads spin a while).
        await asyncio.sleep(0.5)
        bounds[which].repeat(args.bound_seconds)
        paths = Paths(*ports, *names, models.bench_image(), decode)
        try:
            for path, concurrency in POINTS:
                samples[which][(path, concurrency)].append(await _measure(paths, path, concurrency, servers, args))
        finally:
            await paths.close()


def _ratio(a: list[float], b: list[float], num: float, den: float) -> dict:
    """None where a side completed nothing (a window shorter than one call)."""
    per = [x / y for x, y in zip(a, b) if y and np.isfinite(x / y)]
    if not den or not num or not per:
        return {"ratio": None, "per_repeat_min": None, "per_repeat_max": None}
    return {"ratio": round(float(num / den), 3), "per_repeat_min": round(float(min(per)), 3),
            "per_repeat_max": round(float(max(per)), 3)}


def summarize_set(samples: dict, bound: Bound) -> dict:
    points = {f"{path}_c{c}": _load.summarize(s) for (path, c), s in samples.items()}
    for p in points.values():
        p.pop("cdf_ms", None)
        p["requests_per_s"] = p.pop("rois_per_s")
        p["requests_per_s_repeats"] = p.pop("rois_per_s_repeats")
        if p["requests_per_s"] and "server_cores" in p and "client_cores" in p:
            # CPU, not wall time, per request: steadier than throughput on a shared machine.
            p["cpu_ms_per_request"] = round(1e3 * (p["server_cores"] + p["client_cores"]) / p["requests_per_s"], 3)
    bound_ms = [t * 1e3 for t in bound.times]
    stages = [round(float(1e3 * statistics.median(r[i] for r in bound.stage_times)), 3) for i in range(3)]
    out = {"points": points, "bound": {"p50_ms_repeats": [round(float(v), 3) for v in bound_ms],
                                       "p50_ms": round(float(statistics.median(bound_ms)), 3),
                                       "stage_p50_ms": dict(zip(("detector", "classifier", "child"), stages)),
                                       "config_per_repeat": bound.config_used}}
    p50 = {k: [s.percentile_ms(50) for s in v] for k, v in samples.items()}
    rate = {k: [s.rois_per_s for s in v] for k, v in samples.items()}
    one, three = points["pipeline_c1"], points["three_calls_c1"]
    out["ratios"] = {
        "latency_c1_pipeline_over_three_calls": _ratio(p50[("pipeline", 1)], p50[("three_calls", 1)],
                                                       one["p50_ms"], three["p50_ms"]),
        "latency_c1_pipeline_over_bound": _ratio(p50[("pipeline", 1)], bound_ms, one["p50_ms"],
                                                 out["bound"]["p50_ms"]),
        "latency_c1_three_calls_over_bound": _ratio(p50[("three_calls", 1)], bound_ms, three["p50_ms"],
                                                    out["bound"]["p50_ms"]),
        "throughput_c16_pipeline_over_three_calls": _ratio(
            rate[("pipeline", 16)], rate[("three_calls", 16)], points["pipeline_c16"]["requests_per_s"],
            points["three_calls_c16"]["requests_per_s"]),
    }
    return out


TARGETS = (  # (set, ratio, comparison, bound, what)
    ("small", "latency_c1_pipeline_over_three_calls", "<=", 0.6, "small: pipeline p50 at c=1 <= 0.6x the three calls'"),
    ("small", "throughput_c16_pipeline_over_three_calls", ">=", 1.5,
     "small: pipeline throughput at c=16 >= 1.5x the three calls'"),
    ("large", "latency_c1_pipeline_over_bound", "<=", 1.15, "large: pipeline p50 at c=1 <= 1.15x the compute bound"),
    ("large", "throughput_c16_pipeline_over_three_calls", ">", 1.0,
     "large: pipeline throughput at c=16 ahead of the three calls'"),
)


def targets(sets: dict) -> list[dict]:
    out = []
    for which, key, op, bound, what in TARGETS:
        if which in sets:
            r = sets[which]["ratios"][key]
            value = r["ratio"]
            met = value is not None and (value <= bound if op == "<=" else
                                         value >= bound if op == ">=" else value > bound)
            out.append({"target": what, "ratio": r["ratio"], "bound": bound, "met": bool(met),
                        "per_repeat": [r["per_repeat_min"], r["per_repeat_max"]]})
    return out


def print_summary(results: dict) -> None:
    for which, s in results["sets"].items():
        print(f"== {which} ({', '.join(results['models'][which])}): bound {s['bound']['p50_ms']:.2f} ms")
        for name, p in s["points"].items():
            print(f"   {name:15} {p['requests_per_s']:8.1f} req/s  p50 {p['p50_ms'] or float('nan'):8.2f} ms"
                  f"  p99 {p['p99_ms'] or float('nan'):8.2f} ms  server cores {p.get('server_cores', float('nan')):5.2f}"
                  f"  CPU ms/request {p.get('cpu_ms_per_request', float('nan')):7.2f}"
                  f"  errors {p['errors']}")
        for name, r in s["ratios"].items():
            print(f"   {name:45} {r['ratio']}  ({r['per_repeat_min']}-{r['per_repeat_max']})")
    for t in results["targets"]:
        print(f"[{'MET' if t['met'] else 'MISSED'}] {t['target']}: {t['ratio']} (bound {t['bound']})")


def run(args) -> dict:
    cache = BENCH / ".cache" / "pipelines"
    fleet, servers, bounds = {}, [], {}
    try:
        for which in args.sets:
            repo, classifier, child = models.write_repository(cache, which)
            main = start_repository(repo, which, (models.DETECTOR, classifier, child))
            servers.append(main)
            det = start_detector(repo, which)
            servers.append(det)
            fleet[which] = ((main.port, det.port), (classifier, child), decoder(repo), (main, det))
            bounds[which] = Bound(repo, classifier, child, models.bench_image(), models.expected_rois())
        checks = {w: asyncio.run(_check(*f[:3])) for w, f in fleet.items()}
        samples = {w: {p: [] for p in POINTS} for w in fleet}
        load0 = os.getloadavg()
        for i in range(args.repeats):
            log.info("repeat %d of %d", i + 1, args.repeats)
            asyncio.run(_one_repeat(fleet, bounds, samples, args))
    finally:
        for server in servers:
            server.stop()
    sets = {w: {**summarize_set(samples[w], bounds[w]), "check": checks[w]} for w in fleet}
    return {"machine": _machine.describe(), "settings": {k: v for k, v in vars(args).items() if k != "out"},
            "load_average_before_after": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
            "models": {w: [models.DETECTOR, *f[1]] for w, f in fleet.items()},
            "sets": sets, "targets": targets(sets)}


async def _check(ports, names, decode) -> dict:
    paths = Paths(*ports, *names, models.bench_image(), decode)
    try:
        return await agreement(paths)
    finally:
        await paths.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve-detector"]:
        asyncio.run(serve_detector(argv[1]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="small,large", type=lambda t: [s for s in t.split(",") if s])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per point and repeat")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--bound-seconds", type=float, default=1.5)
    p.add_argument("--out", type=Path, default=BENCH / "results" / "pipelines.json")
    args = p.parse_args(argv)
    unknown = [s for s in args.sets if s not in models.SETS]
    if unknown:
        p.error(f"--sets: unknown {', '.join(unknown)}; allowed: {', '.join(models.SETS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    results = run(args)
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(out)
    print_summary(results)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
