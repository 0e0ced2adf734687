# absolute-form targets are kept raw (the gateway takes the host from them).

requests = [
    dict(
        method=b"GET",
        target=b"http://example.com:8080/p/a?q=1",
        headers=[
            (b"host", b"other.example"),
        ],
    ),
    dict(
        method=b"GET",
        target=b"HTTPS://example.com",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
]
