"""One loaded model version: its instances, queue, workers, warm-up and failover."""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

import numpy as np

from roiclass.ext import preprocess_rois
from roiclass.server import errors
from roiclass.server.engine import channels
from roiclass.server.engine.batcher import Chunk, Job, WorkQueue
from roiclass.server.engine.config import EngineConfig, InferenceOutput
from roiclass.server.engine.devices import CPU, SessionFactory
from roiclass.server.engine.fill import fill_batch
from roiclass.server.engine.instance import Instance, is_device_error
from roiclass.server.engine.probe import preferred_batch
from roiclass.server.metrics import Metrics
from roiclass.server.models.spec import ModelSpec

log = logging.getLogger(__name__)

LOADING, READY, FAILED, UNLOADED = "LOADING", "READY", "FAILED", "UNLOADED"
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


@dataclass
class EngineContext:
    """What every model version shares with the engine."""
    config: EngineConfig
    factory: SessionFactory
    metrics: Metrics
    devices: list[str]


class LoadedModel:
    """A model version; the handle Engine.resolve returns (.spec, .name, .version)."""

    def __init__(self, spec: ModelSpec, ctx: EngineContext, publish: bool = True):
        self.spec = spec
        self.name = spec.name
        self.version = spec.version
        self.state = LOADING
        self.reason = ""
        self.instances: list[Instance] = []
        self.item_shape: tuple[int, ...] = ()
        self.dtype = np.dtype(np.float32)
        # The model's largest batch (the size of each instance's batch tensor) and
        # the largest the queue cuts: smaller on CPU where big batches are slower
        # per item (EngineConfig.cpu_batch_cap).
        self.model_max_batch = 1
        self.max_batch = 1
        self.num_classes = len(spec.classes)
        self.counters = {"batches": 0, "items": 0, "runs": 0, "max_batch": 0, "warmup_runs": 0,
                         "dropped_deadline": 0, "dropped_cancelled": 0, "rejected": 0,
                         "failed_items": 0, "retries": 0, "instance_failures": 0}
        self._ctx = ctx
        self._cfg = ctx.config
        self._m = ctx.metrics
        self._fixed_batch = 0
        self._kargs: dict[str, channels.KernelArgs] = {}
        # The kernel's options shared by every request (the per-format ones are KernelArgs).
        self._kernel_options = dict(layout=spec.layout, resize=spec.resize,
                                    crop_fraction=spec.crop_fraction, border=spec.border,
                                    antialias=True, num_threads=ctx.config.preprocess_threads)
        self._threads: list[threading.Thread] = []
        self._stop = False
        self._fell_back = False
        self._fail_lock = threading.Lock()
        self._cnt_lock = threading.Lock()
        self._poison: Callable[[np.ndarray], bool] | None = None
        # Whether this object owns the (model, version) gauges: a reload of a
        # serving version only takes them over once it replaces the old one.
        self._publish = publish
        self.queue = WorkQueue(max(1, spec.max_queue_size), 1, spec.max_queue_delay_us / 1e6,
                               self._dropped)
        labels = (self.name, self.version)
        self._h_queue = self._m.queue_time.labels(*labels)
        self._h_pre = self._m.preprocess_time.labels(*labels)
        self._h_inf = self._m.inference_time.labels(*labels)
        self._h_batch = self._m.batch_size.labels(*labels)
        self._c_dropped = {r: self._m.dropped.labels(*labels, r)
                           for r in ("deadline", "cancelled", "overflow", "failed")}
        self._set_state(LOADING)

    # -- loading ---------------------------------------------------------------
    def load(self) -> None:
        """Sessions, warm-up, golden image; READY or FAILED(reason). Never raises."""
        t0 = time.monotonic()
        try:
            self._create_instances(self._ctx.devices)
            for inst in self.instances:
                self._warm_up(inst)
            self._set_batch_cap()
            self._start_workers(self.instances)
        except Exception as exc:  # a broken model must not take the server down
            self.reason = f"{type(exc).__name__}: {exc}" if not isinstance(
                exc, (ValueError, errors.RoiclassError)) else str(exc)
            log.error("model %s version %s FAILED: %s", self.name, self.version, self.reason)
            self._close_instances()
            self._set_state(FAILED)
            return
        self._set_state(READY)
        log.info("model %s version %s READY on %s (max batch %d of %d) in %.2f s", self.name,
                 self.version, ", ".join(sorted({i.device for i in self.instances})),
                 self.max_batch, self.model_max_batch, time.monotonic() - t0)

    def _create_instances(self, devices: list[str]) -> None:
        factory, spec = self._ctx.factory, self.spec
        per_device = spec.instances_per_device or self._cfg.instances_per_device
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
                if not new and not self.instances:
                    self._read_io(sess)
                new.append(Instance(len(self.instances) + len(new), sess, place,
                                    (self.model_max_batch,) + self.item_shape, self.dtype))
        self.instances.extend(new)
        if self._publish:
            self._track(new)

    def _track(self, instances: list[Instance]) -> None:
        for inst in instances:
            self._m.track_instance(self.name, self.version, inst.device, inst.index,
                                   lambda i=inst: i.busy_s, lambda i=inst: i.healthy)

    def publish_metrics(self, on: bool) -> None:
        """Takes over (True) or leaves (False) the version's gauges; see Engine.load.
        Leaving removes this load's instance series first, so instances the
        next load does not have (a CPU fallback's, say) do not linger."""
        if not on and self._publish:
            for inst in self.instances:
                self._m.forget_instance(self.name, self.version, inst.device, inst.index)
        self._publish = on
        if on:
            self._track(self.instances)
            self._m.track_queue_depth(self.name, self.version, lambda: self.queue.depth)
            self._set_state(self.state)

    def _read_io(self, sess) -> None:
        """Input name/shape/dtype from the ONNX model, checked against the spec."""
        spec = self.spec
        inp = sess.get_inputs()[0]
        if inp.type not in _ORT_DTYPES:
            raise ValueError(f"model input {inp.name!r} is {inp.type}; supported: "
                             f"{', '.join(_ORT_DTYPES)}")
        self.dtype = np.dtype(_ORT_DTYPES[inp.type])
        if len(inp.shape) != 4:
            raise ValueError(f"model input {inp.name!r} has shape {inp.shape}; expected 4 dims "
                             f"({spec.layout})")
        if spec.layout not in ("NCHW", "NHWC"):
            raise ValueError(f"layout {spec.layout!r}: allowed NCHW, NHWC")
        want = ((spec.channels, spec.input_height, spec.input_width) if spec.layout == "NCHW"
                else (spec.input_height, spec.input_width, spec.channels))
        for got, exp, what in zip(inp.shape[1:], want, ("dim 1", "dim 2", "dim 3")):
            if isinstance(got, int) and got > 0 and got != exp:
                raise ValueError(f"model input {inp.name!r} shape {inp.shape} does not match the "
                                 f"config ({spec.layout} {want}) at {what}")
        self.item_shape = want
        first = inp.shape[0]
        self._fixed_batch = first if isinstance(first, int) and first > 0 else 0
        self.model_max_batch = self._fixed_batch or max(1, spec.max_batch_size)
        self.max_batch = self.queue.max_batch = self.model_max_batch

    def _warm_up(self, inst: Instance) -> None:
        inst.batch[...] = 0
        for n in sorted({1, self.model_max_batch}):
            out = inst.run(self._fixed_batch or n)
            self._count("warmup_runs")
            if out.ndim != 2 or out.shape[0] != (self._fixed_batch or n):
                raise ValueError(f"model output has shape {out.shape}; expected (batch, classes)")
            if self.num_classes and out.shape[1] != self.num_classes:
                raise ValueError(f"model outputs {out.shape[1]} classes but the config names "
                                 f"{self.num_classes}")
            self.num_classes = out.shape[1]
        if self.spec.golden_image is not None and self.spec.golden_class is not None:
            self._check_golden(inst)

    def _set_batch_cap(self) -> None:
        top = self.model_max_batch
        cap, cfg = top, self._cfg.cpu_batch_cap
        if not self._fixed_batch and all(i.device == CPU for i in self.instances):
            if cfg > 0:
                cap = min(cfg, top)
            elif cfg == -1 and top > 1:
                cap, per_item = preferred_batch(self.instances[0].run, top)
                log.info("model %s/%s: CPU batch cap %d of %d (us per item by batch: %s)",
                         self.name, self.version, cap, top,
                         ", ".join(f"{n}: {1e6 * t:.0f}" for n, t in per_item.items()))
        self.max_batch = self.queue.max_batch = cap

    def _check_golden(self, inst: Instance) -> None:
        from PIL import Image  # only needed at load

        spec = self.spec
        with Image.open(spec.golden_image) as im:
            if im.mode in ("I;16", "I;16L", "I"):
                image, fmt = np.asarray(im, dtype=np.uint16), "GRAY16"
            elif im.mode == "L":
                image, fmt = np.asarray(im), "GRAY8"
            else:
                image, fmt = np.asarray(im.convert("RGB")), "RGB8"
        h, w = image.shape[:2]
        rois = np.array([[0.0, 0.0, 0.0, w, h]])
        self._kernel(image, self._kernel_args(fmt), rois, inst.batch[:1])
        probs = self._finish(inst.run(self._fixed_batch or 1)[:1])[0]
        got = int(np.argmax(probs))
        if got != spec.golden_class:
            raise ValueError(
                f"golden image {spec.golden_image.name} classified as {self._cls(got)} "
                f"(p={probs[got]:.3f}) on {inst.device} instance {inst.index}; expected "
                f"{self._cls(spec.golden_class)}")

    def _cls(self, k: int) -> str:
        names = self.spec.classes
        return f"class {k} ({names[k]})" if 0 <= k < len(names) else f"class {k}"

    def _start_workers(self, instances: list[Instance]) -> None:
        for inst in instances:
            t = threading.Thread(target=self._work, args=(inst,), daemon=True,
                                 name=f"roiclass-{self.name}-{self.version}-{inst.index}")
            self._threads.append(t)
            t.start()
        if len(self._threads) == len(instances) and self._publish:  # first start only
            self._m.track_queue_depth(self.name, self.version, lambda: self.queue.depth)

    # -- submission ------------------------------------------------------------
    def _kernel_args(self, pixel_format: str) -> channels.KernelArgs:
        ka = self._kargs.get(pixel_format)
        if ka is None:
            ka = self._kargs[pixel_format] = channels.kernel_args(self.spec, pixel_format)
        return ka

    def submit_rois(self, image: np.ndarray, pixel_format: str, rois: np.ndarray,
                    deadline: float | None, is_cancelled: Callable[[], bool] | None) -> Future:
        kargs = self._kernel_args(pixel_format)
        channels.check_image(image, pixel_format)
        rois = np.asarray(rois, dtype=np.float64)
        if rois.ndim != 2 or rois.shape[1] != 5:
            raise errors.InvalidArgument.for_field(
                "rois", f"expected an (N, 5) array of x, y, angle, width, height; got {rois.shape}")
        job = Job(len(rois), self.num_classes, deadline, is_cancelled)
        job.image, job.kargs, job.rois = image, kargs, np.ascontiguousarray(rois)
        return self._submit(job, len(rois))

    def submit_tensors(self, tensors: np.ndarray, deadline: float | None,
                       is_cancelled: Callable[[], bool] | None) -> Future:
        tensors = np.asarray(tensors)
        if tensors.ndim != 1 + len(self.item_shape) or tensors.shape[1:] != self.item_shape:
            raise errors.InvalidArgument.for_field(
                "tensors", f"expected shape (N, {', '.join(map(str, self.item_shape))}) "
                f"({self.spec.layout}); got {tensors.shape}")
        job = Job(len(tensors), self.num_classes, deadline, is_cancelled)
        job.tensors = tensors
        return self._submit(job, len(tensors))

    def _submit(self, job: Job, n: int) -> Future:
        if n == 0:
            job.future.set_result(InferenceOutput(job.probs, 0, 0, 0))
            return job.future
        try:
            self.queue.put(job, n)
        except errors.ResourceExhausted as exc:
            self._count("rejected", n)
            self._c_dropped["overflow"].inc(n)
            job.fail(exc)
        except errors.RoiclassError as exc:
            job.fail(exc)
        return job.future

    def preprocess(self, image: np.ndarray, pixel_format: str, rois: np.ndarray) -> np.ndarray:
        kargs = self._kernel_args(pixel_format)
        channels.check_image(image, pixel_format)
        rois = np.ascontiguousarray(rois, dtype=np.float64).reshape(-1, 5)
        out = np.empty((len(rois),) + self.item_shape, self.dtype)
        self._kernel(image, kargs, rois, out)
        return out

    def _kernel(self, image, kargs: channels.KernelArgs, rois: np.ndarray, out: np.ndarray):
        preprocess_rois(image, rois, out, channel_map=kargs.channel_map, mean=kargs.mean,
                        std=kargs.std, fill=kargs.fill, **self._kernel_options)

    def _dropped(self, job: Job, why: errors.RoiclassError) -> None:
        if job.fail(why):
            reason = "deadline" if isinstance(why, errors.DeadlineExceeded) else "cancelled"
            self._count(f"dropped_{reason}")
            self._c_dropped[reason].inc()

    # -- workers ---------------------------------------------------------------
    def _work(self, inst: Instance) -> None:
        queue = self.queue
        stop = lambda: self._stop or not inst.healthy  # noqa: E731
        while True:
            batch = queue.take(stop)
            if batch is None:
                return
            if not batch:
                queue.finished()
                continue
            t0 = time.monotonic()
            try:
                self._run_batch(inst, batch, t0)
            except Exception:  # a bug here must not kill the worker silently
                log.exception("worker of %s/%s instance %d", self.name, self.version, inst.index)
                for c in batch:
                    c.job.fail(errors.Internal("internal error in the inference worker"))
            finally:
                inst.busy_s += time.monotonic() - t0
                queue.finished()

    def _run_batch(self, inst: Instance, batch: list[Chunk], t0: float) -> None:
        placed = fill_batch(inst.batch, batch, self._kernel_options, self._fail_items, self._poison)
        kept = [(c, off) for c, off in placed if off >= 0]
        if not kept:
            return
        off = sum(c.count for c, _ in kept)
        t1 = time.monotonic()
        try:
            out = inst.run(self._fixed_batch or off)
        except Exception as exc:
            if is_device_error(exc):
                self._instance_failed(inst, exc, [c for c, _ in kept])
            else:
                log.error("run failed on %s/%s: %s", self.name, self.version, exc)
                err = errors.Internal(f"inference failed: {exc}")
                for c, _ in kept:
                    self._fail_items(c.job, err)
            return
        t2 = time.monotonic()
        probs = self._finish(out[:off])
        cnt = self.counters
        with self._cnt_lock:
            cnt["batches"] += 1
            cnt["runs"] += 1
            cnt["items"] += off
            if off > cnt["max_batch"]:
                cnt["max_batch"] = off
        self._h_batch.observe(off)
        self._h_pre.observe(t1 - t0)
        self._h_inf.observe(t2 - t1)
        inf_s, per_item = t2 - t1, (t1 - t0) / off  # a request's preprocessing: its share
        for c, o in kept:
            self._h_queue.observe(t0 - c.enq_t)
            c.job.complete(c.start, probs[o:o + c.count], t0 - c.enq_t, per_item * c.count, inf_s)

    def _finish(self, out: np.ndarray) -> np.ndarray:
        out = out.astype(np.float32, copy=False)
        if not self.spec.softmax:
            return out
        e = np.exp(out - out.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        return e

    def _count(self, name: str, n: int = 1) -> None:
        with self._cnt_lock:  # workers, the event loop and the queue all count
            self.counters[name] += n

    def _fail_items(self, job: Job, exc: BaseException) -> None:
        if job.fail(exc):
            self._count("failed_items")
            self._c_dropped["failed"].inc()

    # -- failover --------------------------------------------------------------
    def _instance_failed(self, inst: Instance, exc: BaseException, chunks: list[Chunk]) -> None:
        """Takes the instance out; its batch is retried once on another one."""
        with self._fail_lock:
            inst.healthy = False
            self._count("instance_failures")
            self._m.instance_failures.labels(self.name, self.version, inst.device,
                                             str(inst.index)).inc()
            log.error("model %s/%s: instance %d on %s failed and leaves the pool: %s",
                      self.name, self.version, inst.index, inst.device, exc)
            retry = []
            for c in chunks:
                if c.job.done:
                    continue
                if c.attempt:
                    self._fail_items(c.job, errors.Unavailable(
                        f"model {self.name}/{self.version}: the batch failed on two instances "
                        f"({exc})"))
                else:
                    c.attempt = 1
                    retry.append(c)
            healthy = [i for i in self.instances if i.healthy]
            if not healthy and self.spec.allow_cpu_fallback and not self._fell_back:
                self._fell_back = True
                healthy = self._fall_back_to_cpu()
            if healthy:
                self._count("retries", len(retry))
                self.queue.requeue_front(retry)
                return
            self.reason = (f"no healthy instance left (last failure on {inst.device}: {exc})"
                           + ("" if self.spec.allow_cpu_fallback else
                              "; CPU fallback disabled by the model config"))
            self._set_state(FAILED)
            self.queue.closed = True
            leftovers = retry + self.queue.drain()
            err = errors.Unavailable(f"model {self.name} version {self.version} is "
                                     f"unavailable: {self.reason}")
            for c in leftovers:
                self._fail_items(c.job, err)

    def _fall_back_to_cpu(self) -> list[Instance]:
        log.warning("model %s/%s: no instance left; falling back to CPU instances",
                    self.name, self.version)
        start = len(self.instances)
        try:
            self._create_instances([CPU])
            new = self.instances[start:]
            for inst in new:
                self._warm_up(inst)
        except Exception as exc:
            log.error("model %s/%s: CPU fallback failed: %s", self.name, self.version, exc)
            for inst in self.instances[start:]:
                inst.healthy = False
            return []
        self._start_workers(new)
        return new

    # -- unloading -------------------------------------------------------------
    def unload(self, grace_s: float = 30.0) -> None:
        """Lets queued and in-flight items finish (new ones still accepted while
        draining, so a request that resolved this version just before is not
        lost), then stops the workers and frees the sessions."""
        self._set_state(UNLOADED)
        end = time.monotonic() + grace_s
        quiet = 0
        while time.monotonic() < end and self._threads and any(i.healthy for i in self.instances):
            quiet = quiet + 1 if self.queue.idle() else 0
            if quiet >= 5:  # ~25 ms with nothing queued or running
                break
            time.sleep(0.005)
        self.queue.closed = True
        err = errors.Unavailable(f"model {self.name} version {self.version} was unloaded")
        for c in self.queue.drain():
            self._fail_items(c.job, err)
        self._stop = True
        with self.queue.cond:
            self.queue.cond.notify_all()
        for t in self._threads:
            t.join(timeout=max(0.1, end - time.monotonic()))
        self._threads = []
        self._close_instances()
        self._set_state(UNLOADED)

    def _close_instances(self) -> None:
        for inst in self.instances:
            if self._publish:
                self._m.forget_instance(self.name, self.version, inst.device, inst.index)
            inst.close()

    def _set_state(self, state: str) -> None:
        self.state = state
        if self._publish:
            self._m.set_model_state(self.name, self.version, state)
