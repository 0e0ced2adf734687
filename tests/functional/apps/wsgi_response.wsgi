"""start_response, write(), iterables, close() and file_wrapper, one behaviour per path.

The first PATH_INFO segment picks the behaviour and the second is a tag the test chooses, so
its log lines and close() records can be told apart. Every iterable's close() call is recorded
in this process's memory and reported by /closed (run it with one process).
"""

import io
import json
import sys
import threading
from urllib.parse import parse_qsl

lock = threading.Lock()
closed = []


def record_close(tag):
    with lock:
        closed.append(tag)


class Body:
    """An iterable whose close() is recorded; `chunks` may hold exceptions to raise."""

    def __init__(self, tag, chunks):
        self.tag = tag
        self.chunks = chunks

    def __iter__(self):
        for chunk in self.chunks:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk

    def close(self):
        record_close(self.tag)


class Endless:
    """64 KiB blocks until closed (or 1 GiB): for clients that go away mid-response."""

    def __init__(self, tag):
        self.tag = tag

    def __iter__(self):
        for _ in range(16384):
            yield b"z" * 65536

    def close(self):
        record_close(self.tag)


class Reader:
    """A file-like object with read() and close() but no fileno()."""

    def __init__(self, tag, data):
        self.tag = tag
        self.stream = io.BytesIO(data)

    def read(self, size=-1):
        return self.stream.read(size)

    def close(self):
        record_close(self.tag)


def big_block(index):
    """Block `index` of a /big download: 64 KiB that name their own position."""
    return index.to_bytes(8, "big") * 8192


def text_plain(extra=()):
    return [("Content-Type", "text/plain"), *extra]


def application(environ, start_response):
    parts = environ["PATH_INFO"].split("/")
    action = parts[1] if len(parts) > 1 else ""
    tag = parts[2] if len(parts) > 2 else ""
    # ?enc=utf-8 reads the other parameters as UTF-8, for text beyond latin-1.
    encoding = "utf-8" if "enc=utf-8" in environ["QUERY_STRING"] else "latin-1"
    query = dict(parse_qsl(environ["QUERY_STRING"], keep_blank_values=True, encoding=encoding))

    if action == "closed":
        with lock:
            body = json.dumps(closed).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    if action == "status":
        start_response(query["s"], text_plain())
        return [b"status accepted\n"]

    if action == "status-bytes":
        start_response(b"200 OK", text_plain())
        return [b"bytes status accepted\n"]

    if action == "header":
        start_response("200 OK", text_plain([(query["n"], query.get("v", "x"))]))
        return [b"header accepted\n"]

    if action == "header-int":
        start_response("200 OK", text_plain([("X-Number", 5)]))
        return [b"int header accepted\n"]

    if action == "cl-conflict":
        start_response("200 OK", text_plain([("Content-Length", "5"), ("Content-Length", "6")]))
        return [b"hello"]

    if action == "cl-repeated":
        start_response("200 OK", text_plain([("Content-Length", "5"), ("Content-Length", "5")]))
        return [b"hello"]

    if action == "bodyless":
        # A Content-Length that describes the GET body, and (correctly) no body for HEAD or
        # a 304; with ?body=1 the body is produced anyway and must not reach the client.
        status = query.get("s", "200 OK")
        start_response(status, text_plain([("Content-Length", "5")]))
        full = environ["REQUEST_METHOD"] == "GET" and status.startswith("200")
        return [b"hello" if query.get("body") or full else b""]

    if action == "twice":
        start_response("200 OK", text_plain())
        start_response("202 Accepted", text_plain())
        return [b"second start_response accepted\n"]

    if action == "exc-replace":
        start_response("200 OK", text_plain([("X-First", "1")]))
        try:
            raise ValueError(f"replaced {tag}")
        except ValueError:
            start_response(
                "503 Service Unavailable", text_plain([("X-Second", "2")]), sys.exc_info()
            )
        return [b"replacement body\n"]

    if action == "exc-after":
        write = start_response("200 OK", text_plain())
        write(b"already sent\n")
        try:
            raise ValueError(f"too late {tag}")
        except ValueError:
            # Headers are out: this must re-raise, and the exception ends the app.
            start_response("500 Internal Server Error", text_plain(), sys.exc_info())
        return [b"never sent\n"]

    if action == "lazy-start":
        # PEP 3333 lets the iterable call start_response on its first iteration.
        def lazily():
            start_response("202 Accepted", text_plain([("X-Lazy", "1")]))
            yield b"started late\n"

        return lazily()

    if action == "write":
        write = start_response("200 OK", text_plain())
        for word in (b"one ", b"two ", b"three\n"):
            write(word)
        return []

    if action == "write-mixed":
        write = start_response("200 OK", text_plain())
        write(b"written ")
        return Body(tag, [b"then ", b"", b"iterated\n"])

    if action == "write-length":
        write = start_response("200 OK", text_plain([("Content-Length", "11")]))
        write(b"hello ")
        write(b"world")
        return []

    if action == "cl-excess":
        start_response("200 OK", text_plain([("Content-Length", "5")]))
        return Body(tag, [b"12345", b"67890", b"abc"])

    if action == "cl-short":
        start_response("200 OK", text_plain([("Content-Length", "100")]))
        return Body(tag, [b"0123456789"])

    if action == "cl-short-list":
        start_response("200 OK", text_plain([("Content-Length", "100")]))
        return [b"0123456789"]

    if action == "close-ok":
        start_response("200 OK", text_plain())
        return Body(tag, [b"a", b"b"])

    if action == "close-raise":
        start_response("200 OK", text_plain())
        return Body(tag, [b"first", RuntimeError(f"iteration failed {tag}")])

    if action == "close-no-start":
        return Body(tag, [b"data before start_response"])

    if action == "close-str":
        start_response("200 OK", text_plain())
        return Body(tag, ["not bytes"])

    if action == "close-raises":
        start_response("200 OK", text_plain([("Content-Length", "8")]))

        class Failing(Body):
            def close(self):
                super().close()
                raise RuntimeError(f"close failed {self.tag}")

        return Failing(tag, [b"complete"])

    if action == "close-endless":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless(tag)

    if action == "raise-before":
        raise RuntimeError(f"failed before start_response {tag}")

    if action == "raise-after-chunked":
        start_response("200 OK", text_plain())

        def chunks():
            yield b"partial-data"
            raise RuntimeError(f"failed mid-stream {tag}")

        return chunks()

    if action == "raise-after-length":
        start_response("200 OK", text_plain([("Content-Length", "100")]))

        def chunks():
            yield b"0123456789"
            raise RuntimeError(f"failed mid-stream {tag}")

        return chunks()

    if action == "file":
        handle = open(__file__, "rb")  # noqa: SIM115 - the wrapper's close() closes it
        handle.seek(int(query.get("offset", "0")))
        headers = text_plain()
        if "length" in query:
            headers.append(("Content-Length", query["length"]))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](handle, 4096)

    if action == "filelike":
        start_response("200 OK", text_plain())
        data = bytes(range(256)) * 100
        return environ["wsgi.file_wrapper"](Reader(tag, data), 1000)

    if action == "big":
        mib = int(tag)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (big_block(index) for index in range(mib * 16))

    start_response("404 Not Found", text_plain())
    return [b"no such action\n"]
