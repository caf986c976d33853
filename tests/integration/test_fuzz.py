"""Mutated requests (bit flips, truncations, insertions of a valid serialized
request) against the live server: every call gets a status that is not
UNKNOWN or INTERNAL, every stream frame gets its own answer and the stream
lives on, the server's memory stays flat, and good requests stay right."""
from __future__ import annotations

import os

import grpc
import numpy as np
import pytest

from roiclass.v1 import classifier_pb2 as pb
from tests.integration.requests import raw_image, request, roi

SERVICE = "/roiclass.v1.ObjectClassifier/"
SEED = 20261203


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:  # the server runs in this process
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        kind = rng.integers(4)
        if kind == 0 and b:  # flip a byte
            b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
        elif kind == 1 and b:  # truncate
            del b[int(rng.integers(len(b))):]
        elif kind == 2:  # insert random bytes
            at = int(rng.integers(len(b) + 1))
            b[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        else:  # overwrite a header byte (tags and lengths live there)
            b[int(rng.integers(min(len(b), 64)))] = int(rng.integers(256))
    return bytes(b)


@pytest.fixture(scope="module")
def seed_request(chelsea) -> pb.ClassifyObjectRequest:
    small = np.ascontiguousarray(chelsea[::6, ::6])  # 76 x 50: cheap when a mutant is valid
    return request(raw_image(small), rois=[roi(10, 5, 40, 30, 10)], top_k=3, request_id="seed")


def _unary_codes(channel, payloads) -> set:
    call = channel.unary_unary(SERVICE + "ClassifyObject", request_serializer=None,
                               response_deserializer=None)
    codes = set()
    for payload in payloads:
        try:
            call(payload, timeout=30)
            codes.add(grpc.StatusCode.OK)
        except grpc.RpcError as err:
            codes.add(err.code())
    return codes


@pytest.mark.slow
def test_mutated_unary_requests_get_clean_statuses_and_memory_stays_flat(channel, stub, seed_request):
    rng = np.random.default_rng(SEED)
    data = seed_request.SerializeToString()
    _unary_codes(channel, [mutate(data, rng) for _ in range(300)])  # warm-up: caches, arenas
    before = _rss_mb()
    codes = _unary_codes(channel, [mutate(data, rng) for _ in range(2500)])
    grown = _rss_mb() - before
    assert not codes & {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}, codes
    assert grpc.StatusCode.INVALID_ARGUMENT in codes
    assert grown < 64, f"RSS grew {grown:.0f} MiB over 2500 mutated requests"
    good = stub.ClassifyObject(seed_request, timeout=30)
    assert good.request_id == "seed" and len(good.results) == 1 and good.results[0].confidences


@pytest.mark.slow
def test_mutated_stream_frames_fail_alone(channel, seed_request):
    rng = np.random.default_rng(SEED + 1)
    data = seed_request.SerializeToString()
    call = channel.stream_stream(SERVICE + "ClassifyObjectStream", request_serializer=None,
                                 response_deserializer=pb.ClassifyObjectStreamResponse.FromString)
    for _ in range(4):
        frames = [data if k % 10 == 0 else mutate(data, rng) for k in range(250)]
        replies = list(call(iter(frames), timeout=120))
        assert len(replies) == len(frames)  # the stream outlived every bad frame
        for k, reply in enumerate(replies):
            if reply.WhichOneof("outcome") == "error":
                assert reply.error.code not in (grpc.StatusCode.UNKNOWN.value[0],
                                                grpc.StatusCode.INTERNAL.value[0]), reply.error
            if k % 10 == 0:
                assert reply.WhichOneof("outcome") == "response" and reply.request_id == "seed"
