#!/usr/bin/env python3
"""Deterministic stream server and checking client for appliance/e2e/failover.sh.

  stream.py serve ADDR PIDFILE     listen on ADDR:7000 (and ADDR:80, only so that the
                                   lab profile's probes of port 80 succeed)
  stream.py client VIP CONNS SECS [KILLFILE]
                                   CONNS connections to VIP:7000 for about SECS seconds;
                                   KILLFILE, if written by then, holds the time (epoch
                                   seconds) the primary was killed: the longest gap that
                                   spans it or follows it within 1 s is the failover stall

Protocol: the client sends a line "<conn> <i> <n>\\n"; the server answers with n bytes
drawn from a generator seeded with the line, so the client checks every byte. The client prints one
line per connection and a summary: bytes, errors, the longest gap between received
bytes (ms). Exit status 0 only if every connection finished with every byte correct.
"""
import hashlib
import os
import random
import socket
import sys
import threading
import time

PORT = 7000
SIZE = 32 * 1024


def answer(line: bytes, n: int) -> bytes:
    # Mersenne Twister seeded with the line's SHA-256: the same bytes in every process,
    # cheap enough that the servers and the clients leave the appliance its CPU.
    return random.Random(hashlib.sha256(line).digest()).randbytes(n)


def serve_one(conn: socket.socket) -> None:
    f = conn.makefile("rb")
    try:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                break
            conn.sendall(answer(line.rstrip(b"\n"), int(parts[2])))
    except OSError:
        pass
    finally:
        conn.close()


def serve(addr: str, pidfile: str) -> None:
    socks = []
    for port in (PORT, 80):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(128)
        socks.append(s)
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    while True:
        conn, _ = socks[0].accept()
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()


def client(vip: str, conns: int, secs: float, killfile: str) -> int:
    results = [None] * conns
    start = time.monotonic()

    def run(k: int) -> None:
        got = 0
        max_gap = 0.0
        gap_at = 0.0
        gaps = []
        i = 0
        try:
            s = socket.create_connection((vip, PORT), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            last = time.monotonic()
            while time.monotonic() - start < secs:
                line = f"{k} {i} {SIZE}".encode()
                s.sendall(line + b"\n")
                want = answer(line, SIZE)
                have = bytearray()
                while len(have) < SIZE:
                    b = s.recv(SIZE - len(have))
                    now = time.monotonic()
                    if not b:
                        raise RuntimeError(f"closed by the peer after {got + len(have)} bytes")
                    if now - last > max_gap:
                        max_gap, gap_at = now - last, time.time()
                    if now - last > 0.002:
                        end = time.time()
                        gaps.append((end - (now - last), end))
                    last = now
                    have += b
                if bytes(have) != want:
                    raise RuntimeError(f"wrong bytes in answer {i}")
                got += SIZE
                i += 1
                time.sleep(0.005)
            s.close()
            results[k] = (True, got, max_gap, f"(ended at {gap_at:.3f})", gaps)
        except Exception as e:  # reset, timeout, wrong bytes
            results[k] = (False, got, max_gap, f"{type(e).__name__}: {e}", gaps)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(secs + 30)
    killed = None
    try:
        with open(killfile) as f:
            killed = float(f.read().strip())
    except (OSError, ValueError):
        pass
    ok = True
    worst = 0.0
    worst_kill = 0.0
    total = 0
    for k, r in enumerate(results):
        if r is None:
            print(f"conn {k}: did not finish")
            ok = False
            continue
        good, got, gap, err, gaps = r
        worst = max(worst, gap)
        if killed is not None:
            for a, b in gaps:
                if b >= killed and a <= killed + 1.0:
                    worst_kill = max(worst_kill, b - max(a, killed))
        total += got
        print(f"conn {k}: {'ok' if good else 'FAILED'} {got} bytes, max gap {gap * 1000:.1f} ms {err}")
        ok = ok and good
    kill_text = f"{worst_kill * 1000:.1f}" if killed is not None else "unknown"
    print(
        f"summary: conns={conns} ok={ok} bytes={total} max_stall_ms={worst * 1000:.1f} "
        f"failover_stall_ms={kill_text}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        kf = sys.argv[5] if len(sys.argv) > 5 else ""
        sys.exit(client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), kf))
