# An empty field value.

requests = [
    dict(
        method=b"GET",
        target=b"/",
        headers=[
            (b"host", b"example.com"),
            (b"x-empty", b""),
            (b"x-blank", b""),
        ],
    ),
]
