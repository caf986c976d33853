"""The one error of roiclass.geo: a bad input or output, naming its file.

The command prints it as one line (`error: FILE: what is wrong`) and exits 2;
the Python API raises it (a ValueError, so callers can catch either).
"""
from __future__ import annotations


class GeoInputError(ValueError):
    """`where` (a file, or a flag) and what is wrong with it."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message
