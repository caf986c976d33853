"""Profile the roiclass server under one benchmark load with py-spy.

    .venv/bin/python bench/profile_point.py --model tiny_cnn --mode unary --concurrency 16
    .venv/bin/python bench/profile_point.py --model efficientnet_lite0 --mode stream --concurrency 8 --native

Starts the server (as serving.py does), drives it for --seconds, records
py-spy's collapsed stacks into bench/.cache/profiles/ and prints where the
server's samples go: per thread, self time and inclusive time per function.
Needs py-spy in the virtualenv (pip install py-spy) and ptrace rights.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import _clients  # noqa: E402
import _load  # noqa: E402
import _servers  # noqa: E402
import serving  # noqa: E402

log = logging.getLogger("bench.profile")


def aggregate(path: Path, top: int = 25) -> str:
    """Per thread, self and inclusive shares of py-spy's raw (collapsed) output."""
    inclusive, self_time, threads = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[0]] += n
        self_time[frames[-1]] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
    if not total:
        return f"{path}: no samples"
    lines = [f"{path}: {total} samples"]
    for title, counter, k in (("threads (outermost frame)", threads, 8), ("self", self_time, top),
                              ("inclusive", inclusive, top + 15)):
        lines.append(f"-- {title}")
        lines += [f"{v / total:6.1%}  {name}" for name, v in counter.most_common(k)]
    return "\n".join(lines)


async def drive(port: int, model: str, mode: str, concurrency: int, seconds: float, window: int) -> _load.Sample:
    image, rois = serving.bench_image(1)
    target = _clients.RoiclassTarget(port, model, image, rois)
    try:
        if mode == "stream":
            return await _load.run_streams(target.open_stream, target.request, target.stream_error, concurrency,
                                           window, seconds, 1.0, 1)
        return await _load.run_unary(target.unary, concurrency, seconds, 1.0, 1)
    finally:
        await target.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny_cnn", choices=("tiny_cnn", "efficientnet_lite0"))
    p.add_argument("--mode", default="unary", choices=("unary", "stream"))
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--stream-window", type=int, default=32)
    p.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    p.add_argument("--gil", action="store_true", help="py-spy --gil (only the thread holding the GIL)")
    p.add_argument("--server-arg", action="append", default=[])
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folder = serving.model_folders([args.model])[args.model]
    spec = serving.load_spec(folder)
    out = serving.PROFILES / f"{args.model}-{args.mode}{args.concurrency}{'-native' if args.native else ''}" \
                             f"{'-gil' if args.gil else ''}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with _servers.start_roiclass(folder, spec.name, args.server_arg) as server:
        argv = [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(server.pid), "-r", "250",
                "-d", str(round(args.seconds)), "-f", "raw", "-o", str(out)]
        # --native needs to pause the process per sample; without it, sample without pausing.
        argv += ["--native"] if args.native else ["--nonblocking"]
        argv += ["--gil"] * args.gil
        # Recording starts after the load's 1 s warm-up.
        spy = None

        async def run() -> _load.Sample:
            nonlocal spy
            task = asyncio.create_task(drive(server.port, spec.name, args.mode, args.concurrency,
                                             args.seconds + 0.5, args.stream_window))
            await asyncio.sleep(1.0)
            spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            return await task

        sample = asyncio.run(run())
        _, err = spy.communicate()
        if spy.returncode:
            print(f"py-spy failed ({spy.returncode}): {err.decode()[-500:]}", file=sys.stderr)
            return 1
    print(f"{args.model} {args.mode} x{args.concurrency}: {sample.rois_per_s:.1f} ROIs/s, "
          f"p50 {sample.percentile_ms(50):.2f} ms, p99 {sample.percentile_ms(99):.2f} ms, errors {sample.errors}, "
          f"client cores {sample.client_cpu:.2f}")
    print(aggregate(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
