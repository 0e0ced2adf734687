"""Fixture for tests/apache/test_shim_faults.py: applications that misbehave on purpose.

The slow ones wait for a release file named by the query string, next to this script, which
the test creates once it has seen what it came for (at most WAIT seconds, so that a failed test
never leaves a thread behind).
"""

import os
import time

WAIT = 20.0


def wait_for_release(environ):
    release = os.path.join(os.path.dirname(__file__), environ["QUERY_STRING"] + ".release")
    deadline = time.monotonic() + WAIT
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/slow":  # nothing at all until released: the shim times out first
        wait_for_release(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"released"]
    if path in ("/stream", "/stream-length"):  # its pid first, then nothing until released
        headers = [("Content-Type", "text/plain")]
        if path == "/stream-length":
            headers.append(("Content-Length", "1000"))
        start_response("200 OK", headers)

        def stream():
            yield b"pid %d\n" % os.getpid()
            wait_for_release(environ)
            yield b"too late\n"

        return stream()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"pid %d" % os.getpid()]
