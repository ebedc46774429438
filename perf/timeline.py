#!/usr/bin/env python3
"""Summary and failover timeline of one perf/mirror.sh run (python3 standard library only).

    python3 perf/timeline.py perf/out/mirror-<stamp>

Reads <phase>.txt (key=value, from `tandem-bench mirror`) and <phase>.timeline.csv
(client bytes, of which from the backup, and requests completed, per 1 ms); writes
summary.md and, per phase, <phase>-timeline.svg: client-visible throughput per
millisecond over the whole phase (top) and around the failure (bottom, +-60 ms), the
failure marked with a vertical line and the client-visible stall shaded and labelled.
"""

import csv
import math
import os
import sys

PHASES = ("lowload", "steady", "failover")
W, H = 900, 620
ML, MR = 70, 20
ZOOM_MS = 60


def read_kv(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            k, sep, v = line.rstrip("\n").partition("=")
            if sep:
                out[k] = v
    return out


def read_timeline(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append((int(r["ms"]), int(r["client_bytes"]), int(r["backup_bytes"]),
                         int(r["requests_done"])))
    return rows


def num(r, key):
    try:
        v = float(r[key])
    except (KeyError, TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mbit(b):
    """Bytes in one 1 ms bucket as Mbit/s."""
    return b * 8 / 1000.0


def binned(rows, width):
    """Rows summed into bins of `width` ms, as per-ms means (zeros included)."""
    acc = {}
    for ms, b, bb, q in rows:
        k = ms // width * width
        a = acc.setdefault(k, [0, 0, 0])
        a[0] += b
        a[1] += bb
        a[2] += q
    return [(k, a[0] / width, a[1] / width, a[2] / width) for k, a in sorted(acc.items())]


def panel(o, rows, x0, x1, top, height, title, r, bars, step_ms=1):
    """One plot: Mbit/s between x0 and x1 (ms), total and from the backup, in steps of
    `step_ms` (rows already binned that way)."""
    sel = [row for row in rows if x0 <= row[0] <= x1]
    ymax = max([mbit(row[1]) for row in sel] + [1.0]) * 1.1
    pw = W - ML - MR

    def X(ms):
        return ML + (ms - x0) / max(x1 - x0, 1) * pw

    def Y(v):
        return top + height - v / ymax * height

    o.append(f'<text x="{W / 2}" y="{top - 8}" text-anchor="middle" font-size="14">'
             f'{esc(title)}</text>')
    o.append(f'<rect x="{ML}" y="{top}" width="{pw}" height="{height}" fill="none" '
             f'stroke="#888"/>')
    for i in range(6):
        v = ymax * i / 5
        y = Y(v)
        o.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{ML + pw}" y2="{y:.1f}" stroke="#eee"/>')
        o.append(f'<text x="{ML - 5}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                 f'{v:.0f}</text>')
    span = x1 - x0
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
                if span / s <= 12)
    t = math.ceil(x0 / step) * step
    while t <= x1:
        x = X(t)
        o.append(f'<line x1="{x:.1f}" y1="{top + height}" x2="{x:.1f}" y2="{top + height + 4}" '
                 f'stroke="#444"/>')
        label = f"{t / 1000:g} s" if step >= 100 else f"{t} ms"
        o.append(f'<text x="{x:.1f}" y="{top + height + 17}" text-anchor="middle" '
                 f'font-size="11">{label}</text>')
        t += step
    o.append(f'<text x="16" y="{top + height / 2}" font-size="12" text-anchor="middle" '
             f'transform="rotate(-90 16 {top + height / 2})">client Mbit/s '
             f'({"mean of " + str(step_ms) + " ms" if step_ms > 1 else "per ms"})</text>')
    if bars:
        bw = max(pw / max(span, 1) - 1, 1)
        for ms, b, bb, _ in sel:
            if b:
                o.append(f'<rect x="{X(ms):.1f}" y="{Y(mbit(b)):.1f}" width="{bw:.1f}" '
                         f'height="{Y(0) - Y(mbit(b)):.1f}" fill="#1f77b4"/>')
            if bb:
                o.append(f'<rect x="{X(ms):.1f}" y="{Y(mbit(bb)):.1f}" width="{bw:.1f}" '
                         f'height="{Y(0) - Y(mbit(bb)):.1f}" fill="#ff7f0e" opacity="0.8"/>')
    else:
        # Every ms, zeros included: a stall shows as a dip to the axis.
        full = dict((row[0], row) for row in sel)
        for idx, color in ((1, "#1f77b4"), (2, "#ff7f0e")):
            pts = " ".join(f"{X(ms):.1f},{Y(mbit(full.get(ms, (ms, 0, 0, 0))[idx])):.1f}"
                           for ms in range(int(x0), int(x1) + 1, step_ms))
            o.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                     f'stroke-width="0.8"/>')
    fail = num(r, "fail_at_rel_ms")
    if fail is not None and x0 <= fail <= x1:
        s0 = num(r, "fail_stall_start_rel_ms")
        stall = num(r, "fail_stall_ms")
        if s0 is not None and stall is not None:
            s1 = s0 + stall
            xa, xb = X(max(s0, x0)), X(min(s1, x1))
            o.append(f'<rect x="{xa:.1f}" y="{top}" width="{max(xb - xa, 1):.1f}" '
                     f'height="{height}" fill="#d62728" opacity="0.15"/>')
            # Labels right of the shading, or left of it when it sits in the right half.
            left = xb > ML + 0.5 * pw
            tx, anchor = (xa - 4, "end") if left else (xb + 4, "start")
            style = ('font-size="12" fill="#d62728" paint-order="stroke" stroke="white" '
                     f'stroke-width="3" text-anchor="{anchor}"')
            o.append(f'<text x="{tx:.1f}" y="{top + 30}" {style}>shaded: no byte to any '
                     f'client until the backup\'s first, {stall:.1f} ms</text>')
            o.append(f'<text x="{tx:.1f}" y="{top + 46}" {style}>worst connection: '
                     f'{esc(r.get("fail_conn_stall_max_ms", "?"))} ms without a byte</text>')
        xf = X(fail)
        o.append(f'<line x1="{xf:.1f}" y1="{top}" x2="{xf:.1f}" y2="{top + height}" '
                 f'stroke="#d62728" stroke-width="1.5" stroke-dasharray="5,3"/>')
        o.append(f'<text x="{xf + 4:.1f}" y="{top + 14}" font-size="12" fill="#d62728" paint-order="stroke" stroke="white" stroke-width="3">'
                 f'primary fails ({esc(r.get("fail_kind", "?"))}); first backup byte +'
                 f'{esc(r.get("fail_to_first_backup_byte_ms", "?"))} ms</text>')


def timeline_svg(path, phase, r, rows):
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif">', f'<rect width="{W}" height="{H}" fill="white"/>']
    end = rows[-1][0] if rows else 1
    title = (f"Tandem mirror path, {phase}: {r.get('conns_established', '?')} connections, "
             f"{r.get('request_size', '?')} B requests / {r.get('response_size', '?')} B "
             f"responses, depth {r.get('depth', '?')}")
    coarse = 50 if end > 2000 else 10
    panel(o, binned(rows, coarse), 0, end, 50, 230, title, r, bars=False, step_ms=coarse)
    fail = num(r, "fail_at_rel_ms")
    if fail is not None:
        z0, z1 = max(0, int(fail) - ZOOM_MS), int(fail) + ZOOM_MS
        panel(o, rows, z0, z1, 350, 200, f"around the failure (+-{ZOOM_MS} ms, 1 ms bars)",
              r, bars=True)
    y = H - 22
    o.append(f'<rect x="{ML}" y="{y - 10}" width="12" height="10" fill="#1f77b4"/>'
             f'<text x="{ML + 16}" y="{y}" font-size="12">all bytes the clients received</text>')
    o.append(f'<rect x="{ML + 250}" y="{y - 10}" width="12" height="10" fill="#ff7f0e"/>'
             f'<text x="{ML + 266}" y="{y}" font-size="12">of which sent by the backup '
             f'(IP identification mark)</text>')
    o.append(f'<text x="{ML}" y="{y + 16}" font-size="11" fill="#555">resets seen by the '
             f'clients {esc(r.get("client_resets"))}, byte errors {esc(r.get("byte_errors"))}, '
             f'retransmissions client/primary/backup {esc(r.get("client_retransmissions"))}/'
             f'{esc(r.get("primary_retransmissions"))}/{esc(r.get("backup_retransmissions"))}'
             f'</text>')
    o.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(o) + "\n")


def us(r, key):
    v = num(r, key)
    return "—" if v is None else f"{v / 1000:.0f}"


def tandem_latency(path):
    """Tandem's added-latency summary from a metrics scrape: quantiles and max in µs."""
    if not os.path.exists(path):
        return {}
    q = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            name, _, value = line.strip().rpartition(" ")
            try:
                v = float(value)
            except ValueError:
                continue
            if name.startswith('tandem_added_latency_seconds{quantile="'):
                if not math.isnan(v):
                    q[name.split('"')[1]] = f"{v * 1e6:.1f}"
            elif name == "tandem_added_latency_max_seconds":
                q["max"] = f"{v * 1e6:.1f}"
            elif name == "tandem_added_latency_seconds_count":
                q["count"] = f"{v:.0f}"
    return q


def summary(out, res):
    run = read_kv(os.path.join(out, "run.txt")) if os.path.exists(
        os.path.join(out, "run.txt")) else {}
    lines = ["# Tandem mirror path (perf/mirror.sh)", ""]
    for k in ("date", "commit", "cpu_model", "cpus", "layout", "loadavg_start", "loadavg_end"):
        if k in run:
            lines.append(f"- {k}: {run[k]}")
    lines += ["", "| phase | conns | requests/s | client Mbit/s | p50 µs | p99 µs | p99.9 µs "
              "| max µs | resets | byte errors | retrans (client/primary/backup) "
              "| generator idle % |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for phase, r in res.items():
        lines.append(
            f"| {phase} | {r.get('conns_established')} | {r.get('requests_per_s')} "
            f"| {r.get('client_mbit_per_s')} | {us(r, 'lat_p50_ns')} | {us(r, 'lat_p99_ns')} "
            f"| {us(r, 'lat_p999_ns')} | {us(r, 'lat_max_ns')} | {r.get('client_resets')} "
            f"| {r.get('byte_errors')} | {r.get('client_retransmissions')}/"
            f"{r.get('primary_retransmissions')}/{r.get('backup_retransmissions')} "
            f"| {r.get('gen_idle_pct')} |")
    for phase, r in res.items():
        if "fail_stall_ms" not in r:
            continue
        lines += ["", f"Failure in `{phase}` ({r.get('fail_kind')}) at "
                  f"{r.get('fail_at_s')} s:", "",
                  f"- client-visible stall (the gap with no byte to any client that the "
                  f"first byte from the backup ended): {r['fail_stall_ms']} ms, from "
                  f"{r.get('fail_stall_start_rel_ms')} ms into the phase; worst single "
                  f"connection (same, per connection): {r.get('fail_conn_stall_max_ms')} ms",
                  f"- failure to the first byte the clients received: "
                  f"{r.get('fail_to_first_byte_ms')} ms; to the first byte from the backup: "
                  f"{r.get('fail_to_first_backup_byte_ms')} ms",
                  f"- longest gap in the whole phase: {r.get('max_stall_ms')} ms at "
                  f"{r.get('max_stall_start_s')} s",
                  f"- connections with no byte from the backup after the failure: "
                  f"{r.get('fail_conns_without_backup_bytes')}; RSTs sent by the dead primary: "
                  f"{r.get('rsts_sent_by_failed_primary')}"]
    own = [(phase, tandem_latency(os.path.join(out, f"{phase}.tandem-metrics.txt")))
           for phase in res]
    if any(q for _, q in own):
        lines += ["", "Tandem's own added latency over each phase's run (handshakes included): "
                  "its `tandem_added_latency_seconds`, each frame from the return of its "
                  "receive burst to its transmit enqueue, both copies counted.", "",
                  "| phase | frames | p50 µs | p99 µs | p99.9 µs | max µs |",
                  "|---|---|---|---|---|---|"]
        for phase, q in own:
            if q:
                lines.append(f"| {phase} | {q.get('count', '—')} | "
                             + " | ".join(q.get(k, "—") for k in ("0.5", "0.99", "0.999", "max"))
                             + " |")
    lines += ["", "The host is shared: a loop pass of the generator longer than 1 ms means it "
              "was off its CPU (Tandem's threads: see the scheduler table below).", "",
              "| phase | longest gap in client bytes, ms | generator passes > 1 ms | "
              "their total, ms | longest pass, ms |", "|---|---|---|---|---|"]
    for phase, r in res.items():
        lines.append(f"| {phase} | {r.get('max_stall_ms')} | {r.get('gen_long_passes')} "
                     f"| {r.get('gen_long_pass_total_ms')} | {r.get('gen_longest_pass_ms')} |")
    lines += ["", "Tandem's threads over their life (/proc schedstat): seconds on a CPU, "
              "seconds runnable but waiting for one.", "",
              "| phase | thread | on CPU, s | waiting, s |", "|---|---|---|---|"]
    for phase in res:
        path = os.path.join(out, f"{phase}.tandem-sched.txt")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 4:
                    continue
                on, wait = int(parts[-3]) / 1e9, int(parts[-2]) / 1e9
                if on + wait < 0.05:
                    continue
                lines.append(f"| {phase} | {esc(' '.join(parts[:-3]))} | {on:.2f} | {wait:.2f} |")
    lines += ["", "Plots: " + ", ".join(f"`{p}`" for p in sorted(os.listdir(out))
                                        if p.endswith(".svg")), ""]
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    res = {}
    for phase in PHASES:
        txt = os.path.join(out, f"{phase}.txt")
        tl = os.path.join(out, f"{phase}.timeline.csv")
        if not (os.path.exists(txt) and os.path.exists(tl)):
            continue
        r = read_kv(txt)
        res[phase] = r
        timeline_svg(os.path.join(out, f"{phase}-timeline.svg"), phase, r, read_timeline(tl))
    if not res:
        print(f"timeline.py: no <phase>.txt and .timeline.csv in {out}", file=sys.stderr)
        return 1
    summary(out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
