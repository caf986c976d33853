"""--only-where LABELS:CLASS[,CLASS...]: the frames a labels file gives one of the classes.

A labels file is what `roiclass video` writes (JSON lines or CSV, frame rows
or --segments rows) or a labelling tool's rows of frame index and class: a
CSV with `frame` and `class` columns (or two columns without a header), or
JSON lines with `frame` and `class` keys; a segment row (`start_frame`,
`end_frame`, both included, and `class`) labels each of its frames.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import InvalidInputError

FIELD = "only_where"


@dataclass(frozen=True)
class OnlyWhere:
    path: str
    classes: frozenset[str]


def parse_only_where(text: str) -> OnlyWhere:
    """"labels.jsonl:tabby,tiger cat" -> OnlyWhere (the last ':' ends the path)."""
    path, sep, classes = text.rpartition(":")
    names = frozenset(c.strip() for c in classes.split(",") if c.strip())
    if not sep or not path or not names:
        raise InvalidInputError(
            FIELD, f"must be LABELS:CLASS[,CLASS...] (a labels file, then class names), got {text!r}")
    return OnlyWhere(path, names)


def frames_where(rule: OnlyWhere) -> frozenset[int]:
    """The frame indices the file labels with one of rule.classes."""
    path = Path(rule.path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise InvalidInputError(FIELD, f"cannot read labels file {path}: {reason}") from None
    rows = _json_rows(path, text) if text.lstrip().startswith("{") else _csv_rows(path, text)
    found: set[int] = set()
    for first, last, classes in rows:
        if classes & rule.classes:
            found.update(range(first, last + 1))
    return frozenset(found)


def _json_rows(path: Path, text: str) -> Iterator[tuple[int, int, set[str]]]:
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            yield _row_labels(row)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise InvalidInputError(
                FIELD, f"{path} line {line_number}: expected a JSON object with frame (or start_frame, end_frame) "
                       f"and class (or rois[].class), got {line[:80]!r}") from None


def _row_labels(row: dict[str, Any]) -> tuple[int, int, set[str]]:
    if "start_frame" in row:
        first, last = _index(row["start_frame"]), _index(row["end_frame"])
    else:
        first = last = _index(row["frame"])
    if "rois" in row:
        classes = {str(r["class"]) for r in row["rois"] if r.get("class")}
    else:
        classes = {str(row["class"])} if row.get("class") not in (None, "") else set()
    return first, last, classes


def _index(value: Any) -> int:
    number = int(value)
    if number < 0 or number != float(value):
        raise ValueError(value)
    return number


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, int, set[str]]]:
    lines = list(csv.reader(text.splitlines()))
    if not lines:
        return
    header = [h.strip() for h in lines[0]]
    if "class" in header and ("frame" in header or "start_frame" in header):
        records = (dict(zip(header, line)) for line in lines[1:])
        start = 2
    else:  # frame,class rows without a header
        records = ({"frame": line[0], "class": line[1]} if len(line) >= 2 else {} for line in lines)
        start = 1
    for line_number, record in enumerate(records, start):
        if not any(record.values()):
            continue
        try:
            yield _row_labels({k: v.strip() for k, v in record.items() if v is not None and v.strip()})
        except (ValueError, TypeError, KeyError):
            raise InvalidInputError(
                FIELD, f"{path} line {line_number}: expected frame (or start_frame, end_frame) and class "
                       f"columns, got {','.join(lines[line_number - 1])[:80]!r}") from None
