"""Reports the worker process's identity, environment and how its script was loaded."""

import json
import os
import sys
import threading

LOADED_AS = __name__


def blocked_signals():
    """The request thread's blocked-signal mask, which processes it starts inherit."""
    with open("/proc/thread-self/status") as status:
        for line in status:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    return -1


def application(environ, start_response):
    module = sys.modules[LOADED_AS]
    umask = os.umask(0)
    os.umask(umask)
    body = json.dumps(
        {
            "pid": os.getpid(),
            "uid": os.getuid(),
            "gid": os.getgid(),
            "cwd": os.getcwd(),
            "umask": umask,
            "lang": os.environ.get("LANG"),
            "lc_all": os.environ.get("LC_ALL"),
            "egg_cache": os.environ.get("PYTHON_EGG_CACHE"),
            "path_head": sys.path[:2],
            "switch_interval": sys.getswitchinterval(),
            "stack_size": threading.stack_size(),
            "module": LOADED_AS,
            "file": module.__file__,
            "mtime": module.__mtime__,
            "argv": sys.argv,
            "blocked_signals": blocked_signals(),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
