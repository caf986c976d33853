"""Engine configuration and the plain records the engine hands out."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roiclass.server.models.spec import ModelSpec
from roiclass.server.states import ModelState

SPINNING = ("run", "off", "always")


@dataclass(frozen=True)
class EngineConfig:
    devices: str = "auto"  # "auto" | "cpu" | "cuda:0,cuda:1,..."
    instances_per_device: int = 1  # default per model; ModelSpec.instances_per_device > 0 overrides
    tensorrt: bool = False
    tensorrt_cache_dir: Path | None = None
    cpu_threads: int = 0  # intra-op threads per CPU session; 0 = cores // instances (>= 1)
    preprocess_threads: int = 1  # num_threads for roiclass.ext.preprocess_rois
    fault_injection: bool = False  # test hook for runtime failover, off by default
    # ORT intra-op threads of CPU sessions: "off" = never spin (a run then uses
    # ~1 core, but no thread waits on a preempted spinner when other processes
    # share the CPU: measured faster at batch 1 there); "run" = spin only while a
    # run is in progress (session.force_spinning_stop: faster for batches >= 4
    # when the cores are free); "always" = ORT's default (spins after runs too,
    # stealing the cores the Python workers and gRPC need). True/False mean
    # "always"/"off". See bench/README.md "## Serving".
    cpu_spinning: str = "off"
    # Largest batch cut for CPU instances: -1 = measured at load (the largest size
    # whose time per item is within 10 % of the best, >= 8; bigger CPU batches are
    # slower per item), 0 = the model's max_batch_size, n > 0 = at most n.
    cpu_batch_cap: int = -1
    # Most items (ROIs, tensors) one caller may have queued or running on one
    # model version; more -> RESOURCE_EXHAUSTED. 0 = no cap. Callers: see
    # roiclass.server.callers; "" (in-process use) is never capped.
    max_inflight_rois_per_client: int = 0

    def __post_init__(self) -> None:
        if self.instances_per_device < 1:
            raise ValueError(f"instances_per_device must be >= 1, got {self.instances_per_device}")
        if self.cpu_threads < 0:
            raise ValueError(f"cpu_threads must be >= 0 (0 = automatic), got {self.cpu_threads}")
        if isinstance(self.cpu_spinning, bool):
            object.__setattr__(self, "cpu_spinning", "always" if self.cpu_spinning else "off")
        if self.cpu_spinning not in SPINNING:
            raise ValueError(f"cpu_spinning {self.cpu_spinning!r}: allowed {', '.join(SPINNING)}")
        if self.cpu_batch_cap < -1:
            raise ValueError(f"cpu_batch_cap must be -1 (measured), 0 (model max) or > 0, "
                             f"got {self.cpu_batch_cap}")
        if self.max_inflight_rois_per_client < 0:
            raise ValueError(f"max_inflight_rois_per_client must be >= 0 (0 = no cap), "
                             f"got {self.max_inflight_rois_per_client}")
        if self.preprocess_threads < 1:
            raise ValueError(f"preprocess_threads must be >= 1, got {self.preprocess_threads}")


@dataclass(frozen=True)
class InstanceStatus:
    device: str  # "cpu", "cuda:0", ...
    provider: str  # the provider that really runs it, e.g. "CPUExecutionProvider"
    index: int
    healthy: bool


@dataclass(frozen=True)
class ModelVersionStatus:
    name: str
    version: str
    state: ModelState
    reason: str
    spec: ModelSpec | None
    instances: list[InstanceStatus] = field(default_factory=list)


@dataclass(frozen=True)
class InferenceOutput:
    probabilities: np.ndarray  # (N, num_classes) float32
    queue_us: int  # longest wait of the request's items in the queue
    preprocess_us: int  # time spent preprocessing the request's items
    inference_us: int  # run time of the batches that carried its items
