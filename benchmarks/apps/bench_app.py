"""The benchmark application: the same for every server measured.

/        hello world, 12 bytes
/64k     a 64 KiB body
/echo    reads the request body and sends it back (64 KiB POST)
/sleep   hello world after 5 ms asleep, like a page waiting on its database (not one of the
         measured workloads: for checking by hand that threads=15 still serves 15 at once)
"""

import time

HELLO = b"Hello World!"
BIG = b"x" * 65536


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/64k":
        body = BIG
    elif path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
    elif path == "/sleep":
        time.sleep(0.005)
        body = HELLO
    else:
        body = HELLO
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
