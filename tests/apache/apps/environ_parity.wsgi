"""Reports the environ it was called with, as JSON, for tests/apache/test_environ_parity.py.

The same file runs under mod_wsgi (inside Apache's daemon processes, as Apache's user, with
only the standard library on sys.path) and under wsgidaemon, so it imports nothing else.

Each environ value is reported so that its type survives JSON: str, int, float, bool and None
as themselves, a tuple as {"tuple": [...]}, anything else (wsgi.input, wsgi.errors,
wsgi.file_wrapper) as {"object": its type's name, "type": whether it is a class, "methods":
its public callables and iteration/context protocols, "attributes": its other public members}.
The request body is read to the end with wsgi.input.read() and reported as its length and MD5.
Two wsgi.file_wrapper instances are described too, with the blocks they yield: one around a
BytesIO with a block size of 4, one around an object with nothing but read() and the default
size. A HEAD response has no body, so the report also travels zlib-compressed and
base64-encoded in an X-Environ header.
"""

import base64
import hashlib
import io
import json
import zlib

PLAIN = (str, int, float, bool, type(None))
PROTOCOLS = ("__iter__", "__next__", "__enter__", "__exit__", "__len__", "__call__")


def describe(value):
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, tuple):
        return {"tuple": [describe(item) for item in value]}
    kind = value if isinstance(value, type) else type(value)
    methods, attributes = [], {}
    for name in dir(value):
        try:
            member = getattr(value, name)
        except Exception as exc:  # a property that does not apply to this object
            member = exc
        if name in PROTOCOLS or (not name.startswith("_") and callable(member)):
            methods.append(name)
        elif not name.startswith("_"):
            attributes[name] = member if isinstance(member, PLAIN) else type(member).__name__
    return {
        "object": kind.__name__,
        "type": isinstance(value, type),
        "methods": methods,
        "attributes": attributes,
    }


class ReadOnly:
    """A file-like object with nothing but read()."""

    def __init__(self, data):
        self.stream = io.BytesIO(data)

    def read(self, size=-1):
        return self.stream.read(size)


def application(environ, start_response):
    body = environ["wsgi.input"].read()
    wrappers = {
        "BytesIO, 4": environ["wsgi.file_wrapper"](io.BytesIO(b"0123456789"), 4),
        "ReadOnly": environ["wsgi.file_wrapper"](ReadOnly(b"0123456789")),
    }
    report = {
        "environ": {key: describe(value) for key, value in environ.items()},
        "body": {"length": len(body), "md5": hashlib.md5(body).hexdigest()},
        "file_wrappers": {
            name: {"instance": describe(wrapper), "blocks": [block.decode() for block in wrapper]}
            for name, wrapper in wrappers.items()
        },
    }
    data = json.dumps(report, sort_keys=True).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if environ["REQUEST_METHOD"] == "HEAD":
        headers.append(("X-Environ", base64.b64encode(zlib.compress(data, 9)).decode()))
    start_response("200 OK", headers)
    return [data]


other = application  # for WSGIScriptAlias ... callable-object=other
