# Expect: 100-continue (whether the client is still waiting depends on the chunking; see
# test_http11_connection).

requests = [
    dict(
        method=b"PUT",
        target=b"/big",
        headers=[
            (b"host", b"example.com"),
            (b"expect", b"100-continue"),
            (b"content-length", b"4"),
        ],
        body=b"data",
        content_length=4,
    ),
]
