# Bodies exactly at max_body_size are accepted, chunked or not.

limits = dict(max_body_size=4)
requests = [
    dict(
        method=b"POST",
        target=b"/",
        headers=[
            (b"host", b"h"),
            (b"content-length", b"4"),
        ],
        body=b"abcd",
        content_length=4,
    ),
    dict(
        method=b"POST",
        target=b"/",
        headers=[
            (b"host", b"h"),
            (b"transfer-encoding", b"chunked"),
        ],
        body=b"abcd",
        chunked=True,
    ),
]
