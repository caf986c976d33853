"""bench/oip_perf.py and bench/oip_report.py: perf_analyzer's CSV report and
input JSON, and the figures made from them (no perf_analyzer needed)."""
from __future__ import annotations

import base64
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))
import oip_perf  # noqa: E402
import oip_report  # noqa: E402

# A report as perf_analyzer 2.51 writes it with -f (microseconds).
REPORT = """Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,\
Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency,\
Avg latency,request/response,response wait
4,61.2,59,1021,1650,13,58011,9,14,60321,71002,75001,90123,61050,61.2,0
"""


def test_the_report_row_becomes_milliseconds_by_column_name():
    (point,) = oip_perf.parse_csv(REPORT)
    assert point.concurrency == 4
    assert point.infer_per_s == pytest.approx(61.2)
    assert point.latency_ms["p50_ms"] == pytest.approx(60.321)
    assert point.latency_ms["p99_ms"] == pytest.approx(90.123)
    assert point.latency_ms["server_queue_ms"] == pytest.approx(1.650)
    assert point.latency_ms["server_infer_ms"] == pytest.approx(58.011)


def test_several_rows_keep_their_concurrency():
    more = REPORT + "8,70.5,1,1,1,1,1,1,1,110000,1,1,190000,1,70.5,0\n"
    points = oip_perf.parse_csv(more)
    assert [p.concurrency for p in points] == [4, 8]
    assert points[1].latency_ms["p99_ms"] == pytest.approx(190.0)


def test_input_json_holds_the_tensors_bytes_and_shapes(tmp_path):
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    rois = np.array([[1.5, 2.0, 30.0, 20.0, 10.0]], np.float32)
    data = json.loads(oip_perf.write_input_json(tmp_path / "in.json", {"IMAGE": image, "ROIS": rois}).read_text())
    (step,) = data["data"]
    assert step["IMAGE"]["shape"] == [2, 3, 3]
    assert np.frombuffer(base64.b64decode(step["IMAGE"]["b64"]), np.uint8).tolist() == image.ravel().tolist()
    decoded = np.frombuffer(base64.b64decode(step["ROIS"]["b64"]), "<f4")
    np.testing.assert_array_equal(decoded, rois.ravel())


def test_input_json_refuses_a_dtype_it_cannot_name(tmp_path):
    with pytest.raises(ValueError, match="ROIS: dtype float64"):
        oip_perf.write_input_json(tmp_path / "in.json", {"ROIS": np.zeros((1, 5))})


def test_a_record_divides_cpu_by_wall_time_and_throughput():
    rec = oip_report.record(rois_per_s=50.0, p50_ms=20.0, p99_ms=40.0, wall_s=10.0, server_cpu_s=8.0,
                            client_cpu_s=1.0, busy_s=15.0)
    assert rec["server_cores"] == pytest.approx(0.8)
    assert rec["cpu_ms_per_roi"] == pytest.approx(16.0)  # 0.8 cores / 50 ROIs/s
    assert rec["other_cores"] == pytest.approx(1.5 - 0.8 - 0.1)


def test_a_failed_point_is_an_error_record_left_out_of_the_medians():
    good = [oip_report.record(rois_per_s=v, p50_ms=v, p99_ms=v, wall_s=1.0, server_cpu_s=1.0, client_cpu_s=0.0,
                              busy_s=1.0) for v in (10.0, 30.0, 20.0)]
    summary = oip_report.summarize([*good, oip_report.record(rois_per_s=0, p50_ms=0, p99_ms=0, wall_s=1,
                                                             server_cpu_s=0, client_cpu_s=0, busy_s=0,
                                                             error="unstable")])
    assert (summary["repeats"], summary["measured"], summary["errors"]) == (4, 3, ["unstable"])
    assert summary["rois_per_s"] == 20.0 and summary["p99_ms"] == 20.0


def _summary(by_repeat: list, cpu: float) -> dict:
    good = [v for v in by_repeat if v is not None]
    return {"rois_per_s": sorted(good)[len(good) // 2], "p50_ms": 10.0, "p99_ms": 20.0, "cpu_ms_per_roi": cpu,
            "rois_per_s_by_repeat": by_repeat, "cpu_ms_per_roi_by_repeat": [cpu if v else None for v in by_repeat]}


def test_paired_ratios_divide_repeat_by_repeat():
    # The machine slowed down in repeat 2 for both: 0.9 repeat by repeat.
    summary = {"v2_image": {"1": _summary([45.0, 18.0, 90.0], 11.0)}, "v1": {"1": _summary([50.0, 20.0, 100.0], 10.0)}}
    r = oip_report.ratios(summary, "v2_image", "v1")["1"]
    assert r["throughput_paired"] == 0.9 and r["throughput"] == 0.9 and r["cpu_per_roi_paired"] == 1.1
    summary["v2_image"]["1"] = _summary([45.0, 90.0, 18.0], 11.0)  # same medians, other order
    r = oip_report.ratios(summary, "v2_image", "v1")["1"]
    assert r["throughput"] == 0.9 and r["throughput_paired"] == 0.9  # 0.9, 4.5, 0.18: the median
    summary["v2_image"]["1"] = _summary([45.0, None, 90.0], 11.0)  # a failed repeat has no pair
    assert oip_report.ratios(summary, "v2_image", "v1")["1"]["throughput_paired"] == pytest.approx(0.9)


def test_targets_judge_the_worst_concurrency():
    summary = {"v2_image": {"1": _summary([45.0], 11.0), "6": _summary([60.0], 10.0)},
               "v1": {"1": _summary([50.0], 10.0), "6": _summary([60.0], 10.0)},
               "triton": {"1": _summary([30.0], 20.0)}}
    targets = {t["target"]: t for t in oip_report.targets(summary)}
    v1 = targets["roiclass v2 throughput >= 90% of v1's"]
    assert (v1["worst_ratio"], v1["median_ratio"], v1["met"]) == (0.9, 0.95, True)
    cpu = targets["roiclass v2 CPU per ROI <= v1's / 0.9"]
    assert cpu["worst_ratio"] == 1.1 and cpu["met"]
    peer = targets["roiclass v2 throughput ahead of the Triton peer"]
    assert peer["per_concurrency"] == {"1": 1.5} and peer["met"]
    summary["v2_image"]["1"] = _summary([44.0], 11.5)
    targets = {t["target"]: t for t in oip_report.targets(summary)}
    assert not targets["roiclass v2 throughput >= 90% of v1's"]["met"]
    assert not targets["roiclass v2 CPU per ROI <= v1's / 0.9"]["met"]


def test_a_ratio_needs_both_sides_measured():
    summary = {"v2_image": {"1": {**_summary([45.0], 11.0), "rois_per_s": None}}, "v1": {"1": _summary([50.0], 10.0)}}
    assert oip_report.ratios(summary, "v2_image", "v1") == {}
    assert math.isnan(oip_report.record(rois_per_s=0.0, p50_ms=1, p99_ms=1, wall_s=1, server_cpu_s=1,
                                        client_cpu_s=0, busy_s=1)["cpu_ms_per_roi"])


def test_the_readme_text_names_the_machine_the_rows_and_the_targets():
    points = {"v2_image": {"1": {**_summary([45.0], 11.0), "server_cores": 0.5, "client_cores": 0.01,
                                 "other_cores": 1.4}},
              "v1": {"1": {**_summary([50.0], 10.0), "server_cores": 0.5, "client_cores": 0.01, "other_cores": 1.2}}}
    ratios = {"v2_image/v1": oip_report.ratios(points, "v2_image", "v1")}
    results = {"date": "2026-12-06T22:30:00+00:00", "commit": "abc1234 subject", "settings": {"repeats": 5},
               "elapsed_s": 600.0, "load_average_start": [3.0], "load_average_end": [4.0], "points": points,
               "ratios": ratios, "targets": oip_report.targets(points),
               "machine": {"cpu_model": "AMD EPYC", "cpus": 2, "hypervisor": "KVM", "ram_gib": 23.5, "os": "Debian",
                           "python": "3.11.7", "roiclass": "0.9", "onnxruntime": "1.31.1", "numpy": "2.4.6",
                           "perf_venv": {"perf_analyzer": "Perf Analyzer Version 2.51.0", "numpy": "1.26.4",
                                         "opencv-python-headless": "4.11.0.86", "onnxruntime": "1.31.1"}}}
    text = oip_report.readme_results(results, {"v2_image": "roiclass v2", "v1": "roiclass v1"})
    assert "AMD EPYC, 2 vCPUs (KVM)" in text and "other work took 1.20-1.40 of the 2 cores" in text
    assert "| roiclass v2 | 1 | 45.0 | 10.0 | 20.0 | 0.50 | 11.00 | 0.01 | 1.40 |" in text
    assert "| v2_image/v1 | 1 | 0.90 | 1.10 |" in text
    assert "roiclass v2 throughput >= 90% of v1's: met (worst 0.9" in text
