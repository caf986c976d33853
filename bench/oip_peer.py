"""The Triton peer: Triton Inference Server (the `tritonserver` that
nvidia-pytriton bundles, bench/.perf-venv) serving the model through its
Python backend with bench/triton_peer/model.py (cv2 per ROI + ONNX Runtime),
Triton's dynamic batching on.

The model repository is written under bench/.cache/triton_repo from the
roiclass model's own config (ONNX path, input size, mean, std, batching), so
both servers run the same model with the same normalization. The backend's
Python (the stub) runs on this interpreter's libpython with bench/.perf-venv
on its path: numpy 1.26 (the stub needs numpy < 2), OpenCV 4.11 and the same
ONNX Runtime version as roiclass.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import grpc

import _servers
import oip_env

log = logging.getLogger(__name__)

BENCH = Path(__file__).resolve().parent
REPO = BENCH / ".cache" / "triton_repo"
BACKENDS = BENCH / ".cache" / "triton_backends"
MODEL_PY = BENCH / "triton_peer" / "model.py"


def peer_max_batch(spec, rois_per_request: int) -> int:
    """Triton batches requests, roiclass ROIs: the same most ROIs per batch."""
    return max(1, spec.max_batch_size // rois_per_request)


def config_pbtxt(spec, rois_per_request: int, instances: int = 1) -> str:
    """instances > 1: that many model instances, the cores split between their ORT sessions."""
    threads = 0 if instances == 1 else max(1, (os.cpu_count() or 1) // instances)
    params = {"onnx_path": str(Path(spec.onnx_path).resolve()), "width": str(spec.input_width),
              "height": str(spec.input_height), "mean": json.dumps(list(spec.mean[:3])),
              "std": json.dumps(list(spec.std[:3])), "intra_op_threads": str(threads)}
    parameters = "\n".join(f'  {{ key: "{k}" value: {{ string_value: {json.dumps(v)} }} }},' for k, v in params.items())
    return f"""name: "{spec.name}"
backend: "python"
max_batch_size: {peer_max_batch(spec, rois_per_request)}
input [
  {{ name: "IMAGE" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ] }},
  {{ name: "ROIS" data_type: TYPE_FP32 dims: [ -1, 5 ] }}
]
output [
  {{ name: "PROBABILITIES" data_type: TYPE_FP32 dims: [ -1, {len(spec.classes)} ] }}
]
dynamic_batching {{ max_queue_delay_microseconds: {spec.max_queue_delay_us} }}
instance_group [ {{ count: {instances} kind: KIND_CPU }} ]
parameters [
{parameters.rstrip(",")}
]
"""


def write_repository(spec, rois_per_request: int, instances: int = 1) -> Path:
    if spec.channel_order != "RGB" or spec.resize != "stretch" or spec.layout != "NCHW":
        raise SystemExit(f"{spec.name}: the Triton peer implements RGB + stretch + NCHW only")
    shutil.rmtree(REPO, ignore_errors=True)
    version = REPO / spec.name / "1"
    version.mkdir(parents=True)
    shutil.copy(MODEL_PY, version / "model.py")
    (REPO / spec.name / "config.pbtxt").write_text(config_pbtxt(spec, rois_per_request, instances))
    return REPO


def _backend_dir() -> Path:
    """The bundled Python backend plus the stub for this Python version (as pytriton lays it out)."""
    dist = oip_env.tritonserver().parents[1]
    shutil.rmtree(BACKENDS, ignore_errors=True)
    shutil.copytree(dist / "backends", BACKENDS)
    stub = dist / "python_backend_stubs" / f"{sys.version_info.major}.{sys.version_info.minor}"
    shutil.copy(stub / "triton_python_backend_stub", BACKENDS / "python" / "triton_python_backend_stub")
    return BACKENDS


def _stub_env() -> dict[str, str]:
    env = os.environ.copy()
    # The stub links libpython3.X.so (this interpreter's) and, through an
    # rpath that its copy loses, the wheel's own libraries.
    libs = (sysconfig.get_config_var("LIBDIR") or "", str(oip_env.site_packages() / "nvidia_pytriton.libs"),
            env.get("LD_LIBRARY_PATH", ""))
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in libs if p)
    env["PYTHONPATH"] = str(oip_env.site_packages())
    return env


def server_version(server: _servers.ServerProcess) -> str:
    """tritonserver's version, from the options table it logs at start."""
    match = re.search(r"server_version\s*\|\s*(\S+)", server.log_path.read_text())
    return f"tritonserver {match.group(1) if match else '?'} (nvidia-pytriton's, Python backend)"


class _TritonProcess(_servers.ServerProcess):
    """A ServerProcess started with its own environment (the stub's libpython and path)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        _servers.LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = _servers.LOGS / f"{name}.log"
        self._log = self.log_path.open("w")
        log.info("starting %s: %s", name, " ".join(argv))
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=BENCH.parent, env=env)
        self.port = 0


def start_triton(spec, rois_per_request: int, instances: int = 1, timeout: float = 120.0) -> _servers.ServerProcess:
    """tritonserver on a free loopback gRPC port (HTTP and metrics off);
    returns once the model is ready."""
    from roiclass.inference import grpc_service_pb2 as pb2, grpc_service_pb2_grpc as pb2_grpc

    repo = write_repository(spec, rois_per_request, instances)
    port = _servers.free_port()
    argv = [str(oip_env.tritonserver()), f"--model-repository={repo}", f"--backend-directory={_backend_dir()}",
            "--grpc-address=127.0.0.1", f"--grpc-port={port}", "--allow-http=false", "--allow-metrics=false",
            "--backend-config=python,shm-default-byte-size=33554432", "--log-verbose=0"]
    server = _TritonProcess(f"triton-{spec.name}", argv, _stub_env())
    server.port = port
    deadline = time.monotonic() + timeout
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb2_grpc.GRPCInferenceServiceStub(channel)
            _servers._wait_ready(server, lambda: stub.ModelReady(pb2.ModelReadyRequest(name=spec.name),
                                                                timeout=2).ready, deadline, "model not ready")
    except BaseException:
        server.stop()
        raise
    log.info("%s ready on port %d (pid %d)", server.name, server.port, server.pid)
    return server
