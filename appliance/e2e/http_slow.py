#!/usr/bin/env python3
"""A deterministic HTTP/1.1 server for the end-to-end tests of `replay: http1`
(appliance/e2e/reconnect.sh): the same request gets the same answer from every replica,
but for its Date and Server lines, which differ between servers and which Tandem leaves
out of its check.

    http_slow.py serve IP PORT PIDFILE [SECONDS]

  GET /slow?ms=N&kib=K   waits N ms (a slow endpoint: the request is in flight), then
                         answers K KiB derived from the path (keep-alive, Content-Length).
  POST /echo?ms=N        reads the body, waits N ms, answers its SHA-256 in hex.

Python's own http.server (Debian's python3), threads per connection; it stops by itself
after SECONDS (default 120).
"""

import hashlib
import http.server
import os
import sys
import threading
import time
import urllib.parse


def body_for(path: str, kib: int) -> bytes:
    seed = hashlib.sha256(path.encode()).digest()
    out = bytearray()
    block = seed
    while len(out) < kib * 1024:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[: kib * 1024])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def params(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        return url.path, int(q.get("ms", ["0"])[0]), int(q.get("kib", ["64"])[0])

    def answer(self, data: bytes):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path, ms, kib = self.params()
        if path != "/slow":
            self.send_error(404)
            return
        time.sleep(ms / 1000)
        self.answer(body_for(self.path, min(kib, 65536)))

    def do_POST(self):
        path, ms, _ = self.params()
        n = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 16))
            if not chunk:
                return
            h.update(chunk)
            n -= len(chunk)
        if path != "/echo":
            self.send_error(404)
            return
        time.sleep(ms / 1000)
        self.answer(h.hexdigest().encode() + b"\n")


def main():
    if len(sys.argv) < 5 or sys.argv[1] != "serve":
        sys.exit(__doc__)
    ip, port, pidfile = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 120
    server = http.server.ThreadingHTTPServer((ip, port), Handler)
    server.daemon_threads = True
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
    threading.Timer(seconds, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
