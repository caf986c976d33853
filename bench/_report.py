"""Targets (met / missed with the ratio), the plot and a text summary of a
serving results dict (see serving.py)."""
from __future__ import annotations

from pathlib import Path

EFF, TINY = "efficientnet_lite0", "tiny_cnn"
LATENCY_SLACK_MS = 1.5


def _point(model: dict, system: str, mode: str, concurrency: int) -> dict | None:
    for p in model.get("points", []):
        if (p["system"], p["mode"], p["concurrency"]) == (system, mode, concurrency):
            return p
    return None


def _target(name: str, value: float | None, bound: float, ratio: float | None, met: bool | None, **extra) -> dict:
    return {"target": name, "value": value, "bound": bound, "ratio": None if ratio is None else round(ratio, 3),
            "met": met, **extra}


def _latency_target(name: str, model: dict) -> dict | None:
    unary1 = _point(model, "roiclass", "unary", 1)
    raw_b1 = model["raw"].get("batch1_p50_ms")
    if not unary1 or unary1.get("p50_ms") is None or raw_b1 is None:
        return None
    base = raw_b1 + model["preprocess"]["preprocess_ms"]
    bound = round(base + LATENCY_SLACK_MS, 4)
    p50 = unary1["p50_ms"]
    return _target(f"{name}: unary p50 at concurrency 1 <= raw batch-1 p50 + preprocessing + 1.5 ms",
                   p50, bound, p50 / bound, p50 <= bound, overhead_ms=round(p50 - base, 4))


def targets(results: dict) -> list[dict]:
    out = []
    models = results["models"]
    if EFF in models:
        m = models[EFF]
        streams = [p for p in m["points"] if p["system"] == "roiclass" and p["mode"] == "stream"]
        best = max(streams, key=lambda p: p["rois_per_s"], default=None)
        ceiling = m["raw"]["ceiling_rois_per_s"]
        if best:
            ratio = best["rois_per_s"] / ceiling
            out.append(_target(f"{EFF}: streaming throughput >= 90% of the raw ONNX Runtime ceiling",
                               best["rois_per_s"], round(0.9 * ceiling, 2), ratio, ratio >= 0.9,
                               streams=best["concurrency"], ceiling=ceiling))
    for name in (EFF, TINY):
        if name in models:
            t = _latency_target(name, models[name])
            if t:
                out.append(t)
    if TINY in models:
        m = models[TINY]
        ours, theirs = _point(m, "roiclass", "unary", 16), _point(m, "kserve", "unary", 16)
        if ours and theirs and theirs["rois_per_s"] and ours.get("p99_ms"):
            ratio = ours["rois_per_s"] / theirs["rois_per_s"]
            out.append(_target(f"{TINY}: unary throughput at concurrency 16 >= 3x KServe's", ours["rois_per_s"],
                               round(3 * theirs["rois_per_s"], 2), ratio, ratio >= 3, kserve=theirs["rois_per_s"]))
            ratio = theirs["p99_ms"] / ours["p99_ms"]
            out.append(_target(f"{TINY}: p99 at concurrency 16 <= 1/3 of KServe's", ours["p99_ms"],
                               round(theirs["p99_ms"] / 3, 4), ratio, ratio >= 3, kserve=theirs["p99_ms"]))
    return out


def summary_text(results: dict) -> str:
    lines = []
    for name, m in results["models"].items():
        raw = m["raw"]
        lines.append(f"== {name}: raw ORT ceiling {raw['ceiling_rois_per_s']:.0f} ROIs/s (batch {raw['ceiling_batch']}, {raw.get('ceiling_config')}),"
                     f" batch-1 p50 {raw.get('batch1_p50_ms', float('nan')):.3f} ms,"
                     f" preprocessing {m['preprocess']['preprocess_ms']:.3f} ms; top-1 {m.get('top1')}")
        lines.append(f"   {'system':9} {'mode':6} {'N':>3} {'ROIs/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"
                     f" {'srv cores':>9} {'cli cores':>9} err")
        for p in m["points"]:
            lines.append(f"   {p['system']:9} {p['mode']:6} {p['concurrency']:>3} {p['rois_per_s']:>9.1f} "
                         f"{_ms(p['p50_ms'])} {_ms(p['p90_ms'])} {_ms(p['p99_ms'])}"
                         f" {p.get('server_cores', float('nan')):9.2f} {p.get('client_cores', float('nan')):9.2f}"
                         f" {p['errors']}")
        s = m.get("python_client_sync_c1")
        if s:
            lines.append(f"   Classifier (sync Python client) c=1: {s['rois_per_s']:.1f} ROIs/s, p50 {_ms(s['p50_ms'])} ms")
    lines += baseline_lines(results)
    for t in results.get("targets", []):
        verdict = "MET" if t["met"] else "MISSED"
        lines.append(f"[{verdict}] {t['target']}: {t['value']} vs {t['bound']} (ratio {t['ratio']})")
    return "\n".join(lines)


def baseline_ratios(results: dict) -> list[dict]:
    """This checkout over the baseline (--baseline-python) at every roiclass point:
    throughput ratio (> 1 = faster) and p50 ratio (< 1 = faster)."""
    out = []
    for name, m in results["models"].items():
        for p in m["points"]:
            if p["system"] != "roiclass":
                continue
            base = _point(m, "baseline", p["mode"], p["concurrency"])
            if base and base["rois_per_s"] and base["p50_ms"]:
                out.append({"model": name, "mode": p["mode"], "concurrency": p["concurrency"],
                            "rois_per_s_ratio": round(p["rois_per_s"] / base["rois_per_s"], 3),
                            "p50_ratio": round(p["p50_ms"] / base["p50_ms"], 3)})
    return out


def baseline_lines(results: dict) -> list[str]:
    ratios = baseline_ratios(results)
    if not ratios:
        return []
    lines = [f"vs baseline {results.get('baseline')}: ROIs/s ratio (>1 faster), p50 ratio (<1 faster)"]
    lines += [f"   {r['model']:20} {r['mode']:6} {r['concurrency']:>3} {r['rois_per_s_ratio']:6.3f} "
              f"{r['p50_ratio']:6.3f}" for r in ratios]
    return lines


def _ms(v: float | None) -> str:
    return f"{v:8.2f}" if v is not None else "       -"


def plot(results: dict, stem: Path) -> list[Path]:
    """One PNG: per model, throughput vs concurrency and the latency CDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models = results["models"]
    fig, axes = plt.subplots(len(models), 2, figsize=(13, 4.6 * len(models)), squeeze=False)
    quantiles = np.linspace(0, 1, 201)
    for row, (name, m) in enumerate(models.items()):
        ax = axes[row][0]
        for system, style in (("roiclass", "o-"), ("kserve", "s-")):
            pts = [p for p in m["points"] if p["system"] == system and p["mode"] == "unary"]
            if pts:
                ax.plot([p["concurrency"] for p in pts], [p["rois_per_s"] for p in pts], style, label=f"{system} unary")
        streams = [p for p in m["points"] if p["system"] == "roiclass" and p["mode"] == "stream"]
        if streams:
            window = results["settings"]["stream_window"]
            ax.plot([p["concurrency"] for p in streams], [p["rois_per_s"] for p in streams], "D--",
                    label=f"roiclass streams ({window} frames in flight each)")
        ax.axhline(m["raw"]["ceiling_rois_per_s"], color="k", ls=":",
                   label=f"raw ONNX Runtime ceiling (batch {m['raw']['ceiling_batch']}, {m['raw'].get('ceiling_config')})")
        ax.set(xscale="log", yscale="log", xlabel="concurrency (calls or streams in flight)", ylabel="ROIs/s",
               title=f"{name}: throughput")
        ax.set_xticks([1, 4, 8, 16, 64], ["1", "4", "8", "16", "64"])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax = axes[row][1]
        for p in m["points"]:
            if p["cdf_ms"] and (p["mode"] == "stream" and p["concurrency"] == 8 or p["concurrency"] in (1, 16)):
                ax.plot(p["cdf_ms"], quantiles, label=f"{p['system']} {p['mode']} x{p['concurrency']}",
                        ls="--" if p["system"] == "kserve" else "-")
        if m["raw"].get("batch1_cdf_ms"):
            ax.plot(m["raw"]["batch1_cdf_ms"], quantiles, "k:", label="raw ORT batch 1 (inference only)")
        ax.set(xscale="log", xlabel="latency (ms)", ylabel="fraction of calls", title=f"{name}: latency CDF")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    machine = results["machine"]
    fig.suptitle(f"roiclass vs KServe {machine.get('kserve', '')} vs raw ONNX Runtime {machine['onnxruntime']}"
                 f" - {machine['cpu_model']}, {machine['cpus']} CPUs" +
                 (f", {machine['gpus'][0]}" if machine.get("gpus") else ""), fontsize=10)
    fig.tight_layout()
    path = stem.with_suffix(".png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path]


def markdown(results: dict) -> str:
    """The results as Markdown tables, for bench/README.md."""
    lines = []
    for name, m in results["models"].items():
        raw = m["raw"]
        lines += [f"**{name}** ({m['input']}, max batch {m['max_batch_size']}): raw ONNX Runtime ceiling "
                  f"{raw['ceiling_rois_per_s']:.0f} ROIs/s (batch {raw['ceiling_batch']}, {raw.get('ceiling_config')}), "
                  f"batch-1 p50 {raw.get('batch1_p50_ms', float('nan')):.2f} ms ({raw.get('batch1_config')}), "
                  f"preprocessing {m['preprocess']['preprocess_ms']:.2f} ms per request; top-1 class "
                  f"roiclass {m['top1'].get('roiclass')}, KServe {m['top1'].get('kserve')}.", "",
                  "| system | load | ROIs/s | p50 ms | p90 ms | p99 ms | server cores | client cores |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for p in m["points"]:
            what = f"{p['concurrency']} stream(s)" if p["mode"] == "stream" else f"unary x{p['concurrency']}"
            lines.append(f"| {p['system']} | {what} | {p['rois_per_s']:.0f} | {_cell(p['p50_ms'])} | "
                         f"{_cell(p['p90_ms'])} | {_cell(p['p99_ms'])} | {p.get('server_cores', float('nan')):.2f} | "
                         f"{p.get('client_cores', float('nan')):.2f} |")
        s = m.get("python_client_sync_c1")
        if s:
            lines.append(f"| roiclass, `Classifier` (sync) | unary x1 | {s['rois_per_s']:.0f} | {_cell(s['p50_ms'])} | "
                         f"{_cell(s['p90_ms'])} | {_cell(s['p99_ms'])} | | |")
        lines.append("")
    lines += ["| target | value | bound | ratio | verdict |", "| --- | ---: | ---: | ---: | --- |"]
    for t in results.get("targets", []):
        lines.append(f"| {t['target']} | {t['value']} | {t['bound']} | {t['ratio']} | {'met' if t['met'] else 'missed'} |")
    return "\n".join(lines)


def _cell(v: float | None) -> str:
    return f"{v:.1f}" if v is not None else "-"
