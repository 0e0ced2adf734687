# HTTP/1.0 needs no Host and does not persist without Connection: keep-alive.

requests = [
    dict(
        method=b"GET",
        target=b"/old",
        version=b"1.0",
        headers=[
            (b"user-agent", b"ancient"),
        ],
        keep_alive=False,
    ),
]
