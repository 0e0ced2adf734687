# Content-Length: 0 declares an empty body.

requests = [
    dict(
        method=b"POST",
        target=b"/empty",
        headers=[
            (b"host", b"example.com"),
            (b"content-length", b"0"),
        ],
        content_length=0,
    ),
]
