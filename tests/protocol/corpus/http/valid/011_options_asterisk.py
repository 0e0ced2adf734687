# asterisk-form with OPTIONS.

requests = [
    dict(
        method=b"OPTIONS",
        target=b"*",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
]
