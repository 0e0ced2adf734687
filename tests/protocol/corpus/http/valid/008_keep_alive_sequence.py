# Three HTTP/1.1 requests on one connection; the last asks to close.

requests = [
    dict(
        method=b"GET",
        target=b"/a",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
    dict(
        method=b"GET",
        target=b"/b",
        headers=[
            (b"host", b"example.com"),
            (b"connection", b"keep-alive"),
        ],
    ),
    dict(
        method=b"GET",
        target=b"/c",
        headers=[
            (b"host", b"example.com"),
            (b"connection", b"close"),
        ],
        keep_alive=False,
    ),
]
