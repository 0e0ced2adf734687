# A HEAD request.

requests = [
    dict(
        method=b"HEAD",
        target=b"/index.html",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
]
