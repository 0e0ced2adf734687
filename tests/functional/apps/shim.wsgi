"""Fixture for the daemon's Apache-facing socket."""

import json
import os
import threading

# Six requests must be inside the application at once to pass it.
TOGETHER = threading.Barrier(6, timeout=20)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/environ":
        body = json.dumps(
            {key: value for key, value in environ.items() if isinstance(value, (str, int, float, tuple))}
        ).encode()
    elif path == "/fail-after-head":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def fail():
            yield b"partial"
            raise RuntimeError("failed after the head")

        return fail()
    elif path == "/cookies":
        start_response("200 Okay Then", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        return [b"cookies"]
    elif path == "/duplex":
        # Answers 8 MiB before reading its 8 MiB request body.
        start_response("200 OK", [("Content-Type", "application/octet-stream")])

        def answer():
            for _ in range(128):
                yield b"r" * 65536
            total = 0
            while chunk := environ["wsgi.input"].read(65536):
                total += len(chunk)
            yield b"read %d" % total

        return answer()
    elif path == "/together":
        body = b"together %d" % TOGETHER.wait()
    elif path == "/echo-body":
        body = environ["wsgi.input"].read()
    else:
        body = b"pid %d" % os.getpid()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
