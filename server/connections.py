"""Per-connection limits: the gRPC server options that bound what one HTTP/2
connection may hold and for how long.

`max_concurrent_streams` bounds the calls in flight on one connection (more
wait in the client); keepalive pings detect dead peers (gRPC pings only while
a call is open, unless `permit_keepalive_without_calls`), and a client pinging
more often than `min_client_ping_interval_s` without data is disconnected
(GOAWAY `too_many_pings`); `max_connection_age_s` ends every connection after
a while (gRPC adds +-10 % jitter), so clients reconnect and a load balancer
spreads them again, and calls still in flight get `max_connection_age_grace_s`
to finish.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionLimits:
    max_concurrent_streams: int = 128  # calls in flight per connection; 0 = gRPC's (no limit)
    keepalive_time_s: float = 60.0  # the server pings a connection quiet this long (while a call is open)...
    keepalive_timeout_s: float = 20.0  # ...and closes it when the ping gets no answer in this long
    min_client_ping_interval_s: float = 10.0  # clients may ping (without data) at most this often
    permit_keepalive_without_calls: bool = False  # pings with no call open: allowed (both ways)?
    max_connection_age_s: float = 0.0  # 0 = no limit
    max_connection_age_grace_s: float = 30.0  # in-flight calls' time after the age is reached

    def __post_init__(self) -> None:
        if self.max_concurrent_streams < 0:
            raise ValueError(f"max_concurrent_streams must be >= 0 (0 = no limit), "
                             f"got {self.max_concurrent_streams}")
        for name in ("keepalive_time_s", "keepalive_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        for name in ("min_client_ping_interval_s", "max_connection_age_s",
                     "max_connection_age_grace_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)}")

    def grpc_options(self) -> list[tuple[str, int]]:
        """The grpc.aio.server options (gRPC's names; times in ms)."""
        ms = lambda s: max(1, round(1000 * s))  # noqa: E731
        opts = [
            ("grpc.keepalive_time_ms", ms(self.keepalive_time_s)),
            ("grpc.keepalive_timeout_ms", ms(self.keepalive_timeout_s)),
            ("grpc.http2.min_ping_interval_without_data_ms",
             round(1000 * self.min_client_ping_interval_s)),
            ("grpc.keepalive_permit_without_calls", int(self.permit_keepalive_without_calls)),
        ]
        if self.max_concurrent_streams:
            opts.append(("grpc.max_concurrent_streams", self.max_concurrent_streams))
        if self.max_connection_age_s:
            opts += [("grpc.max_connection_age_ms", ms(self.max_connection_age_s)),
                     ("grpc.max_connection_age_grace_ms", round(1000 * self.max_connection_age_grace_s))]
        return opts
