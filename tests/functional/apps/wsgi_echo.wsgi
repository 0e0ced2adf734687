"""Echoes the request back as JSON: method, path, body and the client's address.

/noread/...     answers without touching wsgi.input
/chunks/N       N chunks from a generator, no Content-Length
/fixed          the same body and headers whatever the method
otherwise       reads the whole body and answers with a Content-Length
"""

import hashlib
import json
import os


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/chunks/"):
        count = int(path.split("/")[2])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"chunk {index}\n".encode() for index in range(count))
    if path == "/fixed":
        data = b"a fixed body\n"
        start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(data))), ("X-Fixed", "1")],
        )
        return [data]
    body = b"" if path.startswith("/noread") else environ["wsgi.input"].read()
    report = {
        "method": environ["REQUEST_METHOD"],
        "path": path,
        "query": environ["QUERY_STRING"],
        "protocol": environ["SERVER_PROTOCOL"],
        "content_length": environ.get("CONTENT_LENGTH"),
        "body": body[:1000].decode("latin-1"),
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "remote_port": environ["REMOTE_PORT"],
        "pid": os.getpid(),
    }
    data = json.dumps(report).encode() + b"\n"
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("X-Echo-Method", environ["REQUEST_METHOD"]),
        ],
    )
    return [data]
