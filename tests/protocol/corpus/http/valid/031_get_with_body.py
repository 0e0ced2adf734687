# GET may carry a body; it is framed like any other.

requests = [
    dict(
        method=b"GET",
        target=b"/q",
        headers=[
            (b"host", b"example.com"),
            (b"content-length", b"2"),
        ],
        body=b"{}",
        content_length=2,
    ),
]
