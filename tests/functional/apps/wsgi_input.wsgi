"""Reads wsgi.input the way PATH_INFO names and reports what each call returned, as JSON.

/read            read()
/read-n/N        read(N) until b""
/readline        readline() until b""
/readline-n/N    readline(N) until b""
/readlines/HINT  readlines(HINT) once, then read() for the rest
/iter            iterate
/eof             read(), then every method again at EOF
/sha256          stream read(65536) and hash; reports size and digest
/whole           read() everything at once; reports size and digest
/line-sizes      iterate; reports each line's size and the digest
/stash           keep wsgi.input for a later request without reading it
/late            read the stashed wsgi.input (reports what it raised), then read()
"""

import hashlib
import json

stashed = []


def text(chunk):
    if not isinstance(chunk, bytes):
        raise TypeError(f"wsgi.input returned {type(chunk).__name__}, not bytes")
    return chunk.decode("latin-1")


def until_empty(call):
    chunks = []
    while True:
        chunk = call()
        if not chunk:
            chunks.append(text(chunk))
            return chunks
        chunks.append(text(chunk))
        if len(chunks) > 100000:
            raise RuntimeError("wsgi.input never reached EOF")


def application(environ, start_response):
    stream = environ["wsgi.input"]
    mode, _, arg = environ["PATH_INFO"].lstrip("/").partition("/")
    report = {"content_length": environ.get("CONTENT_LENGTH")}
    if mode == "read":
        report["chunks"] = [text(stream.read())]
    elif mode == "read-n":
        report["chunks"] = until_empty(lambda: stream.read(int(arg)))
    elif mode == "readline":
        report["chunks"] = until_empty(stream.readline)
    elif mode == "readline-n":
        report["chunks"] = until_empty(lambda: stream.readline(int(arg)))
    elif mode == "readlines":
        report["chunks"] = [text(line) for line in stream.readlines(int(arg))]
        report["rest"] = text(stream.read())
    elif mode == "iter":
        report["chunks"] = [text(line) for line in stream]
    elif mode == "eof":
        report["chunks"] = [text(stream.read())]
        report["after"] = [
            text(stream.read()),
            text(stream.read(5)),
            text(stream.read(0)),
            text(stream.readline()),
            text(stream.readline(5)),
        ]
        report["after_lines"] = stream.readlines()
        report["after_iter"] = list(stream)
    elif mode == "whole":
        data = stream.read()
        report.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    elif mode == "line-sizes":
        digest = hashlib.sha256()
        sizes = []
        for line in stream:
            sizes.append(len(line))
            digest.update(line)
        report.update(sizes=sizes, sha256=digest.hexdigest())
    elif mode == "stash":
        stashed.append(stream)
    elif mode == "late":
        try:
            report["stashed"] = text(stashed.pop().read())
        except Exception as exc:
            report["stashed_error"] = f"{type(exc).__name__}: {exc}"
        report["chunks"] = [text(stream.read())]
    elif mode == "sha256":
        digest = hashlib.sha256()
        size = 0
        largest = 0
        while True:
            block = stream.read(65536)
            if not block:
                break
            size += len(block)
            largest = max(largest, len(block))
            digest.update(block)
        report.update(size=size, sha256=digest.hexdigest(), largest_read=largest)
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"unknown mode\n"]
    body = json.dumps(report).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
