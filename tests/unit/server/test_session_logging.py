"""ORT's provider errors stay quiet while any GPU probe runs, also when two
models load at once, and every session logs through its own logger."""
from __future__ import annotations

import logging
import threading

import pytest

from roiclass.server.engine import EngineConfig, devices
from roiclass.server.engine.devices import ORT_FATAL, ORT_WARNING, SessionFactory, cuda_device_count
from tests.unit.engine.conftest import make_onnx


def test_the_default_logger_comes_back_when_the_last_probe_ends(monkeypatch):
    calls = []
    monkeypatch.setattr(devices.ort, "set_default_logger_severity", calls.append)
    quiet = devices._QuietDefaultLogger()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def probe_a():
        with quiet:
            a_in.set()
            b_in.wait(5)
        a_out.set()

    thread = threading.Thread(target=probe_a)
    thread.start()
    a_in.wait(5)
    with quiet:  # probe B starts while A runs and ends after it
        b_in.set()
        a_out.wait(5)
        assert calls == [ORT_FATAL]  # A's end did not turn the logger back on under B
    thread.join(5)
    assert calls == [ORT_FATAL, ORT_WARNING]


def test_a_failed_probe_also_leaves_the_default_logger_on(monkeypatch):
    calls = []
    monkeypatch.setattr(devices.ort, "set_default_logger_severity", calls.append)
    quiet = devices._QuietDefaultLogger()
    with pytest.raises(RuntimeError):
        with quiet:
            raise RuntimeError("no device memory")
    assert calls == [ORT_FATAL, ORT_WARNING]


def test_unloadable_cuda_provider_prints_only_our_warning(tmp_path, capfd, caplog):
    if cuda_device_count():
        pytest.skip("a CUDA device is present: its provider loads")
    onnx = make_onnx(tmp_path / "tiny.onnx")
    factory = SessionFactory(EngineConfig(devices="cpu"))
    with caplog.at_level(logging.WARNING, logger="roiclass.server.engine.devices"):
        sess, placement = factory.create(onnx, "cuda:0", 1)
    assert placement == devices.Placement(devices.CPU, devices.CPU_EP)
    assert sess.get_providers() == [devices.CPU_EP]
    err = capfd.readouterr().err
    assert "onnxruntime" not in err and "CUDAExecutionProvider" not in err, err
    assert sum("cuda:0 is unusable" in r.getMessage() for r in caplog.records) == 1
