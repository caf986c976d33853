"""Benchmark: `roiclass geo` against the script an arcgis.learn user writes.

    .venv/bin/python bench/geo.py             # 10,000 points, 3 repeats (~20 min on 2 cores)
    .venv/bin/python bench/geo.py --quick     # 1,000 points, 1 repeat (bench/results/geo-quick.json)

The bench makes (once, bench/.cache/geo/) a 10000 x 10000 4-band uint16
GeoTIFF (UTM 33N, 0.5 m, tiled 512, deflate; scikit-image photos x 257
tiled over it) and a GeoPackage of --features random points on it (same
CRS; fixed 224 x 224 chips, the built-in EfficientNet-Lite0). Cases, each
in its own process (peak RSS = its ru_maxrss), repeats interleaved in an
order rotated each repeat so a slow minute of the shared VM hits every case:

- roiclass-server: `roiclass geo --server` to a roiclass server in its own
  process (default settings); peak RSS = client + server (VmHWM);
- roiclass-local: `roiclass geo --local` (the engine in-process);
- script-b4 / script-b64: the arcgis.learn-style loop: per feature a
  rasterio `boundless` window read (bands 1-3), numpy normalization, ONNX
  Runtime in batches of 4 / 64 (ORT's default threads), features in the
  layer's (random) order, GDAL's default block cache;
- raw-b4 / raw-b64: ONNX Runtime on fixed random tensors, no reading at
  all: the ceiling.

Reports features/s (medians), roiclass / ceiling and roiclass / best script,
CPU milliseconds per feature (roiclass-server: client + server) and the
same ratio in CPU time (on a shared VM far steadier than wall time), peak
RSS; the targets: >= 85 % of the ceiling, peak RSS < 1 GiB.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # run as a script: the helper modules sit beside it
    sys.path.insert(0, str(BENCH))

log = logging.getLogger("bench.geo")
ROOT = BENCH.parent
CACHE = BENCH / ".cache" / "geo"
RESULTS = BENCH / "results"
MODEL = "efficientnet_lite0"
MODEL_DIR = ROOT / "models" / MODEL
SIDE = 10000
CHIP = 224
UTM = "EPSG:32633"


# ------------------------------------------------------------------ inputs


def make_raster(path: Path, side: int) -> Path:
    """Photos tiled over the raster, written tile row by tile row (bounded memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    from skimage import data

    if path.exists():
        return path
    photos = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    tmp = path.with_suffix(".part.tif")
    profile = dict(driver="GTiff", width=side, height=side, count=4, dtype="uint16", crs=UTM,
                   transform=from_origin(500000, 5000000, 0.5, 0.5), tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate", nodata=0)
    band_rows = 512
    with rasterio.open(tmp, "w", **profile) as ds:
        for row in range(0, side, band_rows):
            h = min(band_rows, side - row)
            strip = np.empty((h, side, 3), np.uint8)
            for col in range(0, side, 300):  # 300-pixel columns of photos, repeating down the raster
                photo = photos[(col // 300) % len(photos)]
                w = min(300, side - col)
                rows = np.arange(row, row + h) % photo.shape[0]
                strip[:, col:col + w] = photo[rows][:, np.arange(w) % photo.shape[1], :3]
            strip = np.maximum(strip, 1).astype(np.uint16) * 257
            nir = strip.mean(axis=2).astype(np.uint16)
            ds.write(np.dstack([strip, nir]).transpose(2, 0, 1), window=Window(0, row, side, h))
    tmp.rename(path)
    return path


def make_points(path: Path, count: int, side: int) -> Path:
    import pyarrow as pa
    import pyogrio
    import shapely

    if path.exists():
        return path
    rng = np.random.default_rng(13)
    cols, rows = rng.uniform(CHIP / 2, side - CHIP / 2, (2, count))
    points = shapely.points(500000 + cols * 0.5, 5000000 - rows * 0.5)
    table = pa.table({"id": pa.array(range(count), pa.int32()), "geometry": shapely.to_wkb(points)})
    pyogrio.write_arrow(table, str(path), geometry_name="geometry", geometry_type="Point", crs=UTM)
    return path


# ------------------------------------------------------------------ children


def _child_done(features: int, started: float, **extra) -> None:
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"features": features, "seconds": seconds, "maxrss_mb": usage.ru_maxrss / 1024,
                      "cpu_s": usage.ru_utime + usage.ru_stime, **extra}), flush=True)


def child_roiclass(args: list[str]) -> None:
    from roiclass.geo.cli import build_parser, config_from_args
    from roiclass.geo.run import run

    started = time.perf_counter()
    summary = run(config_from_args(build_parser().parse_args(["--quiet", "--overwrite", *args])))
    _child_done(summary.features, started, startup_s=summary.startup_s, startup_cpu_s=summary.startup_cpu_s,
                labelled=summary.labelled)


def _session():
    import onnxruntime as ort

    return ort.InferenceSession(str(MODEL_DIR / "1" / "model.onnx"), providers=["CPUExecutionProvider"])


def child_script(raster: str, layer: str, batch: int) -> None:
    """The loop an arcgis.learn user writes (see the module docstring)."""
    import pyogrio
    import rasterio
    import shapely
    from rasterio.windows import Window

    session = _session()
    name = session.get_inputs()[0].name
    started = time.perf_counter()
    _, table = pyogrio.read_arrow(layer)
    points = shapely.from_wkb(table.column(table.column_names[-1]).to_numpy(False))
    labels = []
    with rasterio.open(raster) as ds:
        inverse = ~ds.transform
        chips = []
        for x, y in zip(shapely.get_x(points), shapely.get_y(points)):
            col, row = inverse * (x, y)
            window = Window(int(col) - CHIP // 2, int(row) - CHIP // 2, CHIP, CHIP)
            pixels = ds.read([1, 2, 3], window=window, boundless=True, fill_value=0).astype(np.float32)
            chips.append((pixels / 257.0 - 127.0) / 128.0)
            if len(chips) == batch:
                labels += session.run(None, {name: np.stack(chips)})[0].argmax(axis=1).tolist()
                chips = []
        if chips:
            labels += session.run(None, {name: np.stack(chips)})[0].argmax(axis=1).tolist()
    _child_done(len(labels), started)


def child_raw(count: int, batch: int) -> None:
    session = _session()
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((batch, 3, CHIP, CHIP)).astype(np.float32)
    session.run(None, {name: x})  # warm-up
    started = time.perf_counter()
    done = 0
    while done < count:
        session.run(None, {name: x})
        done += batch
    _child_done(done, started)


# -------------------------------------------------------------------- runs


def _run_child(argv: list[str], timeout: float = 1800) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cases(raster: Path, layer: Path, out: Path, server_address: str, raw_count: int) -> dict[str, list[str]]:
    common = [str(raster), "--features", str(layer), "--chip", "fixed"]
    return {
        "roiclass-server": ["roiclass", *common, "--out", str(out / "server.gpkg"), "--server", server_address],
        "roiclass-local": ["roiclass", *common, "--out", str(out / "local.gpkg"), "--local"],
        "script-b4": ["script", str(raster), str(layer), "4"],
        "script-b64": ["script", str(raster), str(layer), "64"],
        "raw-b4": ["raw", str(raw_count), "4"],
        "raw-b64": ["raw", str(raw_count), "64"],
    }


def measure(args) -> dict:
    import _machine
    import _servers

    CACHE.mkdir(parents=True, exist_ok=True)
    side = args.side
    raster = make_raster(CACHE / f"scene-{side}.tif", side)
    layer = make_points(CACHE / f"points-{args.features}-{side}.gpkg", args.features, side)
    out = CACHE / "out"
    out.mkdir(exist_ok=True)
    server = _servers.start_roiclass(MODEL_DIR, MODEL, ["--devices", "cpu", "--metrics-port", "0"])
    runs: dict[str, list[dict]] = {}
    try:
        table = cases(raster, layer, out, f"127.0.0.1:{server.port}", args.raw_count or args.features)
        names = list(table)
        for repeat in range(args.repeats):
            order = names[repeat % len(names):] + names[:repeat % len(names)]
            for name in order:
                server_cpu = server.cpu_seconds()
                result = _run_child(table[name])
                if name == "roiclass-server":  # the client's CPU and the server's during the run
                    result["cpu_s"] += server.cpu_seconds() - server_cpu
                result["rate"] = result["features"] / result["seconds"]
                # --local loads the model in the run (a server loaded it before): the rate past that, too
                result["rate_after_startup"] = result["features"] / (result["seconds"] - result.get("startup_s", 0))
                if name == "roiclass-server":
                    result["server_hwm_mb"] = _vm_hwm_mb(server.pid)
                runs.setdefault(name, []).append(result)
                log.info("repeat %d %-16s %7.1f features/s  maxrss %6.0f MB", repeat, name, result["rate"],
                         result["maxrss_mb"])
    finally:
        server.stop()
    return {"machine": _machine.describe(), "runs": runs, "raster": {"side": side, "bands": 4, "dtype": "uint16",
            "tile": 512, "compress": "deflate", "bytes": raster.stat().st_size}, "features": args.features}


def summarize(results: dict) -> dict:
    runs = results["runs"]
    rate = {name: statistics.median(r["rate"] for r in rs) for name, rs in runs.items()}
    after = {name: statistics.median(r["rate_after_startup"] for r in rs) for name, rs in runs.items()}
    rss = {name: max(r["maxrss_mb"] for r in rs) for name, rs in runs.items()}
    # CPU time per feature: far less moved by other load on a shared VM than wall time
    cpu_ms = {name: statistics.median(1000 * r["cpu_s"] / r["features"] for r in rs) for name, rs in runs.items()}
    cpu_after = {name: statistics.median(1000 * (r["cpu_s"] - r.get("startup_cpu_s", 0)) / r["features"] for r in rs)
                 for name, rs in runs.items()}
    if "roiclass-server" in runs:
        rss["roiclass-server"] = max(r["maxrss_mb"] + r.get("server_hwm_mb", 0) for r in runs["roiclass-server"])
    ceiling = max(rate.get("raw-b4", 0), rate.get("raw-b64", 0))
    script = max(rate.get("script-b4", 0), rate.get("script-b64", 0))
    summary = {"features_per_s": rate, "features_per_s_after_startup": after, "cpu_ms_per_feature": cpu_ms,
               "cpu_ms_per_feature_after_startup": cpu_after,
               "peak_rss_mb": rss, "ceiling": ceiling, "best_script": script}
    cpu_ceiling = min(cpu_ms.get("raw-b4", math.inf), cpu_ms.get("raw-b64", math.inf))
    for mode in ("roiclass-server", "roiclass-local"):
        if mode in rate and ceiling:
            summary[f"{mode}_vs_ceiling"] = rate[mode] / ceiling
            summary[f"{mode}_after_startup_vs_ceiling"] = after[mode] / ceiling
            summary[f"{mode}_vs_ceiling_paired"] = _paired(runs, mode)
            summary[f"{mode}_cpu_vs_ceiling"] = cpu_ceiling / cpu_ms[mode]
            summary[f"{mode}_cpu_after_startup_vs_ceiling"] = cpu_ceiling / cpu_after[mode]
            summary[f"{mode}_vs_script"] = rate[mode] / script if script else None
            summary[f"{mode}_targets_met"] = {"85%_of_ceiling": rate[mode] >= 0.85 * ceiling,
                                              "rss_under_1GiB": rss[mode] < 1024}
    return summary


def _paired(runs: dict, mode: str) -> float | None:
    """The median over repeats of repeat k's rate / repeat k's ceiling (the
    cases of one repeat ran minutes apart, those of two repeats further)."""
    raws = [runs.get("raw-b4", []), runs.get("raw-b64", [])]
    ratios = []
    for k, result in enumerate(runs[mode]):
        ceiling = max((r[k]["rate"] for r in raws if len(r) > k), default=0)
        if ceiling:
            ratios.append(result["rate"] / ceiling)
    return statistics.median(ratios) if ratios else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        kind, rest = argv[1], argv[2:]
        if kind == "roiclass":
            child_roiclass(rest)
        elif kind == "script":
            child_script(rest[0], rest[1], int(rest[2]))
        else:
            child_raw(int(rest[0]), int(rest[1]))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1,000 points, 1 repeat, results in geo-quick.json")
    p.add_argument("--features", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--side", type=int, default=SIDE)
    p.add_argument("--raw-count", type=int, default=0, help="images per raw ORT run (default: --features)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--note", default="", help="a line on the run (e.g. how busy the machine was)")
    args = p.parse_args(argv)
    args.features = args.features or (1000 if args.quick else 10000)
    args.repeats = args.repeats or (1 if args.quick else 3)
    out = args.out or RESULTS / ("geo-quick.json" if args.quick else "geo.json")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    results = measure(args)
    results["summary"] = summarize(results)
    results["date"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    results["note"] = args.note
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
