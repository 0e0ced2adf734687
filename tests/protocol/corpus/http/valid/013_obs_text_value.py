# obs-text (bytes 0x80-0xFF) is allowed in field values and passed through.

requests = [
    dict(
        method=b"GET",
        target=b"/",
        headers=[
            (b"host", b"example.com"),
            (b"x-name", b"Ren\xc3\xa9 \xff"),
        ],
    ),
]
