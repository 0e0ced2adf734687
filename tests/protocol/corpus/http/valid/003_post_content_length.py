# A body framed by Content-Length; CRLFs inside the body are data.

requests = [
    dict(
        method=b"POST",
        target=b"/form",
        headers=[
            (b"host", b"example.com"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"14"),
        ],
        body=b"a=1&b=2\r\n\r\nc=3",
        content_length=14,
    ),
]
