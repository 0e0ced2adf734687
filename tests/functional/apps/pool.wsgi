"""Reports which worker process answered and how many requests it was running at once."""

import json
import os
import threading
import time
from urllib.parse import parse_qs

lock = threading.Lock()
running = 0
peak = 0


def application(environ, start_response):
    global running, peak
    query = parse_qs(environ["QUERY_STRING"])
    delay = float(query.get("sleep", ["0"])[0])
    with lock:
        running += 1
        peak = max(peak, running)
        now_running = running
    try:
        for mark in query.get("mark", []):
            open(mark, "w").close()
        if delay:
            time.sleep(delay)
        body = json.dumps(
            {
                "pid": os.getpid(),
                "running": now_running,
                "peak": peak,
                "thread_id": environ["mod_wsgi.thread_id"],
                "multiprocess": environ["wsgi.multiprocess"],
                "multithread": environ["wsgi.multithread"],
            }
        ).encode()
    finally:
        with lock:
            running -= 1
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
