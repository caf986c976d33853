"""This checkout against an earlier one, one benchmark script, interleaved.

    .venv/bin/python bench/versus.py --baseline /tmp/old --baseline-python /tmp/oldvenv/bin/python \\
        --script bench/preprocess.py --rounds 5 --out bench/results/preprocess-vs-baseline.json

Runs `script --runs 1 --out F` under each checkout's interpreter in turn,
`--rounds` times (this, baseline, this, baseline, ...: drift of the machine
hits both alike), then reports per case the median of each timing field and
the ratio this / baseline (< 1 = this checkout is faster). For scripts whose
JSON has a "cases" mapping of numeric fields (bench/preprocess.py).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TIMED = ("kernel_1t_ms", "kernel_all_ms", "opencv_1t_ms", "pillow_ms")


def _commit(root: Path) -> str:
    return subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s"], capture_output=True,
                          text=True).stdout.strip()


def _run_once(python: str, root: Path, script: str, out: Path) -> dict:
    subprocess.run([python, str(root / script), "--runs", "1", "--out", str(out)], cwd=root, check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def compare(runs: dict[str, list[dict]]) -> dict:
    """{case: {field: {"this": median, "baseline": median, "ratio": this / baseline}}}"""
    out = {}
    for case in runs["this"][0]["cases"]:
        row = {}
        for field in TIMED:
            med = {side: statistics.median(r["cases"][case][field] for r in rs) for side, rs in runs.items()}
            row[field] = {**{k: round(v, 4) for k, v in med.items()},
                          "ratio": round(med["this"] / med["baseline"], 3)}
        out[case] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, required=True, help="the earlier checkout (a git worktree)")
    ap.add_argument("--baseline-python", required=True, help="its interpreter (with it installed)")
    ap.add_argument("--script", default="bench/preprocess.py")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    sides = {"this": (sys.executable, ROOT), "baseline": (args.baseline_python, args.baseline.resolve())}
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):
            for side, (python, root) in sides.items():
                runs[side].append(_run_once(python, root, args.script, Path(tmp) / f"{side}-{k}.json"))
    result = {"script": args.script, "rounds": args.rounds, "machine": runs["this"][0].get("machine"),
              "this": _commit(ROOT), "baseline": _commit(args.baseline.resolve()),
              "cases": compare(runs)}
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(result, indent=1) + "\n")
    tmp_out.replace(args.out)  # never a half-written result
    for case, row in result["cases"].items():
        print(f"{case:36} " + "  ".join(f"{f} {v['this']:.3f}/{v['baseline']:.3f} (x{v['ratio']:.2f})"
                                         for f, v in row.items() if f.startswith("kernel")))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
