# An Upgrade offer is just a header to us (WSGI cannot switch protocols); the request completes
# normally.

requests = [
    dict(
        method=b"GET",
        target=b"/ws",
        headers=[
            (b"host", b"example.com"),
            (b"connection", b"Upgrade, HTTP2-Settings"),
            (b"upgrade", b"h2c"),
            (b"http2-settings", b"AAMAAABkAAQAoAAAAAIAAAAA"),
        ],
    ),
    dict(
        method=b"GET",
        target=b"/after",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
]
