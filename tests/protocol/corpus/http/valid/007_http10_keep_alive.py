# HTTP/1.0 keep-alive: the first request persists, the second (without keep-alive) ends the
# connection; the third is never read.

requests = [
    dict(
        method=b"GET",
        target=b"/1",
        version=b"1.0",
        headers=[
            (b"connection", b"Keep-Alive"),
        ],
    ),
    dict(
        method=b"POST",
        target=b"/2",
        version=b"1.0",
        headers=[
            (b"content-length", b"3"),
        ],
        body=b"abc",
        content_length=3,
        keep_alive=False,
    ),
]
