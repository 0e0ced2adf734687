# Every tchar is valid in a field name.

requests = [
    dict(
        method=b"GET",
        target=b"/",
        headers=[
            (b"host", b"example.com"),
            (b"x-!#$%&'*+.^_`|~09az", b"v"),
        ],
    ),
]
