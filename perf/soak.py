#!/usr/bin/env python3
"""Connection churn for perf/soak.sh: short connections to the stream servers
(appliance/e2e/stream.py, port 7000) through the VIP, opened and ended one after another
by THREADS threads for SECS seconds, every byte checked.

  soak.py VIP THREADS SECS

Each connection sends one request of stream.py's protocol (a line "<conn> <i> <n> <m>",
then m bytes) and ends in one of four ways, in turn:

  close         reads the whole answer (n bytes, checked), then closes (FIN);
  reset         reads the whole answer, then resets (SO_LINGER 0: a RST, not a FIN);
  reset_early   sends half of its m bytes, then resets: the server never answers;
  server_close  sends a line the server does not take: the server closes first (FIN),
                and the client sees the end of the stream without a byte.

A connection is lost when anything else happens: a refused or timed-out connect, a reset
or an end the client did not ask for, a wrong byte. At the end one line of JSON: the
counts by ending, the lost ones (and the first errors), the slowest connection from
connect to its end (ms), and the total.
"""
import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "appliance", "e2e"))
from stream import PORT, answer, upload  # noqa: E402  (the stream server's own generators)

ENDINGS = ("close", "reset", "reset_early", "server_close")
ANSWER = 4096  # bytes the server sends back per request
UPLOAD = 512  # bytes the client sends after its line
TIMEOUT = 10.0  # connect and each read; SYN retransmissions (1 s, 3 s) fit


def rst_close(s: socket.socket) -> None:
    """Closes with a RST: a zero linger timeout makes close() abort the connection."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def one(vip: str, conn_id: str, ending: str) -> None:
    """One connection, ended as `ending`; raises on anything unasked for."""
    s = socket.create_connection((vip, PORT), timeout=TIMEOUT)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ending == "server_close":
            s.sendall(b"quit\n")
            if s.recv(1) != b"":
                raise RuntimeError("bytes after a line the server does not take")
            s.close()
            return
        line = f"{conn_id} 0 {ANSWER} {UPLOAD}".encode()
        body = upload(line, UPLOAD)
        if ending == "reset_early":
            s.sendall(line + b"\n" + body[: UPLOAD // 2])
            rst_close(s)
            return
        s.sendall(line + b"\n" + body)
        want = answer(line, ANSWER)
        have = bytearray()
        while len(have) < ANSWER:
            b = s.recv(ANSWER - len(have))
            if not b:
                raise RuntimeError(f"closed by the peer after {len(have)} bytes")
            have += b
        if bytes(have) != want:
            raise RuntimeError("wrong bytes in the answer")
        if ending == "reset":
            rst_close(s)
        else:
            s.close()
    except BaseException:
        s.close()
        raise


def main() -> int:
    vip, threads, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    lock = threading.Lock()
    counts = {e: 0 for e in ENDINGS}
    lost = 0
    errors = []
    slowest = 0.0
    start = time.monotonic()

    def run(t: int) -> None:
        nonlocal lost, slowest
        i = 0
        while time.monotonic() - start < secs:
            ending = ENDINGS[(i + t) % len(ENDINGS)]
            t0 = time.monotonic()
            try:
                one(vip, f"c{t}-{i}", ending)
                took = time.monotonic() - t0
                with lock:
                    counts[ending] += 1
                    slowest = max(slowest, took)
            except Exception as e:  # refused, reset, timeout, wrong bytes
                took = time.monotonic() - t0
                with lock:
                    lost += 1
                    slowest = max(slowest, took)
                    if len(errors) < 5:
                        errors.append(f"{ending} c{t}-{i} after {took * 1000:.0f} ms: {type(e).__name__}: {e}")
            i += 1
            time.sleep(0.005)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(secs + 3 * TIMEOUT)
    alive = sum(1 for w in workers if w.is_alive())
    print(json.dumps({
        "connections": sum(counts.values()) + lost,
        **counts,
        "lost": lost + alive,
        "errors": errors + ([f"{alive} threads did not end"] if alive else []),
        "slowest_ms": round(slowest * 1000, 1),
    }))
    return 0 if lost == 0 and alive == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
