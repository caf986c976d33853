"""The run loop of a model version's instances: take a batch, fill, run, hand out
rows; failover to the other instances and, when none is left, to the CPU.

One thread per instance. A batch's failure is contained: a request whose
preprocessing fails fails alone (fill.py); a device error takes the instance
out of the pool and retries its batch once elsewhere; any other run error
fails that batch's requests only.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from roiclass.server import errors
from roiclass.server.engine.batcher import Chunk, Job
from roiclass.server.engine.fill import fill_batch
from roiclass.server.engine.instance import InjectedDeviceFault, Instance, is_device_error

if TYPE_CHECKING:
    from roiclass.server.engine.model import LoadedModel

log = logging.getLogger(__name__)


class Workers:
    def __init__(self, model: "LoadedModel"):
        self.model = model
        self._threads: list[threading.Thread] = []
        self._stop = False
        self._fail_lock = threading.Lock()
        self._fell_back = False

    def start(self, instances: list[Instance]) -> None:
        m = self.model
        for inst in instances:
            t = threading.Thread(target=self._work, args=(inst,), daemon=True,
                                 name=f"roiclass-{m.name}-{m.version}-{inst.index}")
            self._threads.append(t)
            t.start()

    def stop(self, until: float) -> None:
        self._stop = True
        with self.model.queue.cond:
            self.model.queue.cond.notify_all()
        for t in self._threads:
            t.join(timeout=max(0.1, until - time.monotonic()))
        self._threads = []

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def fail_items(self, job: Job, exc: BaseException) -> None:
        if job.fail(exc):
            self.model.counters.add("failed_items")
            self.model.vm.dropped["failed"].inc()

    # -- the loop --------------------------------------------------------------
    def _work(self, inst: Instance) -> None:
        queue = self.model.queue
        stop = lambda: self._stop or not inst.healthy  # noqa: E731
        while True:
            batch = queue.take(stop)
            if batch is None:
                return
            if not batch:  # every job it met had ended: nothing was taken, nothing to finish
                continue
            t0 = time.monotonic()
            try:
                self._run_batch(inst, batch, t0)
            except Exception:  # a bug here must not kill the worker silently
                log.exception("worker of %s/%s instance %d", self.model.name, self.model.version,
                              inst.index)
                for c in batch:
                    c.job.fail(errors.Internal("internal error in the inference worker"))
            finally:
                inst.busy_s += time.monotonic() - t0
                queue.finished()

    def _run_batch(self, inst: Instance, batch: list[Chunk], t0: float) -> None:
        m = self.model
        poison = m.faults.poison(m) if m.faults is not None else None
        placed = fill_batch(inst.batch, batch, m.kernel_options, self.fail_items, poison)
        kept = [(c, off) for c, off in placed if off >= 0]
        if not kept:
            return
        n = sum(c.count for c, _ in kept)
        t1 = time.monotonic()
        try:
            if m.faults is not None and m.faults.take_run(inst):
                raise InjectedDeviceFault(f"injected fault on instance {inst.index} "
                                          f"({inst.device}): simulated CUDA failure")
            out = inst.run(m.io.fixed_batch or n)
        except Exception as exc:
            if is_device_error(exc):
                self._instance_failed(inst, exc, [c for c, _ in kept])
            else:
                log.error("run failed on %s/%s: %s", m.name, m.version, exc)
                err = errors.Internal(f"inference failed: {exc}")
                for c, _ in kept:
                    self.fail_items(c.job, err)
            return
        t2 = time.monotonic()
        probs = m.finish(out[:n])
        m.counters.batch(n)
        vm = m.vm
        vm.batch_size.observe(n)
        vm.preprocess_time.observe(t1 - t0)
        vm.inference_time.observe(t2 - t1)
        inf_s, per_item = t2 - t1, (t1 - t0) / n  # a request's preprocessing: its share
        for c, o in kept:
            vm.queue_time.observe(t0 - c.enq_t)
            c.job.payload.probs[c.start:c.start + c.count] = probs[o:o + c.count]
            c.job.complete(c.count, t0 - c.enq_t, per_item * c.count, inf_s)

    # -- failover --------------------------------------------------------------
    def _instance_failed(self, inst: Instance, exc: BaseException, chunks: list[Chunk]) -> None:
        """Takes the instance out; its batch is retried once on another one."""
        m = self.model
        with self._fail_lock:
            inst.healthy = False
            m.counters.add("instance_failures")
            m.vm.instance_failed(inst)
            log.error("model %s/%s: instance %d on %s failed and leaves the pool: %s",
                      m.name, m.version, inst.index, inst.device, exc)
            retry = self._retries(chunks, exc)
            healthy = [i for i in m.instances if i.healthy]
            if not healthy and m.spec.allow_cpu_fallback and not self._fell_back:
                self._fell_back = True
                healthy = m.add_cpu_instances()
                self.start(healthy)
            if healthy:
                m.counters.add("retries", len(retry))
                m.queue.requeue_front(retry)
                return
            reason = (f"no healthy instance left (last failure on {inst.device}: {exc})"
                      + ("" if m.spec.allow_cpu_fallback else
                         "; CPU fallback disabled by the model config"))
            m.fail_serving(reason, retry)

    def _retries(self, chunks: list[Chunk], exc: BaseException) -> list[Chunk]:
        """The chunks to run again: each gets one more attempt, then UNAVAILABLE."""
        m = self.model
        retry = []
        for c in chunks:
            if c.job.done:
                continue
            if c.attempt:
                self.fail_items(c.job, errors.Unavailable(
                    f"model {m.name}/{m.version}: the batch failed on two instances ({exc})"))
            else:
                c.attempt = 1
                retry.append(c)
        return retry


def softmax_rows(out: np.ndarray) -> np.ndarray:
    e = np.exp(out - out.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e
