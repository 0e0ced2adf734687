# 1*DIGIT allows leading zeros.

requests = [
    dict(
        method=b"POST",
        target=b"/",
        headers=[
            (b"host", b"example.com"),
            (b"content-length", b"007"),
        ],
        body=b"1234567",
        content_length=7,
    ),
]
