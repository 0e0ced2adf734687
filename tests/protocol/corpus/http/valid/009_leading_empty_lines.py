# Empty lines before a request line are ignored (RFC 9112 section 2.2), also after a body.

requests = [
    dict(
        method=b"POST",
        target=b"/a",
        headers=[
            (b"host", b"example.com"),
            (b"content-length", b"2"),
        ],
        body=b"ok",
        content_length=2,
    ),
    dict(
        method=b"GET",
        target=b"/b",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
]
