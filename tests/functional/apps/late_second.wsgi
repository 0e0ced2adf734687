"""Fixture: the first worker to load this starts at once, every later one only after a pause,
so that the first takes every connection made meanwhile (tests/functional/test_shim_socket.py,
handing connections over)."""

import os
import time

try:
    os.close(os.open(os.environ["WSGIDAEMON_TEST_MARKER"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
except FileExistsError:
    time.sleep(float(os.environ["WSGIDAEMON_TEST_PAUSE"]))


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"pid %d" % os.getpid()]
