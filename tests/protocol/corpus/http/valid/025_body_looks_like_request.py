# A Content-Length body that contains a request is data, not a second request.

requests = [
    dict(
        method=b"POST",
        target=b"/echo",
        headers=[
            (b"host", b"example.com"),
            (b"content-length", b"42"),
        ],
        body=b"GET /admin HTTP/1.1\r\nHost: example.com\r\n\r\n",
        content_length=42,
    ),
]
