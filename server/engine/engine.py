"""Engine: loads model versions, routes requests to them, reports their status."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import Callable

import numpy as np

from roiclass.server import errors
from roiclass.server.engine.config import EngineConfig, InstanceStatus, ModelVersionStatus
from roiclass.server.engine.devices import SessionFactory, parse_devices
from roiclass.server.engine.faults import FAULT_KINDS, InjectedFaults
from roiclass.server.engine.model import EngineContext, LoadedModel
from roiclass.server.formats import PixelFormat
from roiclass.server.metrics import Metrics
from roiclass.server.models.spec import ModelSpec
from roiclass.server.states import ModelState
from roiclass.server.versions import version_key

log = logging.getLogger(__name__)


def _failed(exc: BaseException) -> Future:
    f: Future = Future()
    f.set_exception(exc)
    return f


class Engine:
    def __init__(self, config: EngineConfig, metrics: Metrics | None = None):
        self.config = config
        self.metrics = metrics if metrics is not None else Metrics()
        self._ctx = EngineContext(config, SessionFactory(config), self.metrics,
                                  parse_devices(config.devices),
                                  InjectedFaults() if config.fault_injection else None)
        self._lock = threading.RLock()
        self._models: dict[str, dict[str, LoadedModel]] = {}  # name -> version -> model
        log.info("engine devices: %s", ", ".join(self._ctx.devices))

    # -- lifecycle -------------------------------------------------------------
    def load(self, spec: ModelSpec) -> None:
        """Blocking; never raises for a broken model (see status()). A reload of a
        loaded version swaps once the new one is READY; a failed reload keeps the old."""
        with self._lock:
            versions = self._models.setdefault(spec.name, {})
            old = versions.get(spec.version)
            serving = old is not None and old.state == ModelState.READY
            model = LoadedModel(spec, self._ctx, publish=not serving)
            if not serving:
                if old is not None:
                    old.publish_metrics(False)
                versions[spec.version] = model
        model.load()
        if not serving:
            if old is not None and old.state != ModelState.UNLOADED:
                old.unload()
            return
        if model.state == ModelState.READY:
            with self._lock:
                self._models[spec.name][spec.version] = model
                old.publish_metrics(False)
                model.publish_metrics(True)
            old.unload()
        else:
            old.reason = f"reload failed ({model.reason}); the previous load still serves"
            model.unload(grace_s=0)

    def unload(self, name: str, version: str) -> None:
        """Waits for the version's queued and in-flight items, then frees its sessions."""
        with self._lock:
            model = self._models.get(name, {}).get(version)
        if model is None:
            raise errors.NotFound(f"model {name!r} version {version!r} is not loaded; "
                                  f"loaded: {self._listing()}")
        model.unload()

    def close(self, grace_s: float = 5.0) -> None:
        with self._lock:
            models = [m for vs in self._models.values() for m in vs.values()]
        for m in models:
            if m.state != ModelState.UNLOADED:
                m.unload(grace_s=grace_s)

    # -- lookup ----------------------------------------------------------------
    def status(self) -> list[ModelVersionStatus]:
        with self._lock:
            models = [m for vs in self._models.values() for m in vs.values()]
        return [ModelVersionStatus(
            m.name, m.version, m.state, m.reason, m.spec,
            [InstanceStatus(i.device, i.placement.provider, i.index, i.healthy)
             for i in (m.instances if m.state != ModelState.UNLOADED else [])]) for m in models]

    def resolve(self, name: str, version: str = "") -> LoadedModel:
        versions = self._models.get(name)
        if not versions:
            raise errors.NotFound(f"model {name!r} not found; models: {self._listing()}")
        if not version:
            ready = [m for m in list(versions.values()) if m.state == ModelState.READY]
            if not ready:
                states = ", ".join(f"{v}: {m.state}" + (f" ({m.reason})" if m.reason else "")
                                   for v, m in sorted(versions.items()))
                raise errors.Unavailable(f"model {name!r} has no READY version ({states})")
            return max(ready, key=lambda m: version_key(m.version))
        model = versions.get(version)
        if model is None:
            raise errors.NotFound(f"model {name!r} has no version {version!r}; versions: "
                                  f"{', '.join(sorted(versions, key=version_key))}")
        if model.state != ModelState.READY:
            raise errors.Unavailable(f"model {name!r} version {version!r} is {model.state}"
                                     + (f": {model.reason}" if model.reason else ""))
        return model

    def _listing(self) -> str:
        with self._lock:
            items = [f"{n} ({', '.join(sorted(vs, key=version_key))})"
                     for n, vs in sorted(self._models.items()) if vs]
        return ", ".join(items) or "none loaded"

    # -- inference -------------------------------------------------------------
    def classify(self, model: LoadedModel, image: np.ndarray, pixel_format: PixelFormat | str,
                 rois: np.ndarray, *, deadline: float | None = None,
                 is_cancelled: Callable[[], bool] | None = None, caller: str = "",
                 polygons=None) -> Future:
        """Queues the ROIs; the future gives InferenceOutput or fails with an errors.* error.
        `caller` names the client (server.callers): batches are shared round-robin
        between callers and `max_inflight_rois_per_client` counts per caller;
        "" = anonymous (one shared lane, no cap). `polygons`: None, or one entry
        per ROI, None or its mask's rings ((M, 2) arrays, image coordinates):
        model input samples whose source point lies outside take the fill."""
        try:
            return model.submit_rois(image, pixel_format, rois, deadline, is_cancelled, caller,
                                     polygons)
        except errors.RoiclassError as exc:
            return _failed(exc)

    def infer_tensors(self, model: LoadedModel, tensors: np.ndarray, *,
                      deadline: float | None = None,
                      is_cancelled: Callable[[], bool] | None = None, caller: str = "") -> Future:
        try:
            return model.submit_tensors(tensors, deadline, is_cancelled, caller)
        except errors.RoiclassError as exc:
            return _failed(exc)

    def preprocess(self, model: LoadedModel, image: np.ndarray, pixel_format: PixelFormat | str,
                   rois: np.ndarray, polygons=None) -> np.ndarray:
        """Preprocessing alone, in the calling thread: (N, *input shape) array."""
        return model.preprocess(image, pixel_format, rois, polygons)

    # -- tests -----------------------------------------------------------------
    def counters(self, name: str, version: str) -> dict:
        with self._lock:
            model = self._models.get(name, {}).get(version)
        if model is None:
            raise errors.NotFound(f"model {name!r} version {version!r} is not loaded")
        return model.counters.snapshot()

    def inject_fault(self, name: str, version: str, kind: str = "run", *,
                     instance: int | None = None, times: int = 1,
                     match: Callable[[np.ndarray], bool] | None = None) -> None:
        """Test hook (EngineConfig.fault_injection). kind "run": the next `times` runs of
        `instance` (None = every instance) fail like a device error. kind "preprocess":
        every ROI row for which match(row) is true fails its request (rows in geometry.ROI_COLUMNS order)."""
        if not self.config.fault_injection:
            raise errors.FailedPrecondition("fault injection is off (EngineConfig.fault_injection)")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind {kind!r}: allowed {', '.join(FAULT_KINDS)}")
        model = self.resolve(name, version) if version else self.resolve(name)
        faults = self._ctx.faults
        if kind == "preprocess":
            faults.set_poison(model, match)
            return
        targets = [i for i in model.instances if instance is None or i.index == instance]
        if not targets:
            raise ValueError(f"instance {instance}: model has instances "
                             f"{[i.index for i in model.instances]}")
        for inst in targets:
            faults.fail_runs(inst, times)
