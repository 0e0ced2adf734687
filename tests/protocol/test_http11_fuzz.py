"""Seeded mutation fuzzing of the corpus: whatever the bytes, every chunking gives the same
verdict, only RequestError escapes, and h11 never disagrees with the gate (the gate must never
accept what h11, parsing after it, refuses)."""

from __future__ import annotations

import dataclasses
import random

from http11_support import CHUNKINGS, Replay, load_invalid, load_valid, replay

from wsgidaemon.protocol import HTTPLimits

SEEDS = [case.raw for case in load_valid()] + [
    case.raw for case in load_invalid() if len(case.raw) < 2000
]
# Bytes that matter to HTTP framing, to make mutations land on interesting ground.
ALPHABET = b'\r\n \t:;,="\x00\x7f\x80\xff0123456789abcdefABCDEF-/?#%*chunkedHTTP/1.'
# Reasons that only arise when h11 refuses or re-frames what the gate accepted.
DISAGREEMENT = ("ambiguous", "malformed request head", "malformed request body")
LIMITS = HTTPLimits(max_body_size=100, max_header_count=8, max_header_size=200)


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(out))
        choice = rng.random()
        if choice < 0.3:
            del out[pos : pos + rng.randint(1, 3)]
        elif choice < 0.6:
            out[pos:pos] = bytes(rng.choice(ALPHABET) for _ in range(rng.randint(1, 3)))
        elif choice < 0.8 and out:
            out[min(pos, len(out) - 1)] = rng.choice(ALPHABET)
        else:
            start = rng.randint(0, len(out))
            out[pos:pos] = out[start : rng.randint(start, len(out))]
    return bytes(out)


def verdict(result: Replay) -> object:
    # expects_continue legitimately depends on whether the body arrived with the head.
    requests = [
        (dataclasses.replace(seen.head, expects_continue=False), bytes(seen.body), seen.trailers)
        for seen in result.requests
    ]
    error = (result.error.status, result.error.reason) if result.error else None
    return requests, error


def test_mutated_requests() -> None:
    rng = random.Random(20240601)
    for _ in range(1500):
        data = mutate(rng, rng.choice(SEEDS))
        verdicts = {name: verdict(replay(split(data), LIMITS)) for name, split in CHUNKINGS.items()}
        first = verdicts["whole"]
        assert all(other == first for other in verdicts.values()), data
        error = first[1]
        if error is not None:
            assert not any(word in error[1] for word in DISAGREEMENT), (data, error)
