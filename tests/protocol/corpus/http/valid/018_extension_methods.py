# Any token is a method, case-sensitive and passed on as sent.

requests = [
    dict(
        method=b"PURGE",
        target=b"/cache",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
    dict(
        method=b"get",
        target=b"/lower",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
]
