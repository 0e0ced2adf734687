# Many small chunks.

requests = [
    dict(
        method=b"POST",
        target=b"/",
        headers=[
            (b"host", b"example.com"),
            (b"transfer-encoding", b"chunked"),
        ],
        body=b"abcdefghijklmnopqrstuvwxyz",
        chunked=True,
    ),
]
