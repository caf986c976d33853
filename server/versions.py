"""The one order of model versions.

Integer versions sort numerically and above any non-numeric name, so
`max(versions, key=version_key)` is the latest: "2" < "10", "beta" < "1".
Used by the engine (the latest READY version), the repository scan and the
model listings.
"""
from __future__ import annotations


def version_key(version: str) -> tuple:
    return (1, int(version), "") if version.isdigit() else (0, 0, version)
