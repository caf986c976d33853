"""`roiclass serve` flags -> ServerConfig, and bad flags rejected with a clear message."""
from __future__ import annotations

from pathlib import Path

import pytest

from roiclass.server.cli import build_parser, config_from_args


def _config(*argv: str):
    parser = build_parser()
    return config_from_args(parser.parse_args(list(argv)), parser)


def test_defaults_serve_the_builtin_model_on_loopback():
    config = _config()
    assert (config.host, config.port, config.metrics_port) == ("127.0.0.1", 50051, None)
    assert config.max_message_bytes == 64 * 1024 * 1024
    assert (config.limits.max_rois, config.limits.max_image_side) == (1024, 16384)
    assert config.repositories == () and config.model_paths == () and config.extra_specs == ()
    assert config.engine.devices == "auto" and config.engine.cpu_batch_cap == -1


def test_flags_reach_the_config():
    config = _config("--models", "/m", "--model", "a.emd", "--port", "0", "--metrics-port", "9100",
                     "--max-message-mb", "8", "--max-rois", "16", "--max-image-side", "4096", "--grace", "3",
                     "--devices", "cuda:0,cuda:1", "--instances-per-device", "3", "--cpu-spinning", "run",
                     "--cpu-batch-cap", "4", "--poll", "2.5", "--default-model", "x")
    assert config.repositories == (Path("/m"),) and config.model_paths == (Path("a.emd"),)
    assert (config.port, config.metrics_port, config.max_message_bytes) == (0, 9100, 8 * 1024 * 1024)
    assert (config.limits.max_rois, config.limits.max_image_side, config.grace_s) == (16, 4096, 3.0)
    e = config.engine
    assert (e.devices, e.instances_per_device, e.cpu_spinning, e.cpu_batch_cap) == ("cuda:0,cuda:1", 3, "run", 4)
    assert (config.poll_interval_s, config.default_model) == (2.5, "x")


@pytest.mark.parametrize("argv, words", [
    (["--max-rois", "0"], "--max-rois must be >= 1"),
    (["--instances-per-device", "0"], "--instances-per-device must be >= 1"),
    (["--port", "70000"], "--port must be in 0..65535"),
    (["--threshold", "1.5"], "--threshold must be in [0, 1]"),
    (["--cpu-batch-cap", "-2"], "--cpu-batch-cap must be"),
    (["--classes", "c.txt"], "give --onnx too"),
    (["--normalization", "weird"], "invalid choice"),
    (["--onnx", "/no/such/net.onnx"], "net.onnx"),
])
def test_bad_flags_exit_2_with_a_message(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _config(*argv)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err
