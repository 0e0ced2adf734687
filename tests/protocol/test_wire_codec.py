"""Single frames of the wire protocol: exact bytes of the encoders, their argument checks, text
fields, the header checks and the receive buffer."""

from __future__ import annotations

import pickle
import random
from dataclasses import FrozenInstanceError

import pytest

from wsgidaemon.protocol.wire import (
    DEFAULT_MAX_HEAD,
    HEADER,
    MAX_DATA,
    MAX_PAIRS,
    MAX_SMALL,
    EndCode,
    ErrorCode,
    FrameType,
    RetryReason,
    WireProtocolError,
    WireRequestHead,
    WireResponseEnd,
    decode_text,
    encode_error,
    encode_goaway,
    encode_request_abort,
    encode_request_body,
    encode_request_end,
    encode_request_head,
    encode_response_body,
    encode_response_end,
    encode_response_head,
    encode_retry,
    encode_start,
    encode_text,
)
from wsgidaemon.protocol.wirebuffer import FrameReader
from wsgidaemon.protocol.wirereaders import (
    check_header,
    decode_error,
    decode_request_head,
    decode_response_end,
    decode_response_head,
    decode_retry,
)

# (encoded, exact bytes): h11's test_io style, every byte spelled out once.
EXACT = [
    (encode_request_end(), b"\x03\x00\x00\x00\x00\x00\x00\x00"),
    (encode_start(), b"\x15\x00\x00\x00\x00\x00\x00\x00"),
    (encode_goaway(), b"\x16\x00\x00\x00\x00\x00\x00\x00"),
    (encode_request_body(b"hi"), b"\x02\x00\x00\x00\x00\x00\x00\x02hi"),
    (encode_response_body(b"ok"), b"\x12\x00\x00\x00\x00\x00\x00\x02ok"),
    (
        encode_request_head([(b"A", b"1")], large_body=True),
        b"\x01\x00\x00\x00\x00\x00\x00\x10WSGD\x00\x02\x00\x01\x00\x00\x00\x01A\x001\x00",
    ),
    (
        encode_response_head(404, b"404 Nope", [(b"X", b"")]),
        b"\x11\x00\x00\x00\x00\x00\x00\x21WSGD\x00\x02\x01\x94"
        b"\x00\x00\x00\x08404 Nope\x00\x00\x00\x01\x00\x00\x00\x01X\x00\x00\x00\x00",
    ),
    (encode_request_abort("gone"), b"\x04\x00\x00\x00\x00\x00\x00\x08\x00\x00\x00\x04gone"),
    (
        encode_response_end(EndCode.TIMEOUT, "late"),
        b"\x13\x00\x00\x00\x00\x00\x00\x0a\x00\x02\x00\x00\x00\x04late",
    ),
    (
        encode_retry(RetryReason.SCRIPT_CHANGED, 7, "r"),
        b"\x14\x00\x00\x00\x00\x00\x00\x09\x00\x02\x00\x07\x00\x00\x00\x01r",
    ),
    (
        encode_error(ErrorCode.TOO_LARGE, "big"),
        b"\x1f\x00\x00\x00\x00\x00\x00\x0b\x00\x04\x00\x02\x00\x00\x00\x03big",
    ),
]


@pytest.mark.parametrize(("encoded", "expected"), EXACT, ids=lambda v: f"0x{v[0]:02x}")
def test_exact_bytes(encoded: bytes, expected: bytes) -> None:
    assert encoded == expected


def test_empty_data_gives_no_frame() -> None:
    assert encode_request_body(b"") == b""
    assert encode_response_body(b"") == b""


def test_data_is_split_into_max_data_frames() -> None:
    data = bytes(range(256)) * (MAX_DATA // 256 * 2) + b"xyz"
    encoded = encode_response_body(data)
    sizes, pos, payload = [], 0, b""
    while pos < len(encoded):
        kind, flags, reserved, size = HEADER.unpack_from(encoded, pos)
        assert (kind, flags, reserved) == (FrameType.RESPONSE_BODY, 0, 0)
        sizes.append(size)
        payload += encoded[pos + 8 : pos + 8 + size]
        pos += 8 + size
    assert sizes == [MAX_DATA, MAX_DATA, 3]
    assert payload == data


def test_bytes_like_data_is_accepted() -> None:
    assert encode_request_body(bytearray(b"ab")) == encode_request_body(b"ab")
    assert encode_request_body(memoryview(b"ab" * MAX_DATA)) == encode_request_body(
        b"ab" * MAX_DATA
    )


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: encode_response_head(99, b"99 X", []), ValueError),
        (lambda: encode_response_head(1000, b"1000 X", []), ValueError),
        (lambda: encode_response_head(True, b"1 X", []), ValueError),
        (lambda: encode_response_head("200", b"200 OK", []), ValueError),
        (lambda: encode_response_head(200, "200 OK", []), TypeError),
        (lambda: encode_response_head(200, b"200 OK", [(b"", b"x")]), ValueError),
        (lambda: encode_response_head(200, b"200 OK", [("X", "y")]), TypeError),
        (lambda: encode_request_head([(b"", b"x")]), ValueError),
        (lambda: encode_request_head([(b"A", "1")]), TypeError),
        (lambda: encode_request_head([(b"A", b"")] * (MAX_PAIRS + 1)), ValueError),
        (lambda: encode_request_head([(b"A", b"x" * 100)], max_head=100), ValueError),
        (lambda: encode_retry(RetryReason.DRAINING, -1, ""), ValueError),
        (lambda: encode_retry(RetryReason.DRAINING, 65536, ""), ValueError),
        (lambda: encode_retry(9, 1, ""), ValueError),  # type: ignore[arg-type]
        (lambda: encode_response_end(9, ""), ValueError),  # type: ignore[arg-type]
        (lambda: encode_error(0, ""), ValueError),  # type: ignore[arg-type]
    ],
)
def test_encoders_refuse_bad_arguments(call: object, error: type[Exception]) -> None:
    assert callable(call)
    with pytest.raises(error):
        call()


def test_head_at_the_limits() -> None:
    pairs = [(b"K%05d" % i, b"") for i in range(MAX_PAIRS)]
    encoded = encode_request_head(pairs)
    assert decode_request_head(encoded[8:]) == WireRequestHead(tuple(pairs), False)
    # max_head counts the payload, not the frame header.
    exact = encode_request_head([(b"A", b"x" * (100 - 15))], max_head=100)  # 15: all but the value
    assert len(exact) == 8 + 100


# -- text fields --------------------------------------------------------------------------------


def test_text_round_trips_any_bytes() -> None:
    rng = random.Random(7)
    for _ in range(300):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        assert encode_text(decode_text(raw), MAX_SMALL) == raw


def test_text_is_utf8() -> None:
    assert encode_text("café €", 100) == "café €".encode()
    assert decode_text("café €".encode()) == "café €"


def test_unencodable_text_is_escaped_not_refused() -> None:
    assert encode_text("a\ud800b", 100) == b"a\\ud800b"


def test_long_text_is_cut_at_a_character_boundary() -> None:
    raw = encode_text("é" * 40000, 65531)
    assert len(raw) == 65530
    assert raw.decode("utf-8") == "é" * 32765
    frame = encode_response_end(EndCode.APP_ERROR, "x" * 100000)
    assert len(frame) == 8 + MAX_SMALL
    assert decode_response_end(frame[8:]) == WireResponseEnd(EndCode.APP_ERROR, "x" * 65530)
    for frame in (
        encode_request_abort("y" * 70000),
        encode_retry(RetryReason.DRAINING, 1, "y" * 70000),
        encode_error(ErrorCode.MALFORMED, "y" * 70000),
    ):
        assert len(frame) == 8 + MAX_SMALL


# -- header checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ((0x7E, 0, 0, 0), ErrorCode.MALFORMED, "unknown frame type 0x7e"),
        ((0x7E, 1, 1, 1 << 30), ErrorCode.MALFORMED, "unknown frame type"),  # type first
        ((0x02, 1, 0, 1 << 30), ErrorCode.MALFORMED, "flags"),  # then flags, before the limit
        ((0x02, 0, 1, 1 << 30), ErrorCode.MALFORMED, "reserved"),
        ((0x02, 0, 0, 0), ErrorCode.MALFORMED, "empty REQUEST_BODY"),
        ((0x12, 0, 0, 0), ErrorCode.MALFORMED, "empty RESPONSE_BODY"),
        ((0x02, 0, 0, MAX_DATA + 1), ErrorCode.TOO_LARGE, "above its limit"),
        ((0x04, 0, 0, MAX_SMALL + 1), ErrorCode.TOO_LARGE, "above its limit"),
        ((0x01, 0, 0, DEFAULT_MAX_HEAD + 1), ErrorCode.TOO_LARGE, "above its limit"),
        ((0x03, 0, 0, MAX_SMALL + 1), ErrorCode.MALFORMED, "has none"),  # limit 0
        ((0x15, 0, 0, 1), ErrorCode.MALFORMED, "has none"),
    ],
)
def test_header_checks(fields: tuple[int, int, int, int], code: ErrorCode, words: str) -> None:
    with pytest.raises(WireProtocolError) as refused:
        check_header(*fields, DEFAULT_MAX_HEAD)
    assert refused.value.code is code
    assert words in refused.value.message


def test_header_limits_are_inclusive() -> None:
    assert check_header(0x02, 0, 0, MAX_DATA, 100) == (FrameType.REQUEST_BODY, MAX_DATA)
    assert check_header(0x13, 0, 0, MAX_SMALL, 100) == (FrameType.RESPONSE_END, MAX_SMALL)
    assert check_header(0x11, 0, 0, 100, 100) == (FrameType.RESPONSE_HEAD, 100)
    with pytest.raises(WireProtocolError):
        check_header(0x11, 0, 0, 101, 100)


# -- payload decoders ---------------------------------------------------------------------------


def test_bad_version_names_the_peer_version() -> None:
    payload = b"WSGD\x00\x07" + b"\x00" * 20
    with pytest.raises(WireProtocolError) as refused:
        decode_response_head(payload)
    assert refused.value.code is ErrorCode.BAD_VERSION
    assert refused.value.peer_version == 7
    assert "7" in refused.value.message


def test_magic_is_checked_before_version() -> None:
    with pytest.raises(WireProtocolError) as refused:
        decode_request_head(b"XSGD\x00\x07\x00\x00\x00\x00\x00\x00")
    assert refused.value.code is ErrorCode.BAD_MAGIC
    assert refused.value.peer_version is None


def test_pair_count_is_checked_before_the_pairs() -> None:
    # 65537 claimed in a tiny payload: the limit first, then what the payload can hold.
    with pytest.raises(WireProtocolError) as refused:
        decode_request_head(b"WSGD\x00\x02\x00\x00\x00\x01\x00\x01")
    assert refused.value.code is ErrorCode.TOO_LARGE
    with pytest.raises(WireProtocolError) as refused:
        decode_request_head(b"WSGD\x00\x02\x00\x00\x00\x00\x00\x02" + b"\x00" * 15)
    assert refused.value.code is ErrorCode.MALFORMED
    with pytest.raises(WireProtocolError) as refused:
        decode_response_head(b"WSGD\x00\x02\x00\xc8\x00\x00\x00\x00\x00\x00\x00\x02")
    assert refused.value.code is ErrorCode.MALFORMED


@pytest.mark.parametrize(
    ("environment", "words"),
    [
        (b"\x00\x00\x00\x01A\x001", "not 1 pair(s) of NUL-terminated strings"),
        (b"\x00\x00\x00\x01A\x001\x00B", "not 1 pair(s)"),
        (b"\x00\x00\x00\x02A\x001\x00", "not 2 pair(s)"),
        (b"\x00\x00\x00\x01\x00v\x00", "an empty environment name"),
    ],
)
def test_environment_faults_are_named(environment: bytes, words: str) -> None:
    with pytest.raises(WireProtocolError) as refused:
        decode_request_head(b"WSGD\x00\x02\x00\x00" + environment)
    assert refused.value.code is ErrorCode.MALFORMED
    assert words in refused.value.message


def test_environment_decodes_as_latin1_text_and_back_to_bytes() -> None:
    pairs = ((b"HTTP_X", b"caf\xe9"), (b"EMPTY", b""), (b"HTTP_X", b"again"))
    head = decode_request_head(encode_request_head(pairs)[HEADER.size :])
    assert head.text() == {"HTTP_X": "again", "EMPTY": ""}  # the last of a repeated name
    assert head.environ == pairs
    assert head == WireRequestHead(pairs, False)


def test_environment_refuses_what_it_cannot_carry() -> None:
    with pytest.raises(ValueError, match="NUL"):
        encode_request_head([(b"HTTP_X", b"a\x00b")])
    with pytest.raises(ValueError, match="empty"):
        encode_request_head([(b"", b"v")])


def test_decoders_of_small_frames() -> None:
    assert decode_retry(encode_retry(RetryReason.DRAINING, 3, "t")[8:]).attempts == 3
    error = decode_error(b"\x00\x02\x00\x09\x00\x00\x00\x00")
    assert (error.code, error.version, error.text) == (ErrorCode.BAD_VERSION, 9, "")


def test_events_are_frozen_and_slotted() -> None:
    event = WireResponseEnd(EndCode.COMPLETE, "")
    with pytest.raises(FrozenInstanceError):
        event.reason = "x"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


def test_protocol_error_pickles() -> None:
    error = WireProtocolError(ErrorCode.BAD_VERSION, "other version", peer_version=2)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message, copy.peer_version) == (
        ErrorCode.BAD_VERSION,
        "other version",
        2,
    )
    assert str(copy) == str(error) == "BAD_VERSION: other version"


# -- the receive buffer -------------------------------------------------------------------------


def test_payload_in_its_own_chunk_is_not_copied() -> None:
    payload = b"p" * 1000
    reader = FrameReader(DEFAULT_MAX_HEAD)
    reader.feed(HEADER.pack(FrameType.REQUEST_BODY, 0, 0, len(payload)))
    reader.feed(payload)
    assert reader.header() == (FrameType.REQUEST_BODY, 1000)
    assert reader.payload(1000) is payload
    assert reader.buffered == 0


def test_payload_over_many_chunks_is_joined() -> None:
    frame = encode_request_body(bytes(range(256)) * 40)
    reader = FrameReader(DEFAULT_MAX_HEAD)
    for i in range(0, len(frame), 3):
        assert reader.header() is None or reader.payload(10240) is None
        reader.feed(frame[i : i + 3])
    assert reader.header() == (FrameType.REQUEST_BODY, 10240)
    assert reader.payload(10240) == bytes(range(256)) * 40
    assert reader.header() is None


def test_several_frames_in_one_chunk() -> None:
    reader = FrameReader(DEFAULT_MAX_HEAD)
    reader.feed(encode_request_body(b"one") + encode_request_body(b"two") + b"\x02\x00")
    assert [reader.header(), reader.payload(3)] == [(FrameType.REQUEST_BODY, 3), b"one"]
    assert [reader.header(), reader.payload(3)] == [(FrameType.REQUEST_BODY, 3), b"two"]
    assert reader.header() is None
    assert reader.buffered == 2


def test_mutable_input_is_copied() -> None:
    buffer = bytearray(encode_request_body(b"abc"))
    reader = FrameReader(DEFAULT_MAX_HEAD)
    reader.feed(buffer)  # type: ignore[arg-type]
    buffer[8:] = b"xyz"
    assert reader.header() == (FrameType.REQUEST_BODY, 3)
    assert reader.payload(3) == b"abc"
