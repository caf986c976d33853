"""The preprocessing kernel the engine calls (roiclass.ext.preprocess_rois)."""
from __future__ import annotations

try:
    from roiclass.ext import preprocess_rois  # noqa: F401
except ImportError:  # pragma: no cover - kernel not built yet (development only)
    from roiclass.server.engine._fallback import preprocess_rois  # noqa: F401
