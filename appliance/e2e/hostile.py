#!/usr/bin/env python3
"""Hostile traffic for appliance/e2e/hostile.sh, into the lab's own addresses only.

Every frame is built with scapy and sent on one interface of a lab namespace (sendp: no
route, no ARP), a fixed number of times; nothing loops unbounded. Sequence and
acknowledgement numbers are random (the attacker is blind). Each command prints one line
"sent KIND N" per kind of frame, then what the appliance should count for them.

  hostile.py tcp IFACE SRCMAC DSTMAC SRC DST PAIRS FLAGS COUNT [PAYLOAD]
      COUNT segments per "SPORT:DPORT" pair of PAIRS (comma-separated), TCP flags FLAGS
      (scapy letters: R, FA, A, PA, S), random seq and ack, PAYLOAD bytes of data
  hostile.py icmp IFACE SRCMAC DSTMAC SRC VIP CLIENT VPORT PORTS COUNT
      COUNT ICMP "fragmentation needed" (MTU 576) from SRC to VIP per client port of PORTS,
      quoting a segment VIP:VPORT -> CLIENT:PORT at a random sequence number
  hostile.py arp IFACE SRCMAC DSTMAC CLAIM TARGET
      an ARP reply to TARGET (DSTMAC) saying CLAIM is at SRCMAC, and a gratuitous request
  hostile.py malformed IFACE SRCMAC DSTMAC SRC VIP VPORT CLIENT CPORT OWN COUNT
      COUNT frames of each malformed kind (see MALFORMED below); CLIENT:CPORT a live
      flow's client end, OWN the appliance's address on that side
  hostile.py legit VIP PORT PATH SHA256 ATTEMPTS SECS OUT
      (plain sockets, no scapy) ATTEMPTS HTTP/1.0 GETs of PATH spread over SECS seconds,
      each its own connection with 10 s to finish; writes "ok|FAILED SECONDS WHY" lines to
      OUT and prints "legit: attempts=N ok=M ..."
"""
import hashlib
import random
import socket
import sys
import threading
import time


def scapy():
    # Imported only where frames are built: `legit` runs with any Python.
    import scapy.all as s  # noqa: PLC0415

    s.conf.verb = 0
    return s


def pairs(text):
    return [tuple(int(x) for x in p.split(":")) for p in text.split(",") if p]


def r32():
    return random.getrandbits(32)


def cmd_tcp(iface, smac, dmac, src, dst, prs, flags, count, payload=0):
    s = scapy()
    frames = []
    for sport, dport in pairs(prs):
        for _ in range(int(count)):
            seg = s.TCP(sport=sport, dport=dport, flags=flags, seq=r32(), ack=r32(), window=502)
            f = s.Ether(src=smac, dst=dmac) / s.IP(src=src, dst=dst) / seg
            if int(payload):
                f = f / s.Raw(random.randbytes(int(payload)))
            frames.append(f)
    s.sendp(frames, iface=iface)
    print(f"sent tcp-{flags} {len(frames)}")


def cmd_icmp(iface, smac, dmac, src, vip, client, vport, ports, count):
    s = scapy()
    frames = []
    for p in [int(x) for x in ports.split(",") if x]:
        for _ in range(int(count)):
            quoted = s.IP(src=vip, dst=client) / s.TCP(sport=int(vport), dport=p, seq=r32(), flags="A")
            # Only the first 8 bytes of the quoted TCP header are required (RFC 792).
            err = s.ICMP(type=3, code=4, nexthopmtu=576) / bytes(quoted)[:28]
            frames.append(s.Ether(src=smac, dst=dmac) / s.IP(src=src, dst=vip) / err)
    s.sendp(frames, iface=iface)
    print(f"sent icmp-frag-needed {len(frames)}")


def cmd_arp(iface, smac, dmac, claim, target):
    s = scapy()
    reply = s.Ether(src=smac, dst=dmac) / s.ARP(
        op=2, hwsrc=smac, psrc=claim, hwdst=dmac, pdst=target
    )
    garp = s.Ether(src=smac, dst="ff:ff:ff:ff:ff:ff") / s.ARP(
        op=1, hwsrc=smac, psrc=claim, hwdst="00:00:00:00:00:00", pdst=claim
    )
    s.sendp([reply, garp], iface=iface)
    print("sent arp-claim 2")


def cmd_malformed(iface, smac, dmac, src, vip, vport, client, cport, own, count):
    """Each kind: (name, the drop reason the data path should count, frame builder)."""
    s = scapy()
    vport, cport, count = int(vport), int(cport), int(count)
    eth = s.Ether(src=smac, dst=dmac)

    def ip_tcp(**ip):
        return bytes(s.IP(src=src, dst=vip, **ip) / s.TCP(sport=r32() & 0x7FFF | 0x8000, dport=vport, flags="S"))

    def raw_ip(b):
        return s.Ether(src=smac, dst=dmac, type=0x0800) / s.Raw(b)

    def with_byte(b, at, v):
        b = bytearray(b)
        b[at] = v
        return bytes(b)

    def total_len(b, n):
        b = bytearray(b)
        b[2:4] = n.to_bytes(2, "big")
        return bytes(b)

    good = ip_tcp()
    kinds = [
        # Ethernet says IPv4, then 10 bytes: no room for an IPv4 header.
        ("ip-truncated", "malformed", lambda: raw_ip(good[:10])),
        # Version 6 in an IPv4 frame.
        ("ip-version-6", "malformed", lambda: raw_ip(with_byte(good, 0, 0x65))),
        # Header length 12 bytes (IHL 3).
        ("ip-ihl-3", "malformed", lambda: raw_ip(with_byte(good, 0, 0x43))),
        # Total length beyond the frame.
        ("ip-total-too-long", "malformed", lambda: raw_ip(total_len(good, 1400))),
        # Total length shorter than the header.
        ("ip-total-below-ihl", "malformed", lambda: raw_ip(total_len(good, 12))),
        # TCP header cut to 8 bytes (IP total length says so).
        ("tcp-truncated", "malformed", lambda: raw_ip(total_len(good[:28], 28))),
        # TCP data offset 3 (12 bytes).
        ("tcp-doff-3", "malformed", lambda: raw_ip(with_byte(good, 32, 0x30))),
        # TCP data offset 15 (60 bytes) in a 20-byte segment.
        ("tcp-doff-15", "malformed", lambda: raw_ip(with_byte(good, 32, 0xF0))),
        # Two 802.1Q tags (QinQ): refused.
        ("double-vlan", "malformed", lambda: eth / s.Dot1Q(vlan=5) / s.Dot1Q(vlan=6) / s.Raw(good)),
        # A fragment of a TCP segment to the VIP (more fragments; then an offset).
        ("fragment-mf", "fragment", lambda: eth / s.IP(src=src, dst=vip, flags="MF", proto=6) / s.Raw(good[20:36])),
        ("fragment-offset", "fragment", lambda: eth / s.IP(src=src, dst=vip, frag=100, proto=6) / s.Raw(b"x" * 16)),
        # UDP and GRE to the VIP: not TCP.
        ("udp", "not_tcp", lambda: eth / s.IP(src=src, dst=vip) / s.UDP(sport=5353, dport=vport) / s.Raw(b"x" * 32)),
        ("gre", "not_tcp", lambda: eth / s.IP(src=src, dst=vip, proto=47) / s.Raw(b"\0" * 8)),
        # An ethertype that is neither IPv4 nor ARP (IPv6; local experimental).
        ("ipv6", "not_ipv4", lambda: eth / s.IPv6(src="fd00::1", dst="fd00::2") / s.Raw(b"x" * 8)),
        ("ethertype-88b5", "not_ipv4", lambda: s.Ether(src=smac, dst=dmac, type=0x88B5) / s.Raw(b"x" * 46)),
        # A RST with a wrong TCP checksum at a live flow (its client end forged).
        ("rst-bad-checksum", "bad_checksum", lambda: eth / s.IP(src=client, dst=vip)
         / s.TCP(sport=cport, dport=vport, flags="RA", seq=r32(), ack=r32(), chksum=0xDEAD)),
        # SYNs from sources no client can have: the VIP itself, the appliance's address.
        ("syn-from-vip", "bad_source", lambda: eth / s.IP(src=vip, dst=vip) / s.TCP(sport=r32() & 0xFFFF | 1, dport=vport, flags="S")),
        ("syn-from-own", "bad_source", lambda: eth / s.IP(src=own, dst=vip) / s.TCP(sport=r32() & 0xFFFF | 1, dport=vport, flags="S")),
        # Truncated ARP (for the control core: counted there, control.malformed).
        ("arp-truncated", "control.malformed", lambda: s.Ether(src=smac, dst=dmac, type=0x0806) / s.Raw(b"\x00\x01\x08\x00\x06")),
    ]
    frames = []
    expect = {}
    for name, reason, build in kinds:
        for _ in range(count):
            frames.append(build())
        expect[reason] = expect.get(reason, 0) + count
        print(f"sent {name} {count} ({reason})")
    random.shuffle(frames)
    s.sendp(frames, iface=iface)
    print("expect " + " ".join(f"{k}={v}" for k, v in expect.items()))


def cmd_legit(vip, port, path, sha, attempts, secs, out):
    attempts, secs, port = int(attempts), float(secs), int(port)
    results = [None] * attempts
    request = f"GET {path} HTTP/1.0\r\nHost: {vip}\r\n\r\n".encode()

    def one(k):
        t0 = time.monotonic()
        try:
            with socket.create_connection((vip, port), timeout=10) as c:
                c.settimeout(max(0.1, 10 - (time.monotonic() - t0)))
                c.sendall(request)
                data = bytearray()
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    data += b
                    if time.monotonic() - t0 > 10:
                        raise TimeoutError("over 10 s")
            head, _, body = bytes(data).partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n")[0].decode(errors="replace"))
            if hashlib.sha256(body).hexdigest() != sha:
                raise RuntimeError(f"SHA-256 differs ({len(body)} bytes)")
            results[k] = (True, time.monotonic() - t0, "")
        except Exception as e:  # refused, reset, timeout, wrong bytes
            results[k] = (False, time.monotonic() - t0, f"{type(e).__name__}: {e}")

    threads = []
    start = time.monotonic()
    for k in range(attempts):
        # Paced: attempt k starts at k * SECS / ATTEMPTS.
        delay = start + k * secs / attempts - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=one, args=(k,), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(max(0.1, start + secs + 15 - time.monotonic()))
    ok = 0
    times = []
    with open(out, "w") as f:
        for r in results:
            good, took, why = r if r else (False, 0.0, "did not finish")
            ok += good
            if good:
                times.append(took)
            f.write(f"{'ok' if good else 'FAILED'} {took:.3f} {why}\n")
    times.sort()
    pct = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000 if times else float("nan")  # noqa: E731
    print(
        f"legit: attempts={attempts} ok={ok} rate={100.0 * ok / attempts:.1f}% "
        f"ms_median={pct(0.5):.1f} ms_p99={pct(0.99):.1f} ms_max={(times[-1] * 1000 if times else float('nan')):.1f}"
    )


COMMANDS = {
    "tcp": cmd_tcp,
    "icmp": cmd_icmp,
    "arp": cmd_arp,
    "malformed": cmd_malformed,
    "legit": cmd_legit,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
