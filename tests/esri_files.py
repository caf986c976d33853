"""Esri's published example .emd (tests/data/esri/README.md), the one copy the tests read."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ESRI_EMD = ROOT / "tests" / "data" / "esri" / "trained.emd"
# The project's shared fixture it was copied from (absent in a lone clone).
SHARED_ESRI_EMD = ROOT.parent / "shared" / "fixtures" / "esri" / "trained.emd"
