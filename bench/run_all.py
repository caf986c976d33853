"""Every benchmark, one after the other (`make bench`):

    .venv/bin/python bench/run_all.py            # all, commit-ready results in bench/results/
    .venv/bin/python bench/run_all.py --quick    # smoke run of each

bench/preprocess.py (preprocessing kernel vs OpenCV / Pillow), bench/heatmap.py
(when present), bench/serving.py (raw ONNX Runtime vs roiclass vs KServe),
bench/stream_gap.py (where streaming throughput goes: raw ORT -> engine ->
gRPC), bench/batch_gil.py (one kernel call per batch vs per request),
bench/workers.py (one server process vs serve --workers N), bench/video.py
(`roiclass video` vs an in-process decode -> resize -> ONNX Runtime loop),
bench/oip.py (perf_analyzer on the v2 endpoint vs v1 vs a Triton peer),
bench/geo.py (`roiclass geo` vs the arcgis.learn-style script vs raw ORT),
bench/tta.py (a test-time augmentation request vs its variants as plain ROIs) and
bench/pipelines.py (detector + classifier + child in one call vs three calls vs the compute bound).
Each runs in its own process, so one failing does not stop the others; the
exit code is non-zero when any failed. The benchmarks run one at a time: on
a small machine two at once would measure each other.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# (script, arguments for a full run, arguments for a smoke run)
BENCHMARKS = (
    ("preprocess.py", ["--runs", "5"], ["--repeats", "2", "--out", str(BENCH / "results" / "preprocess-quick.json")]),
    # the baseline kernel build, which CPUs without AVX2 + FMA get
    ("preprocess.py", ["--runs", "5", "--kernel-build", "x86-64-v2",
                       "--out", str(BENCH / "results" / "preprocess-x86-64-v2.json")],
     ["--repeats", "2", "--kernel-build", "x86-64-v2", "--out", str(BENCH / "results" / "preprocess-quick.json")]),
    ("heatmap.py", [], ["--quick", "--tag", "quick"]),
    ("serving.py", [], ["--quick"]),
    ("stream_gap.py", [], ["--repeats", "1", "--seconds", "1", "--out", str(BENCH / "results" / "stream-gap-quick.json")]),
    ("batch_gil.py", [], ["--repeats", "5", "--out", str(BENCH / "results" / "batch-gil-quick.json")]),
    ("workers.py", [], ["--duration", "1", "--warmup", "0.3", "--repeats", "1",
                        "--out", str(BENCH / "results" / "workers-quick.json")]),
    ("video.py", [], ["--quick"]),
    ("oip.py", [], ["--quick"]),
    ("geo.py", [], ["--quick"]),
    ("tta.py", [], ["--quick", "--tag", "quick"]),
    ("pipelines.py", [], ["--repeats", "1", "--duration", "0.5", "--warmup", "0.3",
                          "--out", str(BENCH / "results" / "pipelines-quick.json")]),
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short smoke run of each benchmark")
    p.add_argument("--only", default="", help="comma list of scripts to run (e.g. serving.py)")
    args = p.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    failed = []
    for script, full, quick in BENCHMARKS:
        if only and script not in only:
            continue
        path = BENCH / script
        if not path.exists():  # written by another engineer, maybe not yet
            print(f"== {script}: absent, skipped", flush=True)
            continue
        cmd = [sys.executable, str(path), *(quick if args.quick else full)]
        print(f"== {script}: {' '.join(cmd[1:])}", flush=True)
        started = time.monotonic()
        rc = subprocess.run(cmd, cwd=BENCH.parent, env=os.environ.copy()).returncode
        print(f"== {script}: exit {rc} after {time.monotonic() - started:.0f} s", flush=True)
        if rc:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
