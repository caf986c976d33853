"""One model version's lifecycle: initialize (sessions, warm-up, golden image,
batch cap), serve (submit to its queue; workers in worker.py run it), finalize
(drain, stop, free). States are ModelState; the scheduler is the queue and its
policy (batcher.py, policy.py), outside the model.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

import numpy as np

from roiclass.ext import preprocess_rois
from roiclass.server import errors
from roiclass.server.engine import channels, yuv
from roiclass.server.engine.batcher import CallerLimit, Job, WorkQueue
from roiclass.server.engine.config import EngineConfig, InferenceOutput
from roiclass.server.engine.counters import Counters
from roiclass.server.engine.devices import CPU, SessionFactory
from roiclass.server.engine.faults import InjectedFaults
from roiclass.server.engine.fill import RoiPayload, TensorPayload, preprocess_error
from roiclass.server.engine.instance import Instance
from roiclass.server.engine.policy import PeakOutstandingPolicy
from roiclass.server.engine.probe import preferred_batch
from roiclass.server.engine.version_metrics import VersionMetrics
from roiclass.server.engine.worker import Workers, softmax_rows
from roiclass.server.formats import PixelFormat
from roiclass.server.geometry import roi_rows
from roiclass.server.images import decode_file
from roiclass.server.metrics import Metrics
from roiclass.server.models.onnx_info import model_io
from roiclass.server.models.spec import ModelIO, ModelSpec
from roiclass.server.states import ModelState

log = logging.getLogger(__name__)


@dataclass
class EngineContext:
    """What every model version shares with the engine."""
    config: EngineConfig
    factory: SessionFactory
    metrics: Metrics
    devices: list[str]
    faults: InjectedFaults | None = None  # EngineConfig.fault_injection


class LoadedModel:
    """A model version; the handle Engine.resolve returns. Read-only for callers:
    name, version, spec, state, reason, instances, max_batch (what the queue cuts),
    model_max_batch (the model's), item_shape, dtype, num_classes."""

    def __init__(self, spec: ModelSpec, ctx: EngineContext, publish: bool = True):
        self.spec = spec
        self.name = spec.name
        self.version = spec.version
        self.state = ModelState.LOADING
        self.reason = ""
        self.instances: list[Instance] = []
        self.io: ModelIO | None = None  # the ONNX input facts, known once load() starts
        self.model_max_batch = 1
        self.num_classes = len(spec.classes)
        self.counters = Counters()
        self.faults = ctx.faults
        self._ctx = ctx
        self._kargs: dict[PixelFormat | str, channels.KernelArgs] = {}
        # The kernel's options shared by every request (the per-format ones are KernelArgs).
        self.kernel_options = dict(layout=spec.layout, resize=spec.resize,
                                   crop_fraction=spec.crop_fraction, border=spec.border,
                                   antialias=True, num_threads=ctx.config.preprocess_threads)
        self.vm = VersionMetrics(ctx.metrics, self.name, self.version, publish)
        self.queue = WorkQueue(max(1, spec.max_queue_size),
                               PeakOutstandingPolicy(1, spec.max_queue_delay_us / 1e6), self._dropped,
                               max_per_caller=ctx.config.max_inflight_rois_per_client)
        self.workers = Workers(self)
        self._set_state(ModelState.LOADING)

    @property
    def max_batch(self) -> int:
        return self.queue.policy.max_batch

    @property
    def item_shape(self) -> tuple[int, ...]:
        return self.io.item_shape if self.io is not None else ()

    @property
    def row_width(self) -> int:
        """Floats per item in a result row: the classes, or a detector's whole output (boxes)."""
        det = self.spec.detector
        return int(np.prod(det.output_shape)) if det is not None else self.num_classes

    @property
    def dtype(self) -> np.dtype:
        return self.io.dtype if self.io is not None else np.dtype(np.float32)

    # -- initialize ------------------------------------------------------------
    def load(self) -> None:
        """Sessions, warm-up, golden image; READY or FAILED(reason). Never raises."""
        t0 = time.monotonic()
        try:
            self._resolve_io()
            self._create_instances(self._ctx.devices)
            for inst in self.instances:
                self._warm_up(inst)
            self._set_batch_cap()
            self.workers.start(self.instances)
            self.vm.queue_depth(lambda: self.queue.depth)
        except Exception as exc:  # a broken model must not take the server down
            self.reason = f"{type(exc).__name__}: {exc}" if not isinstance(
                exc, (ValueError, errors.RoiclassError)) else str(exc)
            log.error("model %s version %s FAILED: %s", self.name, self.version, self.reason)
            self._close_instances()
            self._set_state(ModelState.FAILED)
            return
        self._set_state(ModelState.READY)
        log.info("model %s version %s READY on %s (max batch %d of %d) in %.2f s", self.name,
                 self.version, ", ".join(sorted({i.device for i in self.instances})),
                 self.max_batch, self.model_max_batch, time.monotonic() - t0)

    def _create_instances(self, devices: list[str]) -> list[Instance]:
        factory, spec = self._ctx.factory, self.spec
        per_device = spec.instances_per_device or self._ctx.config.instances_per_device
        probes = {}
        for dev in factory.usable_devices(devices):
            if dev != CPU:  # the first session tells whether CUDA really loads there
                sess, place = factory.create(spec.onnx_path, dev, per_device)
                if place.device != CPU:
                    probes[dev] = (sess, place)
        usable = factory.usable_devices(devices)
        cpu_count = per_device if CPU in usable else 0
        new = []
        for dev in usable:
            for k in range(per_device):
                if k == 0 and dev in probes:
                    sess, place = probes[dev]
                else:
                    sess, place = factory.create(spec.onnx_path, dev, cpu_count)
                new.append(Instance(len(self.instances) + len(new), sess, place, self.io,
                                    self.model_max_batch))
        self.instances.extend(new)
        self.vm.track(new)
        return new

    def _resolve_io(self) -> None:
        """The ONNX input facts (the spec's, or read once for a hand-built spec)."""
        self.io = self.spec.io or model_io(self.spec)
        self.model_max_batch = self.io.fixed_batch or max(1, self.spec.max_batch_size)
        self.queue.policy.max_batch = self.model_max_batch

    def _warm_up(self, inst: Instance) -> None:
        inst.batch[...] = 0
        fixed = self.io.fixed_batch
        for n in sorted({1, self.model_max_batch}):
            out = inst.run(fixed or n)
            self.counters.add("warmup_runs")
            det = self.spec.detector
            if det is not None:  # boxes, decoded by the pipeline (server/pipeline/detect)
                if out.shape != (fixed or n,) + det.output_shape:
                    raise ValueError(f"detector output has shape {out.shape}; expected (batch, "
                                     f"{', '.join(map(str, det.output_shape))})")
                continue
            if out.ndim != 2 or out.shape[0] != (fixed or n):
                raise ValueError(f"model output has shape {out.shape}; expected (batch, classes)")
            if self.num_classes and out.shape[1] != self.num_classes:
                raise ValueError(f"model outputs {out.shape[1]} classes but the config names "
                                 f"{self.num_classes}")
            self.num_classes = out.shape[1]
        if (self.spec.golden_image is not None and self.spec.golden_class is not None
                and self.spec.detector is None):
            self._check_golden(inst)

    def _set_batch_cap(self) -> None:
        top = self.model_max_batch
        cap, cfg = top, self._ctx.config.cpu_batch_cap
        on_cpu = all(i.device == CPU for i in self.instances)
        # A CPU batch's time grows with its size: a batch several callers share
        # is one round of their turns, not filled up (lanes.py).
        self.queue.fill_shared = bool(self.io.fixed_batch) or not on_cpu  # padded anyway
        if not self.io.fixed_batch and on_cpu:
            if cfg > 0:
                cap = min(cfg, top)
            elif cfg == -1 and top > 1:
                cap, per_item = preferred_batch(self.instances[0].run, top)
                log.info("model %s/%s: CPU batch cap %d of %d (us per item by batch: %s)",
                         self.name, self.version, cap, top,
                         ", ".join(f"{n}: {1e6 * t:.0f}" for n, t in per_item.items()))
        self.queue.policy.max_batch = cap

    def _check_golden(self, inst: Instance) -> None:
        """The golden image, decoded as an encoded request's image is, must get its class."""
        spec = self.spec
        image, fmt = decode_file(spec.golden_image)
        h, w = image.shape[:2]
        rois = np.array([[0.0, 0.0, w, h, 0.0]])
        self._kernel(image, self._kernel_args(fmt), rois, inst.batch[:1])
        probs = self.finish(inst.run(self.io.fixed_batch or 1)[:1])[0]
        got = int(np.argmax(probs))
        if got != spec.golden_class:
            raise ValueError(
                f"golden image {spec.golden_image.name} classified as {self._cls(got)} "
                f"(p={probs[got]:.3f}) on {inst.device} instance {inst.index}; expected "
                f"{self._cls(spec.golden_class)}")

    def _cls(self, k: int) -> str:
        names = self.spec.classes
        return f"class {k} ({names[k]})" if 0 <= k < len(names) else f"class {k}"

    # -- serve -----------------------------------------------------------------
    def _kernel_args(self, pixel_format: PixelFormat | str) -> channels.KernelArgs:
        ka = self._kargs.get(pixel_format)
        if ka is None:  # a YUV 4:2:0 format's are its planes' and the conversion (yuv.py)
            make = yuv.kernel_args if channels.pixel_format(pixel_format).chroma else channels.kernel_args
            ka = self._kargs[pixel_format] = make(self.spec, pixel_format)
        return ka

    def submit_rois(self, image: np.ndarray, pixel_format: PixelFormat | str, rois: np.ndarray,
                    deadline: float | None, is_cancelled: Callable[[], bool] | None,
                    caller: str = "", polygons=None) -> Future:
        kargs = self._kernel_args(pixel_format)
        channels.check_image(image, pixel_format)
        # The rows' shape and values are the kernel's to check (in the batch: a
        # request failing them fails alone with INVALID_ARGUMENT).
        rois = np.ascontiguousarray(rois, dtype=np.float64)
        _check_polygons(polygons, len(rois))
        payload = RoiPayload(image, kargs, rois, self.row_width, polygons)
        return self._submit(Job(len(rois), payload, deadline, is_cancelled, caller), len(rois))

    def submit_tensors(self, tensors: np.ndarray, deadline: float | None,
                       is_cancelled: Callable[[], bool] | None, caller: str = "") -> Future:
        tensors = np.asarray(tensors)
        if tensors.ndim != 1 + len(self.item_shape) or tensors.shape[1:] != self.item_shape:
            raise errors.InvalidArgument.for_field(
                "tensors", f"expected shape (N, {', '.join(map(str, self.item_shape))}) "
                f"({self.spec.layout}); got {tensors.shape}")
        payload = TensorPayload(tensors, self.row_width)
        return self._submit(Job(len(tensors), payload, deadline, is_cancelled, caller),
                            len(tensors))

    def _submit(self, job: Job, n: int) -> Future:
        if n == 0:
            job.resolve()
            return job.future
        try:
            self.queue.put(job, n)
        except CallerLimit as exc:
            self.counters.add("rejected_client_limit", n)
            self.vm.dropped["client_limit"].inc(n)
            job.fail(exc)
        except errors.ResourceExhausted as exc:
            self.counters.add("rejected", n)
            self.vm.dropped["overflow"].inc(n)
            job.fail(exc)
        except errors.RoiclassError as exc:
            job.fail(exc)
        return job.future

    def preprocess(self, image: np.ndarray, pixel_format: PixelFormat | str,
                   rois: np.ndarray, polygons=None) -> np.ndarray:
        kargs = self._kernel_args(pixel_format)
        channels.check_image(image, pixel_format)
        rois = roi_rows(rois)
        _check_polygons(polygons, len(rois))
        out = np.empty((len(rois),) + self.item_shape, self.dtype)
        try:
            self._kernel(image, kargs, rois, out, polygons)
        except Exception as exc:  # the same status as in a batch (fill.py)
            raise preprocess_error(exc, 0, len(rois)) from None
        return out

    def _kernel(self, image, kargs: channels.KernelArgs, rois: np.ndarray, out: np.ndarray,
                polygons=None):
        if isinstance(kargs, yuv.YuvArgs):
            return yuv.preprocess(image, kargs, rois, out, polygons, self.kernel_options)
        preprocess_rois(image, rois, out, channel_map=kargs.channel_map, mean=kargs.mean,
                        std=kargs.std, fill=kargs.fill, polygons=polygons, **self.kernel_options)

    def finish(self, out: np.ndarray) -> np.ndarray:
        """Model outputs -> probabilities (float32 rows; a detector's output flattened per item)."""
        out = out.astype(np.float32, copy=False).reshape(len(out), -1)
        return softmax_rows(out) if self.spec.softmax else out

    def _dropped(self, job: Job, why: errors.RoiclassError) -> None:
        if job.fail(why):
            reason = "deadline" if isinstance(why, errors.DeadlineExceeded) else "cancelled"
            self.counters.add(f"dropped_{reason}")
            self.vm.dropped[reason].inc()

    # -- failover hooks (called by the workers) --------------------------------
    def add_cpu_instances(self) -> list[Instance]:
        """CPU instances after every other one failed; [] when they cannot be made."""
        log.warning("model %s/%s: no instance left; falling back to CPU instances",
                    self.name, self.version)
        start = len(self.instances)
        try:
            new = self._create_instances([CPU])
            for inst in new:
                self._warm_up(inst)
        except Exception as exc:
            log.error("model %s/%s: CPU fallback failed: %s", self.name, self.version, exc)
            for inst in self.instances[start:]:
                inst.healthy = False
            return []
        return new

    def fail_serving(self, reason: str, pending: list) -> None:
        """No instance left: FAILED, and every queued or pending chunk UNAVAILABLE."""
        self.reason = reason
        self._set_state(ModelState.FAILED)
        self.queue.closed = True
        err = errors.Unavailable(f"model {self.name} version {self.version} is "
                                 f"unavailable: {reason}")
        for c in pending + self.queue.drain():
            self.workers.fail_items(c.job, err)

    # -- finalize --------------------------------------------------------------
    def unload(self, grace_s: float = 30.0) -> None:
        """Lets queued and in-flight items finish (new ones still accepted while
        draining, so a request that resolved this version just before is not
        lost), then stops the workers and frees the sessions."""
        self._set_state(ModelState.UNLOADED)
        end = time.monotonic() + grace_s
        quiet = 0
        while (time.monotonic() < end and self.workers.running
               and any(i.healthy for i in self.instances)):
            quiet = quiet + 1 if self.queue.idle() else 0
            if quiet >= 5:  # ~25 ms with nothing queued or running
                break
            time.sleep(0.005)
        self.queue.closed = True
        err = errors.Unavailable(f"model {self.name} version {self.version} was unloaded")
        for c in self.queue.drain():
            self.workers.fail_items(c.job, err)
        self.workers.stop(end)
        self._close_instances()
        self._set_state(ModelState.UNLOADED)

    def publish_metrics(self, on: bool) -> None:
        """Takes over (True) or leaves (False) the version's gauges; see Engine.load.
        Leaving removes this load's instance series first, so instances the
        next load does not have (a CPU fallback's, say) do not linger."""
        if not on:
            self.vm.forget(self.instances)
        self.vm.publish = on
        if on:
            self.vm.track(self.instances)
            self.vm.queue_depth(lambda: self.queue.depth)
            self._set_state(self.state)

    def _close_instances(self) -> None:
        self.vm.forget(self.instances)
        for inst in self.instances:
            inst.close()

    def _set_state(self, state: ModelState) -> None:
        self.state = state
        self.vm.state(state)


def _check_polygons(polygons, n: int) -> None:
    """One entry (None or a polygon) per ROI; the rings themselves are the kernel's to check."""
    if polygons is not None and len(polygons) != n:
        raise errors.InvalidArgument.for_field(
            "polygons", f"has {len(polygons)} entries; one per ROI ({n}) expected (None = no mask)")
