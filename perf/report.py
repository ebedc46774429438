#!/usr/bin/env python3
"""Summary table and plots of one perf/run.sh run (python3 standard library only).

    python3 perf/report.py perf/out/<stamp>

Reads <dut>-<size>-<flows>-<phase>.txt (key=value, from tandem-bench) and the
.hist.csv percentile distributions next to them; writes summary.md, latency-<size>B.svg
(percentile curves, Tandem against testpmd, in the paced phase) and throughput.svg.
"""

import csv
import math
import os
import re
import sys

DUTS = ("testpmd", "tandem")
DUT_NAME = {"testpmd": "dpdk-testpmd io", "tandem": "Tandem forward"}
DUT_COLOR = {"testpmd": "#1f77b4", "tandem": "#d62728"}
FLOW_DASH = ["", "6,3", "2,3", "10,3,2,3"]
NAME = re.compile(r"^(?P<dut>[a-z]+)-(?P<size>\d+)-(?P<flows>\d+)-(?P<phase>[A-Za-z0-9_]+)\.txt$")

# Targets of issue #6.
TARGET_MPPS = 8.0
TARGET_RATIO = 0.6
TARGET_ADDED_P99_US = 10.0
# A testpmd p99 above this means the host descheduled the lcores during the run.
NOISY_REFERENCE_US = 100.0


def read_kv(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            k, sep, v = line.rstrip("\n").partition("=")
            if sep:
                out[k] = v
    return out


def read_hist(path):
    pts = []
    if not os.path.exists(path):
        return pts
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            pts.append((float(row["percentile"]), float(row["latency_ns"])))
    return pts


def num(r, key):
    try:
        v = float(r[key])
    except (KeyError, TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def load(out):
    """The results of `out`; with repeats (r1/, r2/, ...) each case's median run: by
    received rate in the `max` phase, by median latency in the paced one. The rates of
    every run are kept in `_runs` for the summary."""
    reps = sorted((d for d in os.listdir(out)
                   if re.fullmatch(r"r\d+", d) and os.path.isdir(os.path.join(out, d))),
                  key=lambda d: int(d[1:]))
    if not reps:
        return load_one(out)
    runs = [load_one(os.path.join(out, d)) for d in reps]
    res = {}
    for key in sorted(set().union(*runs)):
        rs = [r[key] for r in runs if key in r]
        by = "rx_mpps" if key[3] == "max" else "lat_p50_ns"
        rs.sort(key=lambda r: num(r, by) if num(r, by) is not None else math.inf)
        med = dict(rs[(len(rs) - 1) // 2])
        med["_runs"] = [num(r, "rx_mpps") for r in rs]
        res[key] = med
    return res


def load_one(out):
    res = {}
    for name in sorted(os.listdir(out)):
        m = NAME.match(name)
        if not m:
            continue
        key = (m["dut"], int(m["size"]), int(m["flows"]), m["phase"])
        r = read_kv(os.path.join(out, name))
        r["_hist"] = read_hist(os.path.join(out, name[: -len(".txt")] + ".hist.csv"))
        res[key] = r
    return res


def fmt(v, digits=2):
    return "—" if v is None else f"{v:.{digits}f}"


def us(r, key):
    v = num(r, key) if r else None
    return None if v is None else v / 1000.0


def verdict(ok):
    return "—" if ok is None else ("met" if ok else "**missed**")


def latency_verdict(ref, dut):
    """met / missed / unclear for the added p99 latency; ref and dut are (p50, p99) in µs."""
    (ref50, ref99), (dut50, dut99) = ref, dut
    if None in (ref50, ref99, dut50, dut99):
        return "—"
    if dut99 <= TARGET_ADDED_P99_US:
        return "met"  # even without subtracting the path's own latency
    if dut50 - ref50 > TARGET_ADDED_P99_US:
        return "**missed**"  # even the median adds more
    if ref99 > NOISY_REFERENCE_US:
        return f"unclear (testpmd p99 {ref99:.0f} µs)"
    return "**missed**" if dut99 - ref99 > TARGET_ADDED_P99_US else "met"


def summary(out, res):
    cases = sorted({(s, f) for (_, s, f, _) in res})
    phases = sorted({p for (_, _, _, p) in res})
    paced = next((p for p in phases if p != "max"), None)
    lines = ["# Tandem against dpdk-testpmd on memif links", ""]
    run = os.path.join(out, "run.txt")
    if os.path.exists(run):
        lines += ["```"] + open(run, encoding="utf-8").read().strip().splitlines() + ["```", ""]
    lines += [
        "## Forwarding rate (phase `max`: as fast as the links take)",
        "",
        "Received packets per second on the servers' side over the measured window; one "
        "forwarding lcore each. Ratio = Tandem / testpmd in the same run.",
        "",
        "| frame B | flows | testpmd Mpps | Tandem Mpps | Tandem / testpmd | Tandem loss | "
        f"≥ {TARGET_MPPS:g} Mpps | ≥ {TARGET_RATIO:g} × testpmd |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for s, f in cases:
        t = res.get(("testpmd", s, f, "max"))
        d = res.get(("tandem", s, f, "max"))
        tm = num(t, "rx_mpps") if t else None
        dm = num(d, "rx_mpps") if d else None
        ratio = dm / tm if (dm is not None and tm) else None
        loss = num(d, "loss") if d else None
        lines.append(
            f"| {s} | {f} | {fmt(tm, 3)} | {fmt(dm, 3)} | {fmt(ratio)} | "
            f"{'—' if loss is None else f'{loss * 100:.3f} %'} | "
            f"{verdict(None if dm is None else dm >= TARGET_MPPS)} | "
            f"{verdict(None if ratio is None else ratio >= TARGET_RATIO)} |"
        )
    if any("_runs" in r and len(r["_runs"]) > 1 for r in res.values()):
        lines += [
            "",
            "Repeated runs (interleaved): each figure above is the case's median run; the "
            "received rates of every run, lowest first:",
            "",
            "| DUT | frame B | flows | Mpps per run |",
            "| --- | ---: | ---: | --- |",
        ]
        for (d, s, f, p), r in sorted(res.items()):
            if p == "max" and r.get("_runs"):
                lines.append(f"| {d} | {s} | {f} | {', '.join(fmt(x, 3) for x in r['_runs'])} |")
    for phase, title, judged in (
            (paced, f"Latency at a set rate (phase `{paced}`)", True),
            ("max", "Latency under full load (phase `max`: queueing in full rings)", False)):
        if phase is None:
            continue
        rates = sorted({(int(s_), r.get("rate_target_pps")) for (_, s_, _, p), r in res.items()
                        if p == phase})
        rate = ", ".join(f"{r} packets/s at {s_} B" for s_, r in rates)
        lines += [
            "",
            f"## {title}",
            "",
            f"Target rate {rate} (0: as fast as possible). Generator to generator, "
            "through the device: the generator's own memif send and receive are in both "
            "figures, so *added* = Tandem − testpmd at the same percentile.",
            "",
            "| frame B | flows | testpmd p50 / p99 / p99.9 µs | Tandem p50 / p99 / p99.9 µs "
            "| added p50 / p99 µs |" + (f" added p99 ≤ {TARGET_ADDED_P99_US:g} µs |" if judged else ""),
            "| ---: | ---: | ---: | ---: | ---: |" + (" --- |" if judged else ""),
        ]
        for s, f in cases:
            t = res.get(("testpmd", s, f, phase))
            d = res.get(("tandem", s, f, phase))
            tp = [us(t, k) for k in ("lat_p50_ns", "lat_p99_ns", "lat_p999_ns")]
            dp = [us(d, k) for k in ("lat_p50_ns", "lat_p99_ns", "lat_p999_ns")]
            added = [None if (a is None or b is None) else b - a for a, b in zip(tp, dp)]
            row = (f"| {s} | {f} | {' / '.join(fmt(v, 1) for v in tp)} | "
                   f"{' / '.join(fmt(v, 1) for v in dp)} | "
                   f"{fmt(added[0], 1)} / {fmt(added[1], 1)} |")
            if judged:
                row += f" {latency_verdict((tp[0], tp[1]), (dp[0], dp[1]))} |"
            lines.append(row)
    # Tandem's own histogram over each measured window (tandem-bench --dut-metrics).
    if any("dut_lat_samples" in r or "dut_lat_error" in r for r in res.values()):
        lines += [
            "",
            "## Tandem's own added latency (its histogram: receive burst → transmit enqueue)",
            "",
            "What Tandem itself measured over each measured window "
            "(`tandem_added_latency_histogram_seconds`, scraped as the window opened and "
            "closed). Excludes the memif rings and the generator; bucket bounds, so each "
            "quantile reads *at most*.",
            "",
            f"| phase | frame B | flows | frames | p50 ≤ µs | p99 ≤ µs | p99.9 ≤ µs | "
            f"within {TARGET_ADDED_P99_US:g} µs | p99 ≤ {TARGET_ADDED_P99_US:g} µs |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for phase in [p for p in (paced, "max") if p is not None]:
            for s_, f in cases:
                d = res.get(("tandem", s_, f, phase))
                if not d:
                    continue
                if "dut_lat_error" in d:
                    lines.append(f"| {phase} | {s_} | {f} | scrape failed: "
                                 f"{d['dut_lat_error']} | | | | | — |")
                    continue
                share = num(d, "dut_lat_share_at_most_10us")
                bounds = [us(d, f"dut_lat_{k}_at_most_ns") for k in ("p50", "p99", "p999")]
                lines.append(
                    f"| {phase} | {s_} | {f} | {d.get('dut_lat_samples', '—')} | "
                    + " | ".join(fmt(v, 1) for v in bounds)
                    + f" | {'—' if share is None else f'{share * 100:.3f} %'} | "
                    + f"{verdict(None if share is None else share >= 0.99)} |")
    lines += ["", f"Added p99 latency: *met* when Tandem's own p99 is within {TARGET_ADDED_P99_US:g} µs; "
              "*missed* when even the medians differ by more, or the p99s do over a quiet "
              f"reference; *unclear* when testpmd's own p99 is above {NOISY_REFERENCE_US:g} µs "
              "(the host stalled the lcores: a difference of two such figures says nothing).", ""]
    lines += ["", "Plots: " + ", ".join(
        f"`{p}`" for p in sorted(os.listdir(out)) if p.endswith(".svg")) or "none", ""]
    lines += ["Every figure comes from the result files next to this one "
              "(`<dut>-<frame>-<flows>-<phase>.txt`, `.hist.csv`, `.gen.log`, `.dut.log`).", ""]
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


# --- SVG -------------------------------------------------------------------------------

W, H = 900, 520
ML, MR, MT, MB = 80, 250, 50, 60  # margins: left, right (legend), top, bottom


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def human_us(v):
    """A latency in µs, as a short label in ns, µs or ms."""
    if v < 1:
        return f"{v * 1000:g} ns"
    if v < 1000:
        return f"{v:g} µs"
    return f"{v / 1000:g} ms"


def human_count(n):
    """1, 10k, 1M."""
    n = int(n)
    for div, suffix in ((1_000_000, "M"), (1000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def nines(pct):
    return -math.log10(1.0 - pct / 100.0)


def latency_svg(path, title, curves):
    """curves: [(label, color, dash, [(percentile, ns)])]; x in nines, y log µs."""
    pts_all = [(nines(p), ns / 1000.0) for _, _, _, pts in curves for p, ns in pts
               if p < 100.0 and ns > 0]
    if not pts_all:
        return False
    xmax = max(3, min(6, math.ceil(max(x for x, _ in pts_all))))
    ylo = math.floor(math.log10(min(y for _, y in pts_all)))
    yhi = math.ceil(math.log10(max(y for _, y in pts_all)))
    if yhi <= ylo:
        yhi = ylo + 1
    pw, ph = W - ML - MR, H - MT - MB

    def X(x):
        return ML + pw * min(x, xmax) / xmax

    def Y(y):
        return MT + ph * (1 - (math.log10(y) - ylo) / (yhi - ylo))

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{ML + pw / 2}" y="25" text-anchor="middle" font-size="15">{esc(title)}</text>']
    for i in range(xmax + 1):
        label = f"{100 - 10 ** (2 - i):.{max(0, i - 2)}f} %"
        o.append(f'<line x1="{X(i):.1f}" y1="{MT}" x2="{X(i):.1f}" y2="{MT + ph}" stroke="#ddd"/>')
        o.append(f'<text x="{X(i):.1f}" y="{MT + ph + 18}" text-anchor="middle">{label}</text>')
    for e in range(ylo, yhi + 1):
        y = Y(10 ** e)
        o.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{ML + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        lab = human_us(10 ** e)
        o.append(f'<text x="{ML - 6}" y="{y + 4:.1f}" text-anchor="end">{lab}</text>')
        if e < yhi:
            for k in range(2, 10):
                yy = Y(k * 10 ** e)
                o.append(f'<line x1="{ML}" y1="{yy:.1f}" x2="{ML + 5}" y2="{yy:.1f}" stroke="#999"/>')
    o.append(f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    o.append(f'<text x="{ML + pw / 2}" y="{H - 15}" text-anchor="middle">percentile '
             '(log scale in nines: 90 %, 99 %, 99.9 % …)</text>')
    o.append(f'<text x="18" y="{MT + ph / 2}" text-anchor="middle" '
             f'transform="rotate(-90 18 {MT + ph / 2})">latency, generator to generator (log)</text>')
    for n, (label, color, dash, pts) in enumerate(curves):
        xy = [(X(nines(p)), Y(ns / 1000.0)) for p, ns in pts if p < 100.0 and ns > 0]
        if not xy:
            continue
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        da = f' stroke-dasharray="{dash}"' if dash else ""
        o.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"{da}/>')
        ly = MT + 10 + 20 * n
        o.append(f'<line x1="{W - MR + 15}" y1="{ly}" x2="{W - MR + 45}" y2="{ly}" '
                 f'stroke="{color}" stroke-width="2"{da}/>')
        o.append(f'<text x="{W - MR + 50}" y="{ly + 4}">{esc(label)}</text>')
    o.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(o) + "\n")
    return True


def throughput_svg(path, res):
    cases = sorted({(s, f) for (_, s, f, p) in res if p == "max"})
    if not cases:
        return False
    vals = {(d, s, f): num(res[(d, s, f, "max")], "rx_mpps")
            for (d, s, f, p) in res if p == "max"}
    vmax = max([v for v in vals.values() if v] + [TARGET_MPPS]) * 1.1
    pw, ph = W - ML - MR, H - MT - MB
    group = pw / len(cases)
    bw = group / (len(DUTS) + 1)

    def Y(v):
        return MT + ph * (1 - v / vmax)

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{ML + pw / 2}" y="25" text-anchor="middle" font-size="15">'
         'Forwarding rate, one forwarding lcore (phase max)</text>']
    step = 10 ** math.floor(math.log10(vmax / 2))
    v = 0.0
    while v <= vmax:
        o.append(f'<line x1="{ML}" y1="{Y(v):.1f}" x2="{ML + pw}" y2="{Y(v):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{ML - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        v += step
    o.append(f'<line x1="{ML}" y1="{Y(TARGET_MPPS):.1f}" x2="{ML + pw}" y2="{Y(TARGET_MPPS):.1f}" '
             'stroke="#2ca02c" stroke-dasharray="6,3"/>')
    o.append(f'<text x="{ML + pw - 4}" y="{Y(TARGET_MPPS) - 4:.1f}" text-anchor="end" '
             f'fill="#2ca02c">target {TARGET_MPPS:g} Mpps</text>')
    for i, (s, f) in enumerate(cases):
        for j, d in enumerate(DUTS):
            v = vals.get((d, s, f))
            if v is None:
                continue
            x = ML + i * group + bw * (j + 0.5)
            o.append(f'<rect x="{x:.1f}" y="{Y(v):.1f}" width="{bw:.1f}" height="{Y(0) - Y(v):.1f}" '
                     f'fill="{DUT_COLOR[d]}"/>')
            o.append(f'<text x="{x + bw / 2:.1f}" y="{Y(v) - 3:.1f}" text-anchor="middle" '
                     f'font-size="10">{v:.2f}</text>')
        cx = ML + (i + 0.5) * group
        o.append(f'<text x="{cx:.1f}" y="{MT + ph + 18}" text-anchor="middle">{s} B'
                 f'<tspan x="{cx:.1f}" dy="15">{human_count(f)} flow{"s" if f != 1 else ""}'
                 '</tspan></text>')
    o.append(f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    o.append(f'<text x="18" y="{MT + ph / 2}" text-anchor="middle" '
             f'transform="rotate(-90 18 {MT + ph / 2})">Mpps received on the servers’ side</text>')
    for j, d in enumerate(DUTS):
        ly = MT + 10 + 20 * j
        o.append(f'<rect x="{W - MR + 15}" y="{ly - 6}" width="30" height="12" fill="{DUT_COLOR[d]}"/>')
        o.append(f'<text x="{W - MR + 50}" y="{ly + 4}">{esc(DUT_NAME[d])}</text>')
    o.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(o) + "\n")
    return True


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: perf/report.py OUT_DIR")
    out = sys.argv[1]
    res = load(out)
    if not res:
        sys.exit(f"perf/report.py: no results in {out}")
    phases = sorted({p for (_, _, _, p) in res})
    paced = next((p for p in phases if p != "max"), "max")
    for size in sorted({s for (_, s, _, _) in res}):
        flows = sorted({f for (_, s, f, _) in res if s == size})
        curves = []
        for d in DUTS:
            for k, f in enumerate(flows):
                r = res.get((d, size, f, paced))
                if r and r["_hist"]:
                    curves.append((f"{DUT_NAME[d]}, {human_count(f)} flow{'s' if f != 1 else ''}", DUT_COLOR[d],
                                   FLOW_DASH[k % len(FLOW_DASH)], r["_hist"]))
        rate = next((r.get("rate_target_pps") for (d, s, f, p), r in res.items()
                     if s == size and p == paced), "?")
        latency_svg(os.path.join(out, f"latency-{size}B.svg"),
                    f"Latency, {size}-byte frames at {human_count(rate) if str(rate).isdigit() else rate} packets/s",
                    curves)
    throughput_svg(os.path.join(out, "throughput.svg"), res)
    summary(out, res)
    print(open(os.path.join(out, "summary.md"), encoding="utf-8").read())


if __name__ == "__main__":
    main()
