"""The video tool's two errors: a source it cannot read, one that stopped.

Both are ClassifierErrors, so a caller of classify_video catches one type;
VideoSourceError is also a ValueError (bad input, like InvalidInputError).
"""
from __future__ import annotations

import grpc

from ..errors import ClassifierError, InvalidInputError


class VideoSourceError(InvalidInputError):
    """A file that cannot be opened or decoded, a range past its end, a bad
    folder or glob: `field` names the argument ("source", "frames", ...)."""

    def __init__(self, field: str, source: object, description: str) -> None:
        super().__init__(field, f"{source}: {description}")


class SourceStoppedError(ClassifierError):
    """A live source that stopped and did not come back after its reconnects."""

    def __init__(self, source: object, reconnects: int, reason: str) -> None:
        super().__init__(
            grpc.StatusCode.UNAVAILABLE,
            f"live source {source} stopped ({reason}) and did not come back after {reconnects} reconnects",
        )
