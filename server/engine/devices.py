"""Devices and ONNX Runtime sessions: which providers really load where."""
from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from roiclass.server.cores import available_cores
from roiclass.server.engine.config import EngineConfig

log = logging.getLogger(__name__)

CPU = "cpu"
CUDA_EP = "CUDAExecutionProvider"
TRT_EP = "TensorrtExecutionProvider"
CPU_EP = "CPUExecutionProvider"
ORT_WARNING, ORT_FATAL = 2, 4  # ORT log severities (2 is its default)


class _QuietDefaultLogger:
    """ORT prints its own multi-line errors through its process-wide default
    logger when a provider cannot load (a session's own log level does not
    reach them); our single warning says it better. The default logger stays
    quiet while any probe runs: counted, so that two models loading at once do
    not turn it back on under each other."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0  # probes running now, in any thread

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                ort.set_default_logger_severity(ORT_FATAL)
            self._depth += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                ort.set_default_logger_severity(ORT_WARNING)


provider_errors_quiet = _QuietDefaultLogger()


def parse_devices(spec: str) -> list[str]:
    """"auto" | "cpu" | "cuda:0,cuda:1" -> ["cuda:0", ...] or ["cpu"]."""
    text = spec.strip().lower()
    if text == "auto":
        n = cuda_device_count()
        return [f"cuda:{i}" for i in range(n)] if n else [CPU]
    if text == CPU:
        return [CPU]
    devices = []
    for part in text.split(","):
        part = part.strip()
        if part.startswith("cuda:") and part[5:].isdigit():
            if part not in devices:
                devices.append(part)
        else:
            raise ValueError(f"devices: {spec!r} is not valid; allowed: auto, cpu, "
                             "or a comma list of cuda:<index> (e.g. cuda:0,cuda:1)")
    return devices


def cuda_device_count() -> int:
    """CUDA devices the driver sees, 0 without a driver or without ORT's CUDA provider."""
    if CUDA_EP not in ort.get_available_providers():
        return 0
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    except OSError:
        return 0


@dataclass(frozen=True)
class Placement:
    device: str  # "cpu" | "cuda:N"
    provider: str  # what really runs the session


class SessionFactory:
    """Creates sessions; remembers devices whose CUDA provider failed (one warning each)."""

    def __init__(self, config: EngineConfig):
        self.config = config
        self._lock = threading.Lock()
        self._cuda_broken: dict[str, str] = {}  # device -> why

    def usable_devices(self, devices: list[str]) -> list[str]:
        """Requested devices minus the ones known to fall back; CPU when none is left."""
        with self._lock:
            ok = [d for d in devices if d == CPU or d not in self._cuda_broken]
        return ok or [CPU]

    def cpu_threads(self, cpu_instances: int) -> int:
        if self.config.cpu_threads > 0:
            return self.config.cpu_threads
        return max(1, available_cores() // max(1, cpu_instances))

    def create(self, onnx_path: Path, device: str, cpu_instances: int
               ) -> tuple[ort.InferenceSession, Placement]:
        opts = ort.SessionOptions()
        # Its own logger, so that the default logger's quiet window (below) hides
        # nothing of this session, whichever thread opens that window.
        opts.log_severity_level = ORT_WARNING
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        if device == CPU:
            opts.intra_op_num_threads = self.cpu_threads(cpu_instances)
            spinning = self.config.cpu_spinning
            if spinning == "off":
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            elif spinning == "run":
                opts.add_session_config_entry("session.force_spinning_stop", "1")
            sess = ort.InferenceSession(str(onnx_path), opts, providers=[CPU_EP])
            return sess, Placement(CPU, CPU_EP)
        device_id = int(device.split(":")[1])
        providers: list = []
        if self.config.tensorrt:
            trt = {"device_id": device_id}
            if self.config.tensorrt_cache_dir is not None:
                Path(self.config.tensorrt_cache_dir).mkdir(parents=True, exist_ok=True)
                trt.update(trt_engine_cache_enable=True,
                           trt_engine_cache_path=str(self.config.tensorrt_cache_dir))
            providers.append((TRT_EP, trt))
        providers += [(CUDA_EP, {"device_id": device_id}), CPU_EP]
        opts.intra_op_num_threads = 1  # CPU threads only run the few ops the GPU lacks
        with self._lock:
            probing = device not in self._cuda_broken
        if probing:
            try:
                with provider_errors_quiet:
                    sess = ort.InferenceSession(str(onnx_path), opts, providers=providers)
            except Exception as exc:  # e.g. an ordinal the driver lacks, no memory on it
                # A broken model fails on the CPU too and reports its own error there.
                self._mark_broken(device, f"its session failed: {exc}")
                return self.create(onnx_path, CPU, cpu_instances)
            loaded = sess.get_providers()
            for name in (TRT_EP, CUDA_EP):
                if name in loaded:
                    return sess, Placement(device, name)
            self._mark_broken(device, f"{CUDA_EP} did not load (providers: {loaded})")
        return self.create(onnx_path, CPU, cpu_instances)

    def _mark_broken(self, device: str, why: str) -> None:
        with self._lock:
            first = device not in self._cuda_broken
            self._cuda_broken[device] = why
        if first:
            log.warning("%s is unusable: %s (no driver or missing CUDA/cuDNN libraries?); "
                        "models meant for it are served on the CPU", device, why)
