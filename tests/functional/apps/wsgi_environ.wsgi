"""Answers with the request's environ as JSON: every key maps to [type name, value].

Values JSON cannot carry (wsgi.input, wsgi.errors, wsgi.file_wrapper ...) are given as their
repr. Paths under /errors/ also write to wsgi.errors before answering.
"""

import json
import os
import threading


def describe(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return [type(value).__name__, value]
    if isinstance(value, tuple) and all(isinstance(item, (int, str)) for item in value):
        return [type(value).__name__, list(value)]
    return [type(value).__name__, repr(value)]


def application(environ, start_response):
    if environ["PATH_INFO"].startswith("/errors/"):
        errors = environ["wsgi.errors"]
        marker = environ["PATH_INFO"][len("/errors/") :]
        errors.write(f"first line {marker}\n")
        errors.writelines([f"second line {marker}\n", f"unterminated {marker}"])
    report = {key: describe(value) for key, value in environ.items()}
    report["x-errors-api"] = [
        callable(getattr(environ["wsgi.errors"], name, None))
        for name in ("write", "writelines", "flush")
    ]
    report["x-input-api"] = [
        callable(getattr(environ["wsgi.input"], name, None))
        for name in ("read", "readline", "readlines", "__iter__")
    ]
    report["x-pid"] = os.getpid()
    report["x-thread"] = threading.get_ident()
    body = json.dumps(report).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
