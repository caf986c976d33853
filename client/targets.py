"""Targets: one address, several, or a `dns:///name:port` -> one gRPC channel
target and the channel options that balance calls over its backends.

Several plain targets become one channel over gRPC's static `ipv4:`/`ipv6:`
resolver (names are resolved once, here, with getaddrinfo; a fleet that
changes belongs behind `dns:///`, which gRPC re-resolves). One channel, not
one per target, because then gRPC's own round_robin, health checking and
retry policy do the work and a retried call moves to another backend.
"""
from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Any, Sequence

from .errors import InvalidInputError

SERVICE = "roiclass.v1.ObjectClassifier"
MAX_ATTEMPTS = 5
# Retried calls are buffered until committed; a larger request is not retried (gRPC's default: 256 KiB).
RETRY_BUFFER_BYTES = 16 * 1024 * 1024
# A backend that is down is retried at least this often, so one that comes (back) up gets calls within seconds.
MAX_RECONNECT_BACKOFF_MS = 2000

# Classification is idempotent: a call that met a dead backend (UNAVAILABLE) is
# sent again, to another backend, within the call's deadline.
SERVICE_CONFIG: dict[str, Any] = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": ""},
    "methodConfig": [{
        "name": [{"service": SERVICE}],
        "retryPolicy": {
            "maxAttempts": MAX_ATTEMPTS,
            "initialBackoff": "0.05s",
            "maxBackoff": "1s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }],
}


@dataclass(frozen=True)
class Target:
    """What the channel opens: `uri` (a gRPC target) and its extra options."""

    uri: str
    options: tuple[tuple[str, Any], ...]
    balanced: bool


def balanced_options(authority: str | None) -> tuple[tuple[str, Any], ...]:
    """Channel options of a load-balanced channel (client-side health checking
    is on in gRPC's C core whenever the service config asks for it)."""
    options: list[tuple[str, Any]] = [
        ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
        ("grpc.enable_retries", 1),
        ("grpc.per_rpc_retry_buffer_size", RETRY_BUFFER_BYTES),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
        ("grpc.initial_reconnect_backoff_ms", 200),
    ]
    if authority is not None:  # TLS checks the first target's name (or IP) on every backend
        options.append(("grpc.default_authority", authority))
    return tuple(options)


def parse_targets(address: str | Sequence[str]) -> Target:
    """address: "host:port", "h1:p,h2:p", a list of them, or "dns:///name:port"."""
    items = _split(address)
    if len(items) == 1 and not items[0].startswith("dns:"):
        return Target(items[0], (), False)
    if len(items) == 1:
        return Target(items[0], balanced_options(None), True)
    if any(":///" in item or item.startswith(("dns:", "ipv4:", "ipv6:", "unix:")) for item in items):
        raise InvalidInputError("address", f"several targets must be plain HOST:PORT, got {list(items)!r}")
    hosts = [_host_port(item) for item in items]
    addresses = [_resolve(host, port) for host, port in hosts]
    families = {family for family, _ in addresses}
    if len(families) > 1:
        raise InvalidInputError("address", f"several targets must be all IPv4 or all IPv6, got {list(items)!r}")
    scheme = families.pop()
    uri = f"{scheme}:" + ",".join(literal for _, literal in addresses)
    # The static resolver's own authority is the whole list, which no certificate names.
    return Target(uri, balanced_options(items[0]), True)


def _split(address: str | Sequence[str]) -> list[str]:
    raw = [address] if isinstance(address, str) else list(address)
    if not raw or not all(isinstance(a, str) for a in raw):
        raise InvalidInputError("address", f"must be HOST:PORT, a list of them or dns:///NAME:PORT, got {address!r}")
    items = [part.strip() for a in raw for part in (a.split(",") if not a.startswith(("ipv4:", "ipv6:")) else [a])]
    if any(not item for item in items):
        raise InvalidInputError("address", f"an empty target in {address!r}")
    return items


def _host_port(item: str) -> tuple[str, int]:
    host, sep, port = item.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInputError("address", f"expected HOST:PORT (port 1..65535), got {item!r}")
    return host, int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _resolve(host: str, port: int) -> tuple[str, str]:
    """("ipv4" | "ipv6", the literal the static resolver takes)."""
    if not _is_ip(host):
        try:
            host = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
        except OSError as error:
            raise InvalidInputError("address", f"cannot resolve {host!r}: {error}") from None
    ip = ipaddress.ip_address(host)
    if ip.version == 4:
        return "ipv4", f"{ip}:{port}"
    return "ipv6", f"[{ip}]:{port}"
