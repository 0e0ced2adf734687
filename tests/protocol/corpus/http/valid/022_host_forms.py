# Host with a port, an IPv6 literal, and an empty Host (allowed by RFC 9112 section 3.2).

requests = [
    dict(
        method=b"GET",
        target=b"/1",
        headers=[
            (b"host", b"example.com:8000"),
        ],
    ),
    dict(
        method=b"GET",
        target=b"/2",
        headers=[
            (b"host", b"[::1]:8000"),
        ],
    ),
    dict(
        method=b"GET",
        target=b"/3",
        headers=[
            (b"host", b""),
        ],
    ),
]
