"""Reports the environ it was called with, as JSON, for tests/apache/test_environ_parity.py.

The same file runs under mod_wsgi (inside Apache's daemon processes, as Apache's user, with
only the standard library on sys.path) and under wsgidaemon, so it imports nothing else.

Each environ value is reported so that its type survives JSON: str, int, float, bool and None
as themselves, a tuple as {"tuple": [...]}, anything else (wsgi.input, wsgi.errors,
wsgi.file_wrapper) as {"object": type name, "methods": its public callables}. The request body
is read to the end with wsgi.input.read() and reported as its length and MD5. A HEAD response
has no body, so the report also travels zlib-compressed and base64-encoded in X-Environ.
"""

import base64
import hashlib
import json
import zlib

PLAIN = (str, int, float, bool, type(None))


def describe(value):
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, tuple):
        return {"tuple": [describe(item) for item in value]}
    kind = value if isinstance(value, type) else type(value)
    methods = sorted(
        name
        for name in dir(value)
        if not name.startswith("_") and callable(getattr(value, name, None))
    )
    return {"object": kind.__name__, "type": isinstance(value, type), "methods": methods}


def application(environ, start_response):
    body = environ["wsgi.input"].read()
    report = {
        "environ": {key: describe(value) for key, value in environ.items()},
        "body": {"length": len(body), "md5": hashlib.md5(body).hexdigest()},
    }
    data = json.dumps(report, sort_keys=True).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if environ["REQUEST_METHOD"] == "HEAD":
        headers.append(("X-Environ", base64.b64encode(zlib.compress(data, 9)).decode()))
    start_response("200 OK", headers)
    return [data]
