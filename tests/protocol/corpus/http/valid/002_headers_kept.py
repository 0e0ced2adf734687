# Header names are lower-cased; values keep their case, lose OWS; order and duplicates are kept.

requests = [
    dict(
        method=b"GET",
        target=b"/search?q=a+b&x=%41",
        headers=[
            (b"host", b"example.com"),
            (b"user-agent", b"curl/8.0"),
            (b"accept", b"text/html"),
            (b"cookie", b"a=1"),
            (b"accept", b"*/*"),
            (b"cookie", b"b=2"),
            (b"x-tabs", b"one \t two"),
        ],
    ),
]
