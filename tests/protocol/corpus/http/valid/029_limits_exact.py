# A request exactly at every limit is accepted (limits lowered for the test).

limits = dict(max_request_line=25, max_header_size=20, max_header_count=2)
requests = [
    dict(
        method=b"GET",
        target=b"/aaaaaaaaaaa",
        headers=[
            (b"host", b"h"),
            (b"a", b"12345"),
        ],
    ),
]
