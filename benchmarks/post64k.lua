-- wrk script: POST a 64 KiB body to /echo
wrk.method = "POST"
wrk.body = string.rep("y", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
