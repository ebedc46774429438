#!/usr/bin/env python3
"""HTTP/1.1 keep-alive clients that measure their stall, for perf/reconnect.sh.

    http_stall.py VIP PORT CONNS SECONDS RATE_KIB FILES_DIR OUT_JSON

CONNS connections (asyncio, one process) each fetch /r1, /r2, ... /rN in turn on one
keep-alive connection for SECONDS, reading at RATE_KIB KiB/s (8 KiB reads, paced), and
check every body against the file of the same name in FILES_DIR (SHA-256). Per
connection: whether every body was right and the connection never failed, the requests
done, the median gap between reads and the longest one with its time. The stall is the
longest gap less the median (the pacing). Writes a JSON list to OUT_JSON.
"""

import asyncio
import hashlib
import json
import os
import statistics
import sys
import time

READ = 8192


async def one(i, vip, port, until, pace, want, names):
    res = {"conn": i, "ok": False, "requests": 0, "error": "", "max_gap": 0.0, "at": 0.0}
    gaps = []
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(vip, port), 5)
    except Exception as e:  # noqa: BLE001 - reported, not raised
        res["error"] = f"connect: {e}"
        return res
    last = time.monotonic()
    k = i
    try:
        while time.monotonic() < until:
            name = names[k % len(names)]
            k += 1
            writer.write(f"GET /{name} HTTP/1.1\r\nHost: vip\r\n\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = None
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length is None or not head.startswith(b"HTTP/1.1 200"):
                res["error"] = f"bad head: {head[:40]!r}"
                return res
            h = hashlib.sha256()
            left = length
            while left > 0:
                chunk = await asyncio.wait_for(reader.read(min(READ, left)), 10)
                if not chunk:
                    res["error"] = "closed mid-body"
                    return res
                now = time.monotonic()
                gap = now - last
                gaps.append(gap)
                if gap > res["max_gap"]:
                    res["max_gap"], res["at"] = gap, now
                last = now
                h.update(chunk)
                left -= len(chunk)
                await asyncio.sleep(len(chunk) / pace)
            if h.hexdigest() != want[name]:
                res["error"] = f"wrong body for {name}"
                return res
            res["requests"] += 1
        res["ok"] = True
    except Exception as e:  # noqa: BLE001 - a reset or a timeout is the result
        res["error"] = f"{type(e).__name__}: {e}"
    finally:
        writer.close()
    res["median_gap"] = statistics.median(gaps) if gaps else 0.0
    return res


async def main():
    vip, port, conns, seconds, rate, files, out = sys.argv[1:8]
    names = sorted(n for n in os.listdir(files) if n.startswith("r"))
    want = {}
    for n in names:
        with open(os.path.join(files, n), "rb") as f:
            want[n] = hashlib.sha256(f.read()).hexdigest()
    until = time.monotonic() + float(seconds)
    pace = float(rate) * 1024
    tasks = [
        one(i, vip, int(port), until, pace, want, names) for i in range(int(conns))
    ]
    results = await asyncio.gather(*tasks)
    for r in results:
        r["wall_at"] = time.time() - (time.monotonic() - r["at"]) if r["at"] else 0
    with open(out, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    asyncio.run(main())
