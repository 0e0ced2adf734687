# Connection is a case-insensitive token list: close anywhere in it ends the connection.

requests = [
    dict(
        method=b"GET",
        target=b"/",
        headers=[
            (b"host", b"example.com"),
            (b"connection", b"foo, CLOSE"),
        ],
        keep_alive=False,
    ),
]
