# Transfer coding names are case-insensitive; the value is reported as sent.

requests = [
    dict(
        method=b"POST",
        target=b"/",
        headers=[
            (b"host", b"example.com"),
            (b"transfer-encoding", b"Chunked"),
        ],
        body=b"abc",
        chunked=True,
    ),
]
