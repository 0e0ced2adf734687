# HTTP/1.0 with Content-Length and keep-alive, then a second request.

requests = [
    dict(
        method=b"POST",
        target=b"/a",
        version=b"1.0",
        headers=[
            (b"connection", b"keep-alive"),
            (b"content-length", b"2"),
        ],
        body=b"hi",
        content_length=2,
    ),
    dict(
        method=b"GET",
        target=b"/b",
        version=b"1.0",
        headers=[
            (b"connection", b"keep-alive"),
        ],
    ),
]
