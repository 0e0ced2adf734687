# Upper-case hex, leading zeros and BWS inside extensions are valid.

requests = [
    dict(
        method=b"PUT",
        target=b"/x",
        headers=[
            (b"host", b"example.com"),
            (b"transfer-encoding", b"chunked"),
        ],
        body=b"0123456789abcde",
        chunked=True,
    ),
]
