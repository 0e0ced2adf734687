"""Large bodies in both directions; reports the worker's peak resident memory."""

import hashlib
import json
import time
from urllib.parse import parse_qs

BLOCK = b"0123456789abcdef" * 4096  # 64 KiB


def peak_rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def download(size):
    sent = 0
    while sent < size:
        chunk = BLOCK[: min(len(BLOCK), size - sent)]
        sent += len(chunk)
        yield chunk


def application(environ, start_response):
    query = parse_qs(environ["QUERY_STRING"])
    path = environ["PATH_INFO"]
    if path == "/download":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return download(int(query["size"][0]))
    if path == "/upload":
        time.sleep(float(query.get("delay", ["0"])[0]))  # a slow application
        digest = hashlib.md5()
        total = 0
        stream = environ["wsgi.input"]
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            digest.update(chunk)
            total += len(chunk)
        body = json.dumps({"md5": digest.hexdigest(), "bytes": total}).encode()
    else:
        body = json.dumps({"peak_rss_kib": peak_rss_kib()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
