//! The `stream` subcommand: one lcore sends on port 0 and receives on both ports.
//!
//! Sending and receiving share the lcore on purpose: the benchmark machine has two CPUs,
//! one for the device's forwarding lcore, one for everything else.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use tandem_dpdk::{lcore, Burst, Eal, Mbuf, Mempool};
use tandem_wire::{Ipv4Addr, MacAddr};

use crate::dut_latency::{Buckets, WindowScrape};
use crate::link::{self, write, Link};
use crate::packet::{self, Rx, Template};
use crate::{Phase, StreamArgs};

/// Packets per transmit burst.
const BURST: usize = 32;
/// Transmit pool: filled with the template once, so that only the first 60 bytes of a
/// frame are written per packet.
const TX_POOL: u32 = 8191;
/// Receive pool (memif copies every received frame into one of these).
const RX_POOL: u32 = 16383;
/// Rate of the priming stream.
const PRIME_RATE: u64 = 10_000;
/// How long the priming stream waits for its first packet back.
const PRIME_WAIT: Duration = Duration::from_secs(20);

/// What [`Generator::run_window`] does; times in TSC ticks.
struct Window {
    /// Packets per second, 0: as fast as port 0 takes them.
    rate: u64,
    /// Sent before the measured window.
    warmup: u64,
    /// The measured window.
    measure: u64,
    /// Receiving after the last send.
    drain: u64,
    /// End the window at the first packet received in it.
    until_first: bool,
}

/// Counters of one phase's measured window.
#[derive(Debug, Default)]
struct Counts {
    /// Packets stamped inside the window and accepted by port 0.
    tx: u64,
    /// Of those, received on port 1.
    rx: u64,
    /// Stamped packets received before the window (warm-up) or after it.
    rx_outside: u64,
    /// Transmit attempts port 0 refused (ring full): the packets were retried.
    tx_refused: u64,
    /// Packets still unsent when the phase ended (dropped by the generator).
    tx_abandoned: u64,
    /// Mempool shortages when building a burst.
    alloc_failed: u64,
    /// Stamped packets that came back on port 0 (a device sending them the wrong way).
    rx_wrong_port: u64,
    /// Frames that were neither ours nor ARP requests.
    rx_other: u64,
    /// ARP replies sent.
    arp_replies: u64,
}

/// Runs the phases of a stream; writes their results.
pub fn run(args: &StreamArgs) -> Result<()> {
    if args.flows == 0 || args.flows > packet::MAX_FLOWS {
        bail!("--flows {}: 1 ..= {}", args.flows, packet::MAX_FLOWS);
    }
    if !(args.seconds > 0.0
        && args.seconds.is_finite()
        && args.warmup >= 0.0
        && args.warmup.is_finite())
    {
        bail!("--seconds must be > 0 and --warmup >= 0, both finite");
    }
    if args.rx_queues == 0 {
        bail!("--rx-queues must be at least 1");
    }
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let _eal = Eal::init(&args.eal).context("EAL initialisation (the arguments after --)")?;
    let hz = lcore::tsc_hz();
    if hz == 0 {
        bail!("the EAL did not measure the TSC frequency");
    }
    let tx_pool = Mempool::new_pktmbuf(
        "bench_tx",
        TX_POOL,
        256,
        tandem_dpdk::DEFAULT_DATA_ROOM,
        None,
    )
    .context("transmit mempool")?;
    let rx_pool = Mempool::new_pktmbuf(
        "bench_rx",
        RX_POOL,
        256,
        tandem_dpdk::DEFAULT_DATA_ROOM,
        None,
    )
    .context("receive mempool")?;
    let mut link = link::open(args.rx_queues, &rx_pool)?;
    let template = Template::new(
        args.frame_size,
        link.macs[0],
        args.dst_mac,
        args.vip,
        args.vip_port,
    )?;
    prefill(&tx_pool, &template)?;
    eprintln!(
        "tandem-bench: ports up (port 0 {}, port 1 {}), {} flows, {}-byte frames, TSC {} Hz",
        link.macs[0], link.macs[1], args.flows, args.frame_size, hz
    );
    let mut gen = Generator::new(args, template, tx_pool, rx_pool, hz)?;
    gen.prime(&mut link)?;
    for phase in &args.phases {
        let scrape = args
            .dut_metrics
            .map(|addr| {
                WindowScrape::start(
                    addr,
                    Duration::from_secs_f64(args.warmup),
                    Duration::from_secs_f64(args.seconds),
                )
            })
            .transpose()?;
        let (counts, hist) = gen.phase(&mut link, phase)?;
        // A failed scrape is reported in the results, not fatal: the rates stand.
        let dut = scrape.map(WindowScrape::finish);
        write_results(args, phase, hz, &counts, &hist, dut.as_ref())?;
    }
    // Keep the links up (without polling) so that the device can stop first: a memif
    // server whose client goes away while its lcore polls may fault in the driver (seen
    // with DPDK 22.11 in testpmd and Tandem alike: the shared memory is unmapped under
    // the running burst).
    eprintln!("tandem-bench: done");
    std::thread::sleep(Duration::from_secs(args.linger));
    for p in &mut link.ports {
        let _ = p.stop();
    }
    Ok(())
}

/// Writes the template into every buffer of the transmit pool, so that payload bytes
/// past the stamp are zero in any buffer the pool hands out later.
fn prefill(pool: &Mempool, template: &Template) -> Result<()> {
    let len = u16::try_from(template.frame_len()).context("frame length")?;
    let mut all = Vec::new();
    while let Some(mut m) = pool.alloc() {
        let buf = m
            .append(len)
            .context("a transmit mbuf lacks the room for one frame")?;
        buf.copy_from_slice(template.frame());
        all.push(m);
    }
    if all.is_empty() {
        bail!("the transmit pool is empty");
    }
    Ok(())
}

/// The sending and receiving state, kept across phases (flows keep their sequence
/// numbers).
struct Generator {
    template: Template,
    tx_pool: Mempool,
    rx_pool: Mempool,
    hz: u64,
    flows: u32,
    next_flow: u32,
    /// Next sequence number of each flow (TCP sequence numbers: wrapping).
    seq: Vec<u32>,
    /// Payload bytes per segment.
    seg_len: u32,
    replica: Ipv4Addr,
    len: u16,
    drain_ticks: u64,
    warmup_ticks: u64,
    measure_ticks: u64,
}

impl Generator {
    fn new(
        args: &StreamArgs,
        template: Template,
        tx_pool: Mempool,
        rx_pool: Mempool,
        hz: u64,
    ) -> Result<Generator> {
        let len = u16::try_from(template.frame_len()).context("frame length")?;
        let seg_len = u32::from(len) - packet::HEADERS_LEN as u32;
        // Distinct starting points per flow, so that flows do not look alike.
        let seq = (0..args.flows)
            .map(|i| i.wrapping_mul(0x9e37_79b9))
            .collect();
        let ticks = |s: f64| (s * hz as f64) as u64;
        Ok(Generator {
            template,
            tx_pool,
            rx_pool,
            hz,
            flows: args.flows,
            next_flow: 0,
            seq,
            seg_len,
            replica: args.replica,
            len,
            drain_ticks: args.drain_ms * hz / 1000,
            warmup_ticks: ticks(args.warmup),
            measure_ticks: ticks(args.seconds),
        })
    }

    /// Adds up to `n` new packets to `burst`, all stamped `now`; returns how many.
    #[inline]
    fn build(&mut self, burst: &mut Burst<Mbuf, BURST>, n: usize, now: u64) -> usize {
        let start = burst.len();
        if n == 0 || !self.tx_pool.alloc_bulk(burst, n) {
            return 0;
        }
        for m in &mut burst[start..] {
            let Some(buf) = m.append(self.len) else {
                // Cannot happen with the pool's data room; the frame goes out empty and is
                // counted as "other" if it ever comes back.
                continue;
            };
            let i = self.next_flow;
            self.next_flow = if i + 1 == self.flows { 0 } else { i + 1 };
            let (ip, port) = packet::flow_addr(i);
            let seq = &mut self.seq[i as usize];
            self.template.write(buf, ip, port, *seq, now);
            *seq = seq.wrapping_add(self.seg_len);
        }
        n
    }

    /// Sends slowly until a first packet comes back on port 1 (the device is forwarding:
    /// it has its neighbours resolved), for at most [`PRIME_WAIT`].
    fn prime(&mut self, link: &mut Link) -> Result<()> {
        let window = Window {
            rate: PRIME_RATE,
            warmup: 0,
            measure: PRIME_WAIT.as_secs() * self.hz,
            drain: self.drain_ticks,
            until_first: true,
        };
        let (c, _) = self.run_window(link, &window)?;
        if c.rx == 0 {
            bail!(
                "no packet came back on port 1 within {PRIME_WAIT:?} ({} sent, {} ARP replies, \
                 {} other frames received): is the device forwarding?",
                c.tx,
                c.arp_replies,
                c.rx_other
            );
        }
        Ok(())
    }

    /// One phase: warm-up, measurement window, drain. Returns the window's counts and
    /// latency histogram (TSC ticks).
    fn phase(&mut self, link: &mut Link, phase: &Phase) -> Result<(Counts, Histogram<u64>)> {
        let window = Window {
            rate: phase.rate,
            warmup: self.warmup_ticks,
            measure: self.measure_ticks,
            drain: self.drain_ticks,
            until_first: false,
        };
        self.run_window(link, &window)
    }

    /// Sends and receives through `w`.
    fn run_window(&mut self, link: &mut Link, w: &Window) -> Result<(Counts, Histogram<u64>)> {
        let hz = self.hz;
        let mut hist = Histogram::<u64>::new_with_bounds(1, hz.saturating_mul(10).max(2), 3)
            .context("latency histogram")?;
        let mut c = Counts::default();
        let t0 = lcore::tsc();
        let (win_start, mut win_end) = (t0 + w.warmup, t0 + w.warmup + w.measure);
        let mut end = win_end + w.drain;
        let mut burst: Burst<Mbuf, BURST> = Burst::new();
        // Send stamps of the packets in `burst`, slot by slot.
        let mut stamps = [0u64; BURST];
        let mut sent_total: u64 = 0;
        let mut rx: Burst<Mbuf, BURST> = Burst::new();
        let mut replies: Burst<Mbuf, 8> = Burst::new();
        loop {
            let now = lcore::tsc();
            if now >= end {
                break;
            }
            if w.until_first && c.rx > 0 && win_end > now {
                // Stop sending; what is in flight drains.
                (win_end, end) = (now, now + w.drain);
            }
            // Transmit: refill the burst (paced or full), then offer it to port 0.
            if now < win_end {
                let room = BURST - burst.len();
                let want = if w.rate == 0 {
                    room
                } else {
                    let due = (u128::from(now - t0) * u128::from(w.rate) / u128::from(hz)) as u64;
                    (due.saturating_sub(sent_total + burst.len() as u64) as usize).min(room)
                };
                let old = burst.len();
                let got = self.build(&mut burst, want, now);
                if want > 0 && got == 0 {
                    c.alloc_failed += 1;
                }
                stamps[old..old + got].fill(now);
            }
            if !burst.is_empty() {
                let before = burst.len();
                let n = link.tx[0].tx_burst(&mut burst);
                sent_total += n as u64;
                c.tx += stamps[..n]
                    .iter()
                    .filter(|&&s| s >= win_start && s < win_end)
                    .count() as u64;
                stamps.copy_within(n..before, 0);
                if n < before {
                    c.tx_refused += 1;
                }
            }
            // Receive on both ports, all queues.
            for side in [1usize, 0] {
                for q in 0..link.rx[side].len() {
                    if link.rx[side][q].rx_burst(&mut rx) == 0 {
                        continue;
                    }
                    let now = lcore::tsc();
                    for m in rx.drain() {
                        match packet::classify(m.data()) {
                            Rx::Stamped(s) if side == 1 => {
                                let t = packet::unstamp(now, s);
                                if t >= win_start && t < win_end {
                                    c.rx += 1;
                                    hist.saturating_record(now - t);
                                } else {
                                    c.rx_outside += 1;
                                }
                            }
                            Rx::Stamped(_) => c.rx_wrong_port += 1,
                            Rx::ArpRequest {
                                target,
                                sender_mac,
                                sender_ip,
                            } => {
                                let ours = if side == 1 {
                                    target == self.replica
                                } else {
                                    packet::is_client(target, self.flows)
                                };
                                if ours {
                                    if let Some(r) = self.arp_reply(
                                        link.macs[side],
                                        target,
                                        sender_mac,
                                        sender_ip,
                                    ) {
                                        let _ = replies.push(r);
                                    }
                                }
                            }
                            Rx::Other => c.rx_other += 1,
                        }
                    }
                    if !replies.is_empty() {
                        c.arp_replies += link.tx[side].tx_burst(&mut replies) as u64;
                        replies.clear();
                    }
                }
            }
        }
        c.tx_abandoned = burst.len() as u64;
        burst.clear();
        Ok((c, hist))
    }

    /// An ARP reply in a buffer of the receive pool (the transmit pool's buffers keep the
    /// template).
    fn arp_reply(
        &self,
        mac: MacAddr,
        ip: Ipv4Addr,
        asker_mac: MacAddr,
        asker_ip: Ipv4Addr,
    ) -> Option<Mbuf> {
        let mut m = self.rx_pool.alloc()?;
        let buf = m.append(tandem_wire::build::MIN_FRAME_LEN as u16)?;
        packet::arp_reply(buf, mac, ip, asker_mac, asker_ip).ok()?;
        Some(m)
    }
}

/// Nanoseconds of `ticks` TSC ticks.
fn ns(ticks: u64, hz: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(hz)) as u64
}

/// Writes `<prefix>-<phase>.txt` (key=value) and `<prefix>-<phase>.hist.csv`.
fn write_results(
    args: &StreamArgs,
    phase: &Phase,
    hz: u64,
    c: &Counts,
    hist: &Histogram<u64>,
    dut: Option<&Result<Buckets>>,
) -> Result<()> {
    let secs = args.seconds;
    let mut s = String::new();
    let mut kv = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(s, "{k}={v}");
    };
    kv("label", &args.label);
    kv("phase", &phase.name);
    kv("rate_target_pps", &phase.rate);
    kv("flows", &args.flows);
    kv("frame_size", &args.frame_size);
    kv("seconds", &secs);
    kv("warmup_seconds", &args.warmup);
    kv("tsc_hz", &hz);
    kv("tx_pkts", &c.tx);
    kv("rx_pkts", &c.rx);
    kv("tx_pps", &format!("{:.0}", c.tx as f64 / secs));
    kv("rx_pps", &format!("{:.0}", c.rx as f64 / secs));
    kv("rx_mpps", &format!("{:.3}", c.rx as f64 / secs / 1e6));
    let loss = if c.tx == 0 {
        1.0
    } else {
        1.0 - c.rx.min(c.tx) as f64 / c.tx as f64
    };
    kv("loss", &format!("{loss:.6}"));
    kv("rx_outside_window", &c.rx_outside);
    kv("rx_wrong_port", &c.rx_wrong_port);
    kv("rx_other", &c.rx_other);
    kv("tx_refused_bursts", &c.tx_refused);
    kv("tx_abandoned", &c.tx_abandoned);
    kv("alloc_failed", &c.alloc_failed);
    kv("arp_replies", &c.arp_replies);
    kv("lat_samples", &hist.len());
    if hist.is_empty() {
        for k in ["min", "p50", "p90", "p99", "p999", "p9999", "max", "mean"] {
            kv(&format!("lat_{k}_ns"), &"nan");
        }
    } else {
        kv("lat_min_ns", &ns(hist.min(), hz));
        for (k, q) in [
            ("p50", 0.5),
            ("p90", 0.9),
            ("p99", 0.99),
            ("p999", 0.999),
            ("p9999", 0.9999),
        ] {
            kv(&format!("lat_{k}_ns"), &ns(hist.value_at_quantile(q), hz));
        }
        kv("lat_max_ns", &ns(hist.max(), hz));
        kv(
            "lat_mean_ns",
            &format!("{:.0}", hist.mean() * 1e9 / hz as f64),
        );
    }
    let base = format!("{}-{}", args.prefix, phase.name);
    // The device's own added latency over the window, as bucket bounds.
    let mut dut_line = String::new();
    match dut {
        None => {}
        Some(Err(e)) => {
            kv("dut_lat_error", &format!("{e:#}").replace('\n', " "));
            dut_line = " (device latency: no scrape)".to_owned();
        }
        Some(Ok(b)) => {
            kv("dut_lat_samples", &b.count());
            let bound = |q: f64| {
                b.quantile_at_most(q)
                    .map_or("nan".to_owned(), |s| format!("{:.0}", s * 1e9))
            };
            for (k, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
                kv(&format!("dut_lat_{k}_at_most_ns"), &bound(q));
            }
            let share = b
                .share_at_most(10e-6)
                .map_or("nan".to_owned(), |x| format!("{x:.6}"));
            kv("dut_lat_share_at_most_10us", &share);
            write(
                &args.out_dir.join(format!("{base}.dut-buckets.csv")),
                &b.csv(),
            )?;
            dut_line = format!(" device p99 <= {} ns, {share} within 10 us", bound(0.99));
        }
    }
    write(&args.out_dir.join(format!("{base}.txt")), &s)?;
    let mut csv = String::from("percentile,latency_ns,count\n");
    if !hist.is_empty() {
        for v in hist.iter_quantiles(5) {
            let _ = writeln!(
                csv,
                "{:.6},{},{}",
                v.quantile_iterated_to() * 100.0,
                ns(v.value_iterated_to(), hz),
                v.count_since_last_iteration()
            );
        }
    }
    write(&args.out_dir.join(format!("{base}.hist.csv")), &csv)?;
    eprintln!(
        "tandem-bench: {} {}: tx {:.3} Mpps rx {:.3} Mpps loss {:.4}% p50 {} ns p99 {} ns{}",
        args.prefix,
        phase.name,
        c.tx as f64 / secs / 1e6,
        c.rx as f64 / secs / 1e6,
        loss * 100.0,
        if hist.is_empty() {
            0
        } else {
            ns(hist.value_at_quantile(0.5), hz)
        },
        if hist.is_empty() {
            0
        } else {
            ns(hist.value_at_quantile(0.99), hz)
        },
        dut_line,
    );
    Ok(())
}
