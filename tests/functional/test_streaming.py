"""A 1 GiB upload and a 1 GiB download pass through a worker with flat memory: the event loop
stops reading from a client the application is not keeping up with, and the application's
generator waits for a client that is not reading."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator

from tests.functional.daemon import Daemon

Serve = Callable[..., Daemon]
GIB = 1 << 30
BLOCK = b"0123456789abcdef" * 4096
# Python, uvloop and the app take ~30 MiB; buffering a body would take ~1 GiB.
PEAK_LIMIT_KIB = 120 * 1024


def blocks(total: int) -> Iterator[bytes]:
    for _ in range(total // len(BLOCK)):
        yield BLOCK


def peak_rss(daemon: Daemon) -> int:
    return int(json.loads(daemon.request(path="/peak").body)["peak_rss_kib"])


def test_one_gib_upload_to_a_slow_application_keeps_memory_flat(serve: Serve) -> None:
    daemon = serve("bigbody.wsgi", "--threads", "2", wait_ready=1)
    conn = daemon.connection(timeout=120)
    try:
        conn.request(
            "POST", "/upload?delay=1", body=blocks(GIB), headers={"Content-Length": str(GIB)}
        )
        report = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    expected = hashlib.md5()
    for block in blocks(GIB):
        expected.update(block)
    assert report == {"md5": expected.hexdigest(), "bytes": GIB}
    assert peak_rss(daemon) < PEAK_LIMIT_KIB


def test_one_gib_download_keeps_memory_flat(serve: Serve) -> None:
    daemon = serve("bigbody.wsgi", "--threads", "2", wait_ready=1)
    conn = daemon.connection(timeout=120)
    digest = hashlib.md5()
    received = 0
    try:
        conn.request("GET", f"/download?size={GIB}")
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            received += len(chunk)
    finally:
        conn.close()
    expected = hashlib.md5()
    for block in blocks(GIB):
        expected.update(block)
    assert (received, digest.hexdigest()) == (GIB, expected.hexdigest())
    assert peak_rss(daemon) < PEAK_LIMIT_KIB
