# Any VCHAR but # in a target; %-escapes are checked in the path only.

requests = [
    dict(
        method=b"GET",
        target=b"/a%20b/{x}|y;p=1@:!$&'()*+,=~^`\\\"<>?q=100%&r=[]",
        headers=[
            (b"host", b"example.com"),
        ],
    ),
]
