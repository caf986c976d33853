"""Rows of `roiclass video`: per frame, or per segment; JSON lines, CSV or a table.

A file is written to a temporary name beside it and renamed when the run
succeeded, so a failed run never leaves a half-written output.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, TextIO

from ..errors import InvalidInputError
from .results import VideoFrameResult
from .segments import Segment

FRAME_COLUMNS = ("frame", "time", "roi", "class", "class_index", "score", "classes", "status")
SEGMENT_COLUMNS = ("roi", "start_frame", "end_frame", "start_time", "end_time", "class", "class_index",
                   "frames", "mean_confidence", "min_confidence")
FORMATS = (".jsonl", ".csv")


def frame_row(frame: VideoFrameResult) -> dict[str, Any]:
    """One frame as JSON: frame, time, then rois (class, class_index, score,
    classes at or above min_confidence), or skipped, or error."""
    row: dict[str, Any] = {"frame": frame.index, "time": round(frame.time, 6)}
    if frame.skipped:
        row["skipped"] = True
    elif frame.error is not None:
        row["error"] = {"code": frame.error.code.name, "message": frame.error.message}
    else:
        row["rois"] = [
            {"roi": i, "id": r.roi_id, "class": r.class_name, "class_index": r.class_index,
             "score": round(r.score, 6),
             "classes": [{"class": c.name, "class_index": c.index, "score": round(c.confidence, 6)}
                         for c in r.confidences]}
            for i, r in enumerate(frame.result.results)
        ]
    return row


def segment_row(segment: Segment) -> dict[str, Any]:
    row = asdict(segment)
    row["class"] = row.pop("class_name")
    for key in ("start_time", "end_time", "mean_confidence", "min_confidence"):
        row[key] = round(row[key], 6)
    return {column: row[column] for column in SEGMENT_COLUMNS}


def frame_csv_rows(row: dict[str, Any]) -> Iterable[list[Any]]:
    """A frame row -> CSV lines: one per ROI (status ok), or one skipped / error line."""
    if "rois" not in row:
        status = "skipped" if row.get("skipped") else f"error: {row['error']['code']}: {row['error']['message']}"
        yield [row["frame"], row["time"], "", "", "", "", "", status]
        return
    for roi in row["rois"]:
        classes = ";".join(f"{c['class']}:{c['score']:.4f}" for c in roi["classes"])
        yield [row["frame"], row["time"], roi["roi"], roi["class"], roi["class_index"], roi["score"], classes, "ok"]


def check_out(path: str) -> str:
    """The format of --out from its suffix; raises naming the allowed ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInputError("out", f"{path}: must end in {' or '.join(FORMATS)}, got {suffix or 'no suffix'!r}")
    return suffix


class RowWriter:
    """Rows into `path` (.jsonl or .csv) through a temporary file: commit() renames it."""

    def __init__(self, path: str, columns: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.suffix = check_out(path)
        self.columns = columns
        folder = self.path.parent if str(self.path.parent) else Path(".")
        try:
            fd, self._temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=folder)
        except OSError as error:
            raise InvalidInputError("out", f"cannot write {path}: {error.strerror or error}") from None
        self._file: TextIO = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file) if self.suffix == ".csv" else None
        if self._csv is not None:
            self._csv.writerow(columns)

    def write(self, row: dict[str, Any]) -> None:
        if self._csv is None:
            self._file.write(json.dumps(row) + "\n")
        elif self.columns == FRAME_COLUMNS:
            self._csv.writerows(frame_csv_rows(row))
        else:
            self._csv.writerow([row[c] for c in self.columns])

    def commit(self) -> None:
        self._file.close()
        try:
            os.replace(self._temp, self.path)
        except OSError as error:
            self.discard()
            raise InvalidInputError("out", f"cannot write {self.path}: {error.strerror or error}") from None

    def discard(self) -> None:
        self._file.close()
        try:
            os.unlink(self._temp)
        except FileNotFoundError:
            pass


def format_frame(row: dict[str, Any]) -> str:
    """One table line per frame: index, time, then each ROI's best class and score."""
    head = f"{row['frame']:>7}  {row['time']:>9.3f}s  "
    if row.get("skipped"):
        return head + "(skipped)"
    if "error" in row:
        return head + f"error: {row['error']['code']}: {row['error']['message']}"
    return head + "  |  ".join(f"{r['class']} {r['score']:.3f}" for r in row["rois"])


def format_segment(row: dict[str, Any]) -> str:
    return (f"roi {row['roi']}  frames {row['start_frame']:>6}..{row['end_frame']:<6} "
            f"{row['start_time']:.3f}s..{row['end_time']:.3f}s  {row['class']}  "
            f"mean {row['mean_confidence']:.3f} min {row['min_confidence']:.3f}")


def table_header() -> str:
    return f"{'FRAME':>7}  {'TIME':>10}  CLASS SCORE (per ROI)"


__all__ = ["FRAME_COLUMNS", "SEGMENT_COLUMNS", "RowWriter", "check_out", "frame_row", "segment_row",
           "format_frame", "format_segment"]
