#!/usr/bin/env python3
"""Deterministic stream server and checking client for appliance/e2e/failover.sh.

  stream.py serve ADDR PIDFILE     listen on ADDR:7000
  stream.py client VIP CONNS SECS [KILLFILE]
                                   CONNS connections to VIP:7000 for about SECS seconds;
                                   KILLFILE, if written by then, holds the time (epoch
                                   seconds) the failure was injected: a connection's stall
                                   is its longest gap between received bytes that spans
                                   it or starts within 1 s after it (from the failure on);
                                   its longest gap before it is the baseline (the client
                                   pauses 5 ms between requests)

Protocol, both directions checked: the client sends a line "<conn> <i> <n> <m>\\n" and m
bytes drawn from a generator seeded with the line; the server checks them (a wrong byte:
it closes the connection) and answers with n bytes drawn from another generator seeded
with the line, which the client checks. The client prints one line per connection and a
summary: bytes each way, the longest gap of the whole run, and the stalls (min, median,
max over the connections). Exit status 0 only if every connection finished with every
byte correct.

Two optional environment variables (appliance/e2e/hostile.sh): STREAM_STOP, a file whose
appearance ends the run early (checked between requests), and STREAM_GAPS, a file the
client writes at the end with every gap longer than 2 ms, one line "CONN START END"
(epoch seconds) each.
"""
import hashlib
import os
import random
import socket
import sys
import threading
import time

PORT = 7000
SIZE = 32 * 1024  # answer bytes per request
UPLOAD = 16 * 1024  # request bytes after the line


def answer(line: bytes, n: int) -> bytes:
    # Mersenne Twister seeded with the line's SHA-256: the same bytes in every process,
    # cheap enough that the servers and the clients leave the appliance its CPU.
    return random.Random(hashlib.sha256(line).digest()).randbytes(n)


def upload(line: bytes, m: int) -> bytes:
    return random.Random(hashlib.sha256(b"up " + line).digest()).randbytes(m)


def serve_one(conn: socket.socket) -> None:
    f = conn.makefile("rb")
    try:
        for line in f:
            parts = line.split()
            if len(parts) != 4:
                break
            line = line.rstrip(b"\n")
            m = int(parts[3])
            if f.read(m) != upload(line, m):
                break  # a wrong or missing byte from the client: the client sees it
            conn.sendall(answer(line, int(parts[2])))
    except OSError:
        pass
    finally:
        conn.close()


def serve(addr: str, pidfile: str) -> None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, PORT))
    s.listen(128)
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()


def client(vip: str, conns: int, secs: float, killfile: str) -> int:
    results = [None] * conns
    start = time.monotonic()
    stopfile = os.environ.get("STREAM_STOP", "")

    def going() -> bool:
        return time.monotonic() - start < secs and not (stopfile and os.path.exists(stopfile))

    def run(k: int) -> None:
        got = 0
        sent = 0
        max_gap = 0.0
        gap_at = 0.0
        gaps = []
        i = 0
        try:
            s = socket.create_connection((vip, PORT), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            last = time.monotonic()
            while going():
                line = f"{k} {i} {SIZE} {UPLOAD}".encode()
                s.sendall(line + b"\n" + upload(line, UPLOAD))
                sent += UPLOAD
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
            results[k] = (True, got, sent, max_gap, f"(at {gap_at:.3f})", gaps)
        except Exception as e:  # reset, timeout, wrong bytes
            results[k] = (False, got, sent, max_gap, f"{type(e).__name__}: {e}", gaps)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(secs + 30)
    gapfile = os.environ.get("STREAM_GAPS", "")
    if gapfile:
        with open(gapfile, "w") as f:
            for k, r in enumerate(results):
                for a, b in r[5] if r else []:
                    f.write(f"{k} {a:.6f} {b:.6f}\n")
    killed = None
    try:
        with open(killfile) as f:
            killed = float(f.read().strip())
    except (OSError, ValueError):
        pass
    ok = True
    worst = 0.0
    stalls = []
    normal = []  # each connection's longest gap before the failure: the baseline
    total = 0
    total_up = 0
    for k, r in enumerate(results):
        if r is None:
            print(f"conn {k}: did not finish")
            ok = False
            continue
        good, got, sent, gap, err, gaps = r
        worst = max(worst, gap)
        stall = 0.0
        if killed is not None:
            before = 0.0
            for a, b in gaps:
                if b >= killed and a <= killed + 1.0:
                    stall = max(stall, b - max(a, killed))
                elif b < killed:
                    before = max(before, b - a)
            stalls.append(stall)
            normal.append(before)
        total += got
        total_up += sent
        print(
            f"conn {k}: {'ok' if good else 'FAILED'} {got} bytes in, {sent} out, "
            f"stall {stall * 1000:.1f} ms, longest gap {gap * 1000:.1f} ms {err}"
        )
        ok = ok and good
    if stalls:
        stalls.sort()
        median = stalls[len(stalls) // 2]
        normal.sort()
        st = (
            f"stall_ms_min={stalls[0] * 1000:.1f} stall_ms_median={median * 1000:.1f} "
            f"stall_ms_max={stalls[-1] * 1000:.1f} "
            f"gap_before_ms_median={normal[len(normal) // 2] * 1000:.1f}"
        )
    else:
        st = "stall_ms_min=unknown stall_ms_median=unknown stall_ms_max=unknown"
    print(
        f"summary: conns={conns} conns_ok={sum(1 for r in results if r and r[0])} ok={ok} "
        f"bytes_in={total} bytes_out={total_up} "
        f"max_gap_ms={worst * 1000:.1f} {st}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        kf = sys.argv[5] if len(sys.argv) > 5 else ""
        sys.exit(client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), kf))
