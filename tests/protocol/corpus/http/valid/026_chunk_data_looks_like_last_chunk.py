# Chunk data containing 0 CRLF CRLF is data.

requests = [
    dict(
        method=b"POST",
        target=b"/",
        headers=[
            (b"host", b"example.com"),
            (b"transfer-encoding", b"chunked"),
        ],
        body=b"0\r\n\r\nab",
        chunked=True,
    ),
]
