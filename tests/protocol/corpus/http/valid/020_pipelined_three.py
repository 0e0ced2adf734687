# Three pipelined requests in one buffer, the middle one with a body.

requests = [
    dict(
        method=b"GET",
        target=b"/1",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
    dict(
        method=b"POST",
        target=b"/2",
        headers=[
            (b"host", b"example.com"),
            (b"content-length", b"5"),
        ],
        body=b"hello",
        content_length=5,
    ),
    dict(
        method=b"GET",
        target=b"/3",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
]
