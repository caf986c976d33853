"""bench/oip.py's figures: one record per measured point and repeat, medians
over repeats, the ratios the issue sets targets on, and the README table."""
from __future__ import annotations

import statistics

FIELDS = ("rois_per_s", "p50_ms", "p99_ms", "server_cores", "client_cores", "other_cores", "cpu_ms_per_roi")
V2_V1_TARGET = 0.9  # roiclass v2 throughput >= 90 % of v1's


def record(*, rois_per_s: float, p50_ms: float, p99_ms: float, wall_s: float, server_cpu_s: float,
           client_cpu_s: float, busy_s: float, error: str = "") -> dict:
    """One point of one repeat. Cores = CPU seconds / wall seconds over the
    whole run of the point (its warm-up included); CPU per ROI = server cores
    / throughput; other_cores = what the rest of the machine used meanwhile."""
    if error:
        return {"error": error}
    server_cores, client_cores = server_cpu_s / wall_s, client_cpu_s / wall_s
    return {"rois_per_s": rois_per_s, "p50_ms": p50_ms, "p99_ms": p99_ms,
            "server_cores": server_cores, "client_cores": client_cores,
            "other_cores": max(0.0, busy_s / wall_s - server_cores - client_cores),
            "cpu_ms_per_roi": 1e3 * server_cores / rois_per_s if rois_per_s > 0 else float("nan")}


def summarize(records: list[dict]) -> dict:
    """Medians over the repeats that measured; the errors of the others."""
    good = [r for r in records if "error" not in r]
    out: dict = {"repeats": len(records), "measured": len(good)}
    errors = [r["error"] for r in records if "error" in r]
    if errors:
        out["errors"] = errors
    for name in FIELDS:
        values = [r[name] for r in good if r.get(name) is not None]
        out[name] = round(statistics.median(values), 4) if values else None
    # Per repeat, None where it failed: repeat k of every system ran back to back (paired ratios).
    for name in ("rois_per_s", "cpu_ms_per_roi"):
        out[f"{name}_by_repeat"] = [None if "error" in r else round(r[name], 4) for r in records]
    return out


def _paired(a: list, b: list) -> float | None:
    """Median over repeats of a_k / b_k: the two ran minutes apart at most, so
    the machine's slow drift cancels in each ratio."""
    values = [x / y for x, y in zip(a, b) if x and y]
    return round(statistics.median(values), 3) if values else None


def ratios(summary: dict, num: str, den: str) -> dict:
    """{concurrency: {throughput, p50, p99, cpu_per_roi: num / den of the medians;
    throughput_paired, cpu_per_roi_paired: medians of the per-repeat ratios}}
    where both measured."""
    out = {}
    for c, a in summary.get(num, {}).items():
        b = summary.get(den, {}).get(c)
        if not b or a["rois_per_s"] is None or b["rois_per_s"] is None:
            continue
        pairs = {"throughput": "rois_per_s", "p50": "p50_ms", "p99": "p99_ms", "cpu_per_roi": "cpu_ms_per_roi"}
        out[c] = {k: round(a[f] / b[f], 3) if a[f] and b[f] else None for k, f in pairs.items()}
        for name, key in (("rois_per_s", "throughput_paired"), ("cpu_ms_per_roi", "cpu_per_roi_paired")):
            out[c][key] = _paired(a.get(f"{name}_by_repeat", []), b.get(f"{name}_by_repeat", []))
    return out


def targets(summary: dict) -> list[dict]:
    """The issue's targets at every concurrency measured, on the paired
    (per-repeat) throughput ratios: v2 >= 90 % of v1 (v2 from perf_analyzer,
    and from the bench's own client as v1 is), v2 ahead of Triton; and,
    load-independent, v2's CPU per ROI within 10 % of v1's."""
    out = []
    for num, den, key, bound, what in (
            ("v2_image", "v1", "throughput_paired", V2_V1_TARGET, "roiclass v2 throughput >= 90% of v1's"),
            ("v2_image", "v1", "cpu_per_roi_paired", 1 / V2_V1_TARGET, "roiclass v2 CPU per ROI <= v1's / 0.9"),
            ("v2_bench", "v1", "throughput_paired", V2_V1_TARGET,
             "roiclass v2 throughput >= 90% of v1's, one client for both"),
            ("v2_bench", "v1", "cpu_per_roi_paired", 1 / V2_V1_TARGET,
             "roiclass v2 CPU per ROI <= v1's / 0.9, one client for both"),
            ("v2_image", "triton", "throughput_paired", 1.0, "roiclass v2 throughput ahead of the Triton peer")):
        per = {c: v[key] for c, v in ratios(summary, num, den).items() if v.get(key) is not None}
        if not per:
            continue
        lower_is_better = key.startswith("cpu")
        worst = max(per.values()) if lower_is_better else min(per.values())
        out.append({"target": what, "ratio": key, "worst_ratio": worst,
                    "median_ratio": round(statistics.median(per.values()), 3), "bound": round(bound, 3),
                    "met": worst <= bound if lower_is_better else worst >= bound, "per_concurrency": per})
    return out


def _fmt(v, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def table(summary: dict, labels: dict[str, str]) -> str:
    """A markdown table: one row per system and concurrency."""
    lines = ["| system | concurrency | ROIs/s | p50 ms | p99 ms | server cores | CPU ms / ROI | client cores | "
             "others' cores |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for system, points in summary.items():
        for c, p in sorted(points.items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {labels.get(system, system)} | {c} | {_fmt(p['rois_per_s'])} | {_fmt(p['p50_ms'])} | "
                         f"{_fmt(p['p99_ms'])} | {_fmt(p['server_cores'], 2)} | {_fmt(p['cpu_ms_per_roi'], 2)} | "
                         f"{_fmt(p['client_cores'], 2)} | {_fmt(p['other_cores'], 2)} |")
    return "\n".join(lines)


def ratio_table(all_ratios: dict) -> str:
    """A markdown table of the paired ratios: one row per pair and concurrency."""
    lines = ["| ratio | concurrency | throughput (paired) | CPU per ROI (paired) | p50 | p99 |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for pair, per in all_ratios.items():
        for c, r in sorted(per.items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {pair} | {c} | {_fmt(r.get('throughput_paired'), 2)} | "
                         f"{_fmt(r.get('cpu_per_roi_paired'), 2)} | {_fmt(r['p50'], 2)} | {_fmt(r['p99'], 2)} |")
    return "\n".join(lines)


def readme_results(results: dict, labels: dict[str, str]) -> str:
    """The "Results" text of bench/README.md's section, from a results file
    (`bench/oip.py --readme results/oip.json` prints it)."""
    m, others = results["machine"], [p["other_cores"] for pts in results["points"].values()
                                     for p in pts.values() if p.get("other_cores") is not None]
    pv, triton = m.get("perf_venv", m), m.get("tritonserver", "no tritonserver")
    targets = "; ".join(f"{t['target']}: {'met' if t['met'] else '**missed**'} (worst {t['worst_ratio']}, "
                        f"median {t['median_ratio']} over the concurrencies)" for t in results["targets"])
    return f"""Run of {results['date']} (commit {results['commit'].split()[0]}, {results['settings']['repeats']} \
repeats, {round(results['elapsed_s'] / 60)} min): {m['cpu_model']}, {m['cpus']} vCPUs ({m['hypervisor']}), \
{m['ram_gib']} GiB, {m['os']}, Python {m['python']}, roiclass {m.get('roiclass', '?')} (onnxruntime \
{m['onnxruntime']}, CPU provider, numpy {m['numpy']}); {pv['perf_analyzer']}; {triton} with numpy \
{pv['numpy']}, OpenCV {pv['opencv-python-headless']} and onnxruntime {pv['onnxruntime']}. Load average \
{results['load_average_start'][0]} at the start, \
{results['load_average_end'][0]} at the end: other work took {min(others):.2f}-{max(others):.2f} of the \
{m['cpus']} cores (medians per point, `others' cores`).

{table(results['points'], labels)}

Ratios (paired: the median over repeats of repeat k's ratio, the two points having run within a minute of
each other; p50/p99: ratios of the medians; below 1 for CPU per ROI and latency = the first system is
cheaper / faster):

{ratio_table(results['ratios'])}

Targets, at the worst concurrency: {targets}.{range_text(results, labels)}"""


def range_text(results: dict, labels: dict[str, str]) -> str:
    """The closing literal `--concurrency-range START:END:STEP` runs, one line each."""
    lines = []
    for system, run in results.get("perf_analyzer_range", {}).items():
        rows = ", ".join(f"{r['concurrency']}: {r['rois_per_s']:.1f} ROIs/s p50 {r['p50_ms']:.0f} / p99 "
                         f"{r['p99_ms']:.0f} ms" for r in run["rows"]) or run.get("error", "no rows")
        lines.append(f"- {labels.get(system, system)}: {rows}")
    if not lines:
        return ""
    first = next(iter(results["perf_analyzer_range"].values()))["command"]
    return ("\n\nThe same as one perf_analyzer run over the range, once at the end (`" + first.split(" -u ")[0] +
            " --concurrency-range " + first.split("--concurrency-range ")[1].split()[0] + " ...`):\n\n" +
            "\n".join(lines))
