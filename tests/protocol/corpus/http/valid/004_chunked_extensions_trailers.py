# Chunked body with chunk extensions (token and quoted values) and trailer fields.

requests = [
    dict(
        method=b"POST",
        target=b"/upload",
        headers=[
            (b"host", b"example.com"),
            (b"transfer-encoding", b"chunked"),
        ],
        body=b"hello world",
        chunked=True,
        trailers=[
            (b"x-checksum", b"abc123"),
            (b"x-empty", b""),
        ],
    ),
]
