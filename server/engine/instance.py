"""One model instance: an ONNX Runtime session, its reused batch tensor, its run."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from roiclass.server.engine.devices import CPU, Placement
from roiclass.server.models.spec import ModelIO


class DeviceFault(RuntimeError):
    """A run failed because of the device or its provider: the instance leaves the pool."""


class InjectedDeviceFault(DeviceFault):
    """A simulated device failure (EngineConfig.fault_injection)."""


# Words in ORT error messages that point at the device/provider, not at the input.
_DEVICE_WORDS = ("cuda", "cudnn", "cublas", "tensorrt", "device", "gpu", "out of memory",
                 "provider", "ep_fail", "epfail")


def is_device_error(exc: BaseException) -> bool:
    if isinstance(exc, DeviceFault):
        return True
    if type(exc).__name__ == "EPFail":
        return True
    text = str(exc).lower()
    return any(word in text for word in _DEVICE_WORDS)


class Instance:
    def __init__(self, index: int, session: ort.InferenceSession, placement: Placement,
                 io: ModelIO, max_batch: int):
        self.index = index
        self.session = session
        self.placement = placement
        self.healthy = True
        self.busy_s = 0.0  # for the utilization metric
        self.input_name = io.input_name
        self.output_name = io.output_name
        # Reused for every batch: preprocessing writes each ROI into its slot.
        self.batch = np.zeros((max_batch,) + tuple(io.item_shape), dtype=io.dtype)
        self._binding = None if placement.device == CPU else session.io_binding()

    @property
    def device(self) -> str:
        return self.placement.device

    def run(self, n: int) -> np.ndarray:
        """Runs the first n rows of the batch tensor; returns the (n, classes) output."""
        x = self.batch[:n]
        if self._binding is None:
            return self.session.run([self.output_name], {self.input_name: x})[0]
        # GPU: one copy of the batch to the device, one copy of the output back.
        b = self._binding
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        b.bind_cpu_input(self.input_name, x)
        b.bind_output(self.output_name, "cpu")
        self.session.run_with_iobinding(b)
        return b.copy_outputs_to_cpu()[0]

    def close(self) -> None:
        self._binding = None
        self.session = None  # type: ignore[assignment]
