"""--workers: the count, each worker's devices, and a bad value rejected."""
from __future__ import annotations

import sys
import time

import pytest

from roiclass.server.cli import build_parser, config_from_args
from roiclass.server.supervisor import Supervisor, auto_workers, worker_argv, worker_devices


def _config(*argv: str):
    parser = build_parser()
    return config_from_args(parser.parse_args(list(argv)), parser)


def test_workers_default_one_and_auto_is_half_the_cores():
    assert _config().workers == 1 and _config().worker_index is None
    assert _config("--workers", "3").workers == 3
    assert _config("--workers", "auto").workers == auto_workers()
    assert [auto_workers(c) for c in (1, 2, 3, 16)] == [1, 1, 1, 8]


@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_bad_workers_exit_2_naming_the_flag(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _config("--workers", value)
    assert exit_info.value.code == 2
    assert "--workers must be an integer >= 1 or auto" in capsys.readouterr().err


def test_every_gpu_used_none_oversubscribed():
    gpus = ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert worker_devices(gpus, 2) == [["cuda:0", "cuda:2"], ["cuda:1", "cuda:3"]]
    assert worker_devices(gpus, 4) == [[g] for g in gpus]
    assert worker_devices(gpus[:2], 5) == [["cuda:0"], ["cuda:1"], ["cuda:0"], ["cuda:1"], ["cuda:0"]]
    assert worker_devices(["cpu"], 3) == [["cpu"]] * 3


def test_worker_flags_come_last_so_they_win(tmp_path):
    argv = worker_argv(["--port", "0", "--devices", "auto", "--workers", "4"], 1, 50123, ["cuda:1"],
                       tmp_path / "w.json", metrics_token_file=None, cpu_threads=None)
    args = build_parser().parse_args(argv[3:])  # after python -m roiclass.server.cli
    assert (args.port, args.devices, args.workers, args.worker_index) == (50123, "cuda:1", "1", 1)
    assert args.metrics_port is None


def test_a_quick_failure_doubles_the_backoff_up_to_the_cap(tmp_path):
    sup = Supervisor([[sys.executable, "-c", "raise SystemExit(3)"]], grace_s=1.0, state_dir=tmp_path)
    w = sup.workers[0]
    delays = []
    for _ in range(9):
        sup._spawn(w)
        w.proc.wait(30)
        now = time.monotonic()
        sup._check(w, now)
        delays.append(round(w.restart_at - now, 3))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert w.restart_at is not None and len(set(w.pids)) == 9


def test_bad_devices_with_workers_exit_2_before_any_worker_starts(tmp_path, caplog):
    from roiclass.server.cli import main
    from tests.unit.engine.conftest import make_onnx

    model = make_onnx(tmp_path / "tiny.onnx")
    assert main(["--workers", "2", "--devices", "gpu", "--port", "0", "--onnx", str(model)]) == 2
    assert "allowed: auto, cpu" in caplog.text and "worker 0 started" not in caplog.text


def test_a_port_taken_without_reuseport_exits_1_naming_it(tmp_path, caplog):
    import socket

    from roiclass.server.cli import main
    from tests.unit.engine.conftest import make_onnx

    model = make_onnx(tmp_path / "tiny.onnx")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--workers", "2", "--port", str(port), "--onnx", str(model)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text and "worker 0 started" not in caplog.text


def test_available_cores_honours_a_cgroup_cpu_limit(tmp_path):
    import os

    from roiclass.server.cores import available_cores

    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    assert available_cores(cpu_max) == affinity
    cpu_max.write_text("50000 100000\n")  # half a core
    assert available_cores(cpu_max) == 1
    cpu_max.write_text(f"{affinity * 100000 + 50000} 100000\n")  # more than the affinity
    assert available_cores(cpu_max) == affinity
    assert available_cores(tmp_path / "absent") == affinity
