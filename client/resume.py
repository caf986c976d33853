"""Stream resumption, shared by Classifier.stream and AsyncClassifier.stream.

A stream's frames go into one Journal in frame order: a request waiting for
its answer, or a result made here (bad input). The reader takes the head:
a local result at once, a request when the call's next response arrives
(the server answers in order). When the call breaks (UNAVAILABLE: the
backend died or went away), the stream is re-opened, on another backend when
the channel balances, and the new call first re-sends every request still in
the journal, in order, then goes on with new frames: nothing is lost or
answered twice. A frame's own error (its google.rpc.Status) is a result and
never re-opens the stream.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import grpc

from .errors import ClassifierError

# Re-opens in a row without an answer in between; then the stream fails.
MAX_REOPENS = 5
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 1.0


@dataclass
class Journal:
    """Frames sent or failed here and not yet handed to the caller, by index."""

    entries: deque = field(default_factory=deque)  # ("sent", request) | ("local", StreamResult)
    head: int = 0  # index of entries[0]
    ended: bool = False  # the caller's frames are exhausted
    failure: BaseException | None = None  # the caller's iterator raised

    @property
    def tail(self) -> int:
        return self.head + len(self.entries)

    def add(self, kind: str, payload: Any) -> None:
        self.entries.append((kind, payload))

    def at(self, index: int) -> tuple[str, Any]:
        return self.entries[index - self.head]

    def pop(self) -> tuple[str, Any]:
        self.head += 1
        return self.entries.popleft()

    def unanswered(self) -> int:
        return sum(kind == "sent" for kind, _ in self.entries)


class Reopens:
    """The budget of re-opens and the backoff between them; `deadline` is
    the whole stream's (time.monotonic()), None = none."""

    def __init__(self, timeout: float | None) -> None:
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.in_a_row = 0
        self.total = 0

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.001, self.deadline - time.monotonic())

    def answered(self) -> None:
        self.in_a_row = 0

    def next_backoff(self, error: ClassifierError) -> float:
        """Seconds to wait before re-opening after `error`; raises it when
        the stream may not re-open (not UNAVAILABLE, budget or deadline spent)."""
        if not resumable(error) or self.in_a_row >= MAX_REOPENS:
            raise error
        backoff = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** self.in_a_row)
        if self.deadline is not None and time.monotonic() + backoff >= self.deadline:
            raise error
        self.in_a_row += 1
        self.total += 1
        return backoff


def resumable(error: ClassifierError) -> bool:
    """A broken call (the connection or the backend went away), not a verdict on the frames."""
    return error.code == grpc.StatusCode.UNAVAILABLE


def answer_failed(error: ClassifierError) -> bool:
    """At the close of a call whose frames were all answered, a broken
    connection loses nothing: the stream is done, not failed."""
    return not resumable(error)
