"""The caller identity, read from real calls: token hash, client certificate
subject, else the connection."""
from __future__ import annotations

import asyncio
import hashlib

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from roiclass.server.callers import caller_id
from tests.certs import make_pki


class Recorder(health_pb2_grpc.HealthServicer):
    def __init__(self):
        self.seen: list[str] = []

    async def Check(self, request, context):
        self.seen.append(caller_id(context))
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def _calls(server_creds=None, channel_creds=None, metadata_list=((),)):
    rec = Recorder()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(rec, server)
    if server_creds is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", server_creds)
    await server.start()
    try:
        target = f"127.0.0.1:{port}"
        channels = []
        own = [("grpc.use_local_subchannel_pool", 1)]  # else channels share a connection
        for metadata in metadata_list:  # one channel (connection) per call
            ch = (grpc.aio.insecure_channel(target, own) if channel_creds is None
                  else grpc.aio.secure_channel(target, channel_creds, own))
            channels.append(ch)
            await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                      metadata=metadata, timeout=10)
        for ch in channels:
            await ch.close()
    finally:
        await server.stop(0)
    return rec.seen


def test_a_token_is_the_caller_by_its_hash_on_any_connection():
    bearer = (("authorization", "Bearer s3cret-token"),)
    seen = asyncio.run(_calls(metadata_list=(bearer, bearer, (("authorization", "Bearer other"),))))
    digest = hashlib.sha256(b"s3cret-token").hexdigest()[:16]
    assert seen[0] == seen[1] == f"token:{digest}"  # two connections, one caller
    assert seen[2] != seen[0]
    assert all("s3cret" not in s for s in seen)


def test_without_a_token_each_connection_is_a_caller():
    seen = asyncio.run(_calls(metadata_list=((), ())))
    assert all(s.startswith("peer:ipv4:127.0.0.1:") for s in seen)
    assert seen[0] != seen[1]


def test_a_client_certificate_names_the_caller(tmp_path):
    pki = make_pki(tmp_path)
    server_creds = grpc.ssl_server_credentials(
        [(pki.read("server_key"), pki.read("server_cert"))], root_certificates=pki.read("ca"),
        require_client_auth=True)
    channel_creds = grpc.ssl_channel_credentials(pki.read("ca"), pki.read("client_key"),
                                                 pki.read("client_cert"))
    seen = asyncio.run(_calls(server_creds, channel_creds, ((), ())))
    assert seen[0] == seen[1] and seen[0].startswith("cert:") and "CN=" in seen[0]
