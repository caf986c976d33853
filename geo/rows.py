"""The output fields: every feature's attributes plus these, one table of them.

  ClassLabel   the best class's name (--class-label-field), null when not classified
  ClassValue   the .emd's Value of that class (the class index without an .emd)
  Confidence   the best class's probability (--confidence-field)
  AllClasses   with --all-classes: JSON {class name: probability} of every class, best first
  Status       "ok", or why there is no label (STATUSES)
  ImagePath    the image a row's chip came from (separately, and without --features)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa

OK = "ok"
PARTIAL = "partly outside raster"
OUTSIDE = "outside raster"
NO_DATA = "no data"
NO_GEOMETRY = "no geometry"
OUTSIDE_EXTENT = "outside extent"
NOT_REPROJECTED = "cannot be reprojected"
LOW_CONFIDENCE = "below min confidence"
FAILED = "failed: "  # + the reason
# Labelled statuses: the others have a null label.
LABELLED = (OK, PARTIAL)


@dataclass(frozen=True)
class FieldNames:
    label: str = "ClassLabel"
    value: str = "ClassValue"
    confidence: str = "Confidence"
    all_classes: str = "AllClasses"
    status: str = "Status"
    image: str = "ImagePath"


@dataclass
class Label:
    """One output row's classification."""

    status: str
    name: str | None = None
    value: int | None = None
    confidence: float | None = None
    scores: dict[str, float] | None = None
    image: str | None = None


def label_from(result, class_values: dict[str, int], min_confidence: float, status: str,
               all_classes: bool) -> Label:
    """A RoiResult -> Label (null label below --min-confidence)."""
    scores = _scores(result.confidences, class_values) if all_classes else None
    if result.score < min_confidence:
        return Label(LOW_CONFIDENCE, confidence=float(result.score), scores=scores)
    value = class_values.get(result.class_name, result.class_index)
    return Label(status, result.class_name, int(value), float(result.score), scores)


def _scores(confidences, class_values: dict[str, int]) -> dict[str, float]:
    """{class name: confidence}, best first; a name two classes share (ImageNet
    has two "crane"s) is told apart by its ClassValue: "crane [134]"."""
    counts: dict[str, int] = {}
    for c in confidences:
        counts[c.name] = counts.get(c.name, 0) + 1
    return {(c.name if counts[c.name] == 1 else f"{c.name} [{class_values.get(c.name, c.index)}]"): float(c.confidence)
            for c in confidences}


@dataclass
class Summary:
    features: int = 0
    rows: int = 0
    labelled: int = 0
    no_data: int = 0
    outside: int = 0
    failed: int = 0
    seconds: float = 0.0
    startup_s: float = 0.0  # of seconds: opening the inputs and the backend (--local: loading the model)
    startup_cpu_s: float = 0.0  # this process's CPU seconds in that time
    out: str | None = None
    table: pa.Table | None = field(default=None, repr=False)

    def add(self, labels: list[Label]) -> None:
        self.rows += len(labels)
        for label in labels:
            if label.status in LABELLED:
                self.labelled += 1
            elif label.status == NO_DATA:
                self.no_data += 1
            elif label.status.startswith(FAILED):
                self.failed += 1
            elif label.status in (OUTSIDE, OUTSIDE_EXTENT):
                self.outside += 1

    def line(self) -> str:
        rate = self.features / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.features} features, {self.labelled} labelled, {self.no_data} no data, "
                f"{self.outside} outside, {self.failed} failed, {self.seconds:.1f} s ({rate:.1f} features/s)"
                + (f" -> {self.out}" if self.out else ""))


def label_columns(labels: list[Label], names: FieldNames, all_classes: bool, with_image: bool) -> dict:
    """The added columns, in output order."""
    columns = {
        names.label: pa.array([lb.name for lb in labels], pa.string()),
        names.value: pa.array([lb.value for lb in labels], pa.int64()),
        names.confidence: pa.array([lb.confidence for lb in labels], pa.float64()),
    }
    if all_classes:
        columns[names.all_classes] = pa.array(
            [None if lb.scores is None else json.dumps(lb.scores) for lb in labels], pa.string())
    columns[names.status] = pa.array([lb.status for lb in labels], pa.string())
    if with_image:
        columns[names.image] = pa.array([lb.image for lb in labels], pa.string())
    return columns


def with_labels(attributes: pa.Table, labels: list[Label], names: FieldNames, all_classes: bool,
                with_image: bool) -> pa.Table:
    """The attributes (rows already repeated per label) plus the label columns;
    an attribute of the same name (case-insensitive) is replaced."""
    columns = label_columns(labels, names, all_classes, with_image)
    added = {n.lower() for n in columns}
    keep = [n for n in attributes.column_names if n.lower() not in added]
    table = attributes.select(keep)
    for name, column in columns.items():
        table = table.append_column(name, column)
    return table
