"""The Open Inference Protocol without its transport: what the gRPC servicer
(grpc_servicer.py) and the HTTP app (http/) both call.

InferenceProtocol works on the dataclasses below and the protocol's JSON
shapes (dicts); it raises roiclass.server.errors exceptions (the message names
the tensor or model and what is allowed), which each transport maps with its
one table. Inference goes through the same engine calls as v1's servicer:
IMAGE / IMAGE_ENCODED (+ ROIS, ALIGNMENT) -> engine.classify per image, the
model's own input -> engine.infer_tensors (inputs.py).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from importlib import metadata as package_metadata

import numpy as np

from roiclass.server.domain import RequestLimits
from roiclass.server.engine import InferenceOutput
from roiclass.server.errors import FailedPrecondition, InvalidArgument, NotFound, status_code
from roiclass.server.oip import inputs as oip_inputs
from roiclass.server.oip import views
from roiclass.server.oip.outputs import RequestedOutput, check_outputs, output_tensor
from roiclass.server.oip.statistics import RequestStatistics
from roiclass.server.oip.tensors import Tensor
from roiclass.server.states import ModelState
from roiclass.server.versions import version_key

log = logging.getLogger(__name__)

SERVER_NAME = "roiclass"
# "<model>.tensors": the model's raw-tensor mode alone. Its metadata and config list only
# the model's own input, so tools that fill every listed input with random data
# (perf_analyzer --input-data random) drive the model directly.
TENSORS_VIEW = ".tensors"
EXTENSIONS = ("classification", "model_repository", "model_configuration", "statistics",
              "binary_tensor_data")

__all__ = ["InferRequest", "InferResponse", "InferenceProtocol", "RequestedOutput", "Tensor"]


@dataclass
class InferRequest:
    model: str
    version: str = ""
    id: str = ""
    inputs: list[Tensor] = field(default_factory=list)
    outputs: list[RequestedOutput] = field(default_factory=list)  # [] = every output
    parameters: dict = field(default_factory=dict)


@dataclass
class InferResponse:
    model: str
    version: str
    id: str
    outputs: list[Tensor]
    parameters: dict = field(default_factory=dict)


def _package_version() -> str:
    try:
        return package_metadata.version("roiclass")
    except package_metadata.PackageNotFoundError:  # a source tree without an install
        return "0+unknown"


class InferenceProtocol:
    def __init__(self, engine, manager, limits: RequestLimits, observer=None,
                 on_models_changed: Callable[[], Awaitable[None]] | None = None):
        self._engine = engine
        self._manager = manager
        self._limits = limits
        self._observer = observer  # RequestObserver: each inference is one request
        self._on_models_changed = on_models_changed  # e.g. the health service's update
        self.stats = RequestStatistics()
        self._version = _package_version()

    # -- server ----------------------------------------------------------------
    def server_metadata(self) -> dict:
        return {"name": SERVER_NAME, "version": self._version, "extensions": list(EXTENSIONS)}

    def live(self) -> bool:
        return True  # the process answers: live

    def ready(self) -> bool:
        """Every model (but those unloaded on request) has a READY version, as Triton's
        server readiness: unloading a model on request leaves the server ready."""
        ready: dict[str, bool] = {}
        for st in self._manager.statuses():
            if st.state != ModelState.UNLOADED:
                ready[st.name] = ready.get(st.name, False) or st.state == ModelState.READY
        return all(ready.values())

    # -- models ----------------------------------------------------------------
    def _statuses(self, name: str) -> list:
        statuses = [st for st in self._manager.statuses() if st.name == name]
        if not statuses and not self._manager.knows(name):
            known = ", ".join(sorted({st.name for st in self._manager.statuses()})) or "none"
            raise NotFound(f"model {name!r} not found; available models: {known}")
        return statuses

    def _view(self, name: str) -> tuple[str, bool]:
        """(the model's name, whether `name` is its TENSORS_VIEW); a real model of that name wins."""
        if name.endswith(TENSORS_VIEW) and not self._manager.knows(name):
            return name[:-len(TENSORS_VIEW)], True
        return name, False

    def model_ready(self, name: str, version: str = "") -> bool:
        name, _ = self._view(name)
        return any(st.state == ModelState.READY and version in ("", st.version)
                   for st in self._statuses(name))

    def _model(self, name: str, version: str = ""):
        if not name:
            raise InvalidArgument.for_field("model_name", "is required; models: " + ", ".join(
                sorted({st.name for st in self._manager.statuses()})))
        return self._manager.resolve(name, version)

    def model_metadata(self, name: str, version: str = "") -> dict:
        base, tensors_only = self._view(name)
        model = self._model(base, version)
        versions = sorted((st.version for st in self._statuses(base) if st.state == ModelState.READY),
                          key=version_key)
        return views.metadata(model, versions, name, tensors_only)

    def model_config(self, name: str, version: str = "") -> dict:
        base, tensors_only = self._view(name)
        return views.config(self._model(base, version), name, tensors_only)

    # -- inference -------------------------------------------------------------
    async def infer(self, request: InferRequest, *, deadline: float | None = None, caller: str = "",
                    is_cancelled: Callable[[], bool] | None = None) -> InferResponse:
        """deadline: time.monotonic() seconds; caller: server.callers' id (fair sharing)."""
        started = time.perf_counter_ns()
        version = ""
        base, tensors_only = self._view(request.model)  # metrics and statistics count the model
        try:
            model = self._model(base, request.version)
            version = model.version
            if model.spec.detector is not None:  # its rows are raw boxes, not the metadata's classes
                raise FailedPrecondition(
                    f"model {base!r} is a detector ([detector] in its config): the Open Inference Protocol "
                    "serves classifiers; send it as `detector` of an ObjectClassifier request")
            response = await self._infer(model, tensors_only, request, deadline, caller, is_cancelled, started)
        except Exception as exc:
            if version:
                self.stats.fail(base, version, time.perf_counter_ns() - started)
            self._observe(base, "", status_code(exc).name, started)
            raise
        self._observe(base, version, "OK", started)
        return response

    async def _infer(self, model, tensors_only: bool, request: InferRequest, deadline, caller, is_cancelled,
                     started: int) -> InferResponse:
        inputs: dict[str, Tensor] = {}
        for t in request.inputs:
            if t.name in inputs:
                raise InvalidArgument.for_field("inputs", f"input {t.name!r} is given twice")
            inputs[t.name] = t
        allowed = (model.io.input_name,) if tensors_only else (*views.TENSORS, model.io.input_name)
        unknown = [n for n in inputs if n not in allowed]
        if unknown:
            raise InvalidArgument.for_field("inputs", f"input {unknown[0]!r} is not an input of model "
                                                      f"{request.model!r}; allowed: {', '.join(allowed)}")
        outputs = check_outputs(request.outputs)

        lead: tuple[int, ...] = ()

        def submit(flag: Callable[[], bool]) -> list[Future]:
            nonlocal lead
            cancelled = flag if is_cancelled is None else (lambda: flag() or is_cancelled())
            futures, lead = self._submit(model, inputs, deadline, cancelled, caller)
            return futures

        results = await _await_all(submit)
        t_out = time.perf_counter_ns()
        probs = results[0].probabilities if len(results) == 1 else np.concatenate(
            [r.probabilities for r in results])
        tensors = [output_tensor(o, probs, model.spec.classes, lead) for o in outputs]
        done = time.perf_counter_ns()
        self.stats.success(model.name, model.version, done - started,
                           max(r.queue_us for r in results), sum(r.preprocess_us for r in results),
                           max(r.inference_us for r in results), done - t_out)
        return InferResponse(request.model, model.version, request.id, tensors)

    def _submit(self, model, inputs: dict[str, Tensor], deadline, is_cancelled,
                caller) -> tuple[list[Future], tuple[int, ...]]:
        """The engine calls, and the leading dimensions of the outputs (rows: (N,) or (B, N))."""
        raw = inputs.get(model.io.input_name)
        if raw is not None:
            if len(inputs) > 1:
                others = ", ".join(n for n in inputs if n != raw.name)
                raise InvalidArgument.for_field("inputs", f"the model input {raw.name} (raw-tensor mode) "
                                                          f"goes alone; also given: {others}")
            tensors = oip_inputs.model_tensors(raw, model)
            return [self._engine.infer_tensors(model, tensors, deadline=deadline, is_cancelled=is_cancelled,
                                               caller=caller)], (len(tensors),)
        jobs, lead = oip_inputs.image_jobs(inputs, self._limits)
        return [self._engine.classify(model, job.array, job.pixel_format, job.rois, deadline=deadline,
                                      is_cancelled=is_cancelled, caller=caller) for job in jobs], lead

    def _observe(self, model: str, version: str, code: str, started: int) -> None:
        if self._observer is not None:
            self._observer.observe(model, version, code, (time.perf_counter_ns() - started) / 1e9)

    # -- statistics ------------------------------------------------------------
    def statistics(self, name: str = "", version: str = "") -> list[dict]:
        """Per loaded (READY) version; name "" = every model."""
        asked = name
        name, tensors_only = self._view(name)
        if name:
            statuses = self._statuses(name)
            if version and not any(st.version == version for st in statuses):
                raise NotFound(f"model {name!r} has no version {version!r}; versions: "
                               f"{', '.join(sorted((st.version for st in statuses), key=version_key))}")
        else:
            statuses = self._manager.statuses()
        out = []
        for st in statuses:
            if st.state != ModelState.READY or (version and st.version != version):
                continue
            try:
                counters = self._engine.counters(st.name, st.version)
            except NotFound:  # unloaded meanwhile
                continue
            entry = self.stats.snapshot(st.name, st.version, counters)
            if tensors_only:
                entry["name"] = asked  # clients look for the name they asked for (perf_analyzer)
            out.append(entry)
        return out

    # -- repository ------------------------------------------------------------
    def repository_index(self, ready_only: bool = False) -> list[dict]:
        return [views.index_entry(st) for st in self._manager.statuses()
                if not ready_only or st.state == ModelState.READY]

    async def load(self, name: str, files: dict[str, bytes] | None = None) -> None:
        """Loads (or reloads) the model's versions from its source: NotFound when no source has it.
        files (Triton's `file:<path>` load parameters): the model sent as files, written into the
        server's upload folder and served from there (ModelManager.upload_model)."""
        loop = asyncio.get_running_loop()
        if files:
            await loop.run_in_executor(None, self._manager.upload_model, name, files)
            versions = [st for st in self._manager.statuses() if st.name == name]
            if not any(st.state == ModelState.READY for st in versions):  # as Triton: the load failed
                reasons = "; ".join(f"version {st.version}: {st.state} {st.reason}" for st in versions)
                raise FailedPrecondition(f"model {name!r} was uploaded but did not load: {reasons or 'no version'}")
        else:
            await loop.run_in_executor(None, self._manager.load_model, name)
        await self._models_changed()

    async def unload(self, name: str) -> None:
        """Unloads every version of the model (in-flight requests finish); it stays unloaded
        (repository polls and ReloadModels skip it) until load(name)."""
        await asyncio.get_running_loop().run_in_executor(None, self._manager.unload_model, name)
        await self._models_changed()

    async def _models_changed(self) -> None:
        if self._on_models_changed is not None:
            await self._on_models_changed()


async def _await_all(submit: Callable[[Callable[[], bool]], list[Future]]) -> list[InferenceOutput]:
    """Awaits the engine futures submit(is_cancelled) returns; when this task is cancelled
    (the client went away) the engine drops the request's queued items."""
    cancelled = False
    futures = submit(lambda: cancelled)
    try:
        return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))
    except BaseException:
        cancelled = True
        for f in futures:
            f.cancel()
        raise
