"""ClientBase: what Classifier and AsyncClassifier share about their
connection (constructor settings, channel, stubs, a call's deadline).

The two differ only in the grpc module that opens the channel (grpc or
grpc.aio) and in how they wait for a call.
"""
from __future__ import annotations

import math
from types import ModuleType
from typing import Any, Sequence

import grpc
from grpc_health.v1 import health_pb2_grpc

from roiclass.v1 import classifier_pb2_grpc as pb_grpc

from .errors import ClassifierError, InvalidInputError
from .security import TlsConfig, plaintext_token_warning, tls_config, token_metadata
from .targets import parse_targets

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ClientBase:
    """A connection to a roiclass server.

    address: "host:port"; several ("h1:p,h2:p" or a list) or "dns:///name:port"
    balance calls round robin over the healthy backends, retrying UNAVAILABLE
    on another one (targets.py), and streams resume on another backend. timeout: default deadline per call in seconds (None:
    no deadline). max_message_bytes: largest request/response. credentials:
    grpc.ChannelCredentials for TLS set up by hand; tls: a TlsConfig (CA,
    client cert/key for mTLS) or True (system CAs) instead; neither = plaintext.
    token: sent as `authorization: Bearer <token>` on every call.
    options: extra grpc channel options.
    """

    # The module whose insecure_channel / secure_channel open the channel.
    _channels: ModuleType = grpc

    def __init__(
        self,
        address: str | Sequence[str] = DEFAULT_ADDRESS,
        *,
        timeout: float | None = 10.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        tls: TlsConfig | bool | None = None,
        token: str | None = None,
    ) -> None:
        if timeout is not None and not (timeout > 0):
            raise InvalidInputError("timeout", f"must be > 0 seconds or None, got {timeout!r}")
        target = parse_targets(address)
        self.address = address if isinstance(address, str) else ",".join(address)
        self.balanced = target.balanced
        self.timeout = timeout
        self._metadata = token_metadata(token)
        tls = tls_config(tls)
        if tls is not None:
            if credentials is not None:
                raise InvalidInputError("tls", "give tls or credentials, not both")
            credentials = tls.credentials()
            options = [*tls.options(), *options]
        if token is not None and credentials is None:
            for one in self.address.split(","):
                plaintext_token_warning(one)
        channel_options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            *target.options,
            *options,
        ]
        if credentials is not None:
            self.channel = self._channels.secure_channel(target.uri, credentials, channel_options)
        else:
            self.channel = self._channels.insecure_channel(target.uri, channel_options)
        self.stub = pb_grpc.ObjectClassifierStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address!r}, timeout={self.timeout!r})"

    def _deadline(self, timeout: float | None) -> float | None:
        """A unary call's deadline in seconds: `timeout`, or the constructor's when None."""
        if timeout is None:
            return self.timeout
        if not (isinstance(timeout, (int, float)) and timeout > 0 and math.isfinite(timeout)):
            raise InvalidInputError("timeout", f"must be > 0 seconds or None, got {timeout!r}")
        return timeout

    def _unreachable(self, timeout: float) -> ClassifierError:
        """What wait_until_ready raises when the channel did not connect in time."""
        return ClassifierError(
            grpc.StatusCode.UNAVAILABLE, f"no server reachable at {self.address} after {timeout:g} s"
        )
