"""The authenticated caller of the call running now (a contextvar set by the auth interceptor).

`caller_token_id()` is "token:<8 hex>" (never the token) when token auth is on
and the call passed it, else None: the servicer may key fairness on it.
"""
from __future__ import annotations

import contextvars

_token_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("roiclass_token_id", default=None)


def caller_token_id() -> str | None:
    return _token_id.get()


def set_caller_token_id(token_id: str | None) -> contextvars.Token:
    return _token_id.set(token_id)


def reset_caller_token_id(mark: contextvars.Token) -> None:
    _token_id.reset(mark)
