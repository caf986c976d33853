"""The server's interceptors: the drain gate and the error mapper.

Both wrap every handler kind of one service (wrapping.py); the error mapper
goes first in the server's list, so a drain refusal is mapped like any error.
"""
from roiclass.server.interceptors.drain import DrainGate
from roiclass.server.interceptors.error_mapping import ErrorMapper

__all__ = ["DrainGate", "ErrorMapper"]
