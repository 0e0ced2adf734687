# The simplest HTTP/1.1 request.

requests = [
    dict(
        method=b"GET",
        target=b"/",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
]
