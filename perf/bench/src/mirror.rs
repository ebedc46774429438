//! The `mirror` subcommand: a stateful generator for Tandem's mirror path (issue #6).
//!
//! One lcore plays both ends of C TCP connections over the two memif ports. On port 0 it
//! is the clients (198.18.16.x, see [`packet::flow_addr`]): handshake to the VIP, then a
//! request/response loop with at most `--depth` requests in flight per connection, every
//! response byte checked. On port 1 it is two replicas, primary and backup, each with its
//! own ISN, timestamp clock and IP identification mark; both answer every request with the
//! same bytes (Tandem requires deterministic replicas) and answer Tandem's health probes.
//! At `--fail-at` the primary dies like a killed process (RST to everything) or a dead
//! host (silence); the clients must keep receiving an exact stream with no reset.
//!
//! Both sides retransmit after `--rto-ms` without progress (go-back-N: every byte is a
//! function of its stream offset, so nothing is buffered), so a frame lost on memif costs
//! a retransmission, never a hang; every loop is bounded in time.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use tandem_dpdk::{lcore, Burst, Eal, Mbuf, Mempool, Port, RxQueue, TxQueue};
use tandem_wire::build::{self, OptionWriter, TcpBuild};
use tandem_wire::{
    ArpPacket, EtherType, EthernetFrame, Ipv4Addr, Ipv4Packet, MacAddr, TcpFlags, TcpSegment,
};

use crate::link::{self, write};
use crate::packet;

/// Frames per receive and transmit burst.
const BURST: usize = 32;
/// Buffers for everything the generator sends and receives.
const POOL: u32 = 16383;
/// MSS announced by every end.
const MSS: u16 = 1460;
/// Payload bytes per segment: the MSS less the timestamp option (12 bytes with padding).
const SEG_PAYLOAD: usize = 1448;
/// Window scale announced by every end, and the window field every end sends (4 MiB
/// with the scale: never the limit, the request depth is).
const WSCALE: u8 = 7;
const WINDOW: u16 = 32768;
/// A replica never has more than this unacknowledged.
const MAX_IN_FLIGHT: u64 = 256 * 1024;
/// Keep receiving this long after the last request was sent.
const DRAIN: Duration = Duration::from_millis(500);
/// A loop pass longer than this means the generator itself was descheduled.
const LONG_PASS: Duration = Duration::from_millis(1);

/// Timeline bucket.
const BUCKET_NS: u64 = 1_000_000;
/// Timestamp clocks of the replicas: far apart, the backup's behind the primary's, so
/// that a failover without re-basing would show the client a TSval going backwards.
const TS_BASE: [u32; 2] = [3_000_000_000, 100_000];
/// ISN bases of the replicas (per connection, a multiple of the index is added).
const ISN_BASE: [u32; 2] = [0x4000_0000, 0xc000_1000];

/// How the primary dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailKind {
    /// Like a killed process: its kernel answers every segment and probe with RST.
    Rst,
    /// Like a dead host: nothing at all (ARP included).
    Silence,
}

/// What `mirror` does; see the module docs.
#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    /// Client connections (client addresses from 198.18.16.1, port 10000).
    #[arg(long, default_value_t = 64)]
    pub conns: u32,
    /// Request bytes (one segment).
    #[arg(long, default_value_t = 128)]
    pub request_size: usize,
    /// Response bytes per request (split into segments of 1448).
    #[arg(long, default_value_t = 1024)]
    pub response_size: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 2)]
    pub depth: u32,
    /// Seconds of requests after the handshakes.
    #[arg(long, default_value_t = 6.0)]
    pub seconds: f64,
    /// Seconds to answer ARP and probes before the first SYN (Tandem must see the
    /// replicas up).
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// When the primary dies, counted from the start of the request phase (`3s`,
    /// `2500ms`, `3`); none if not given.
    #[arg(long, value_parser = parse_duration)]
    pub fail_at: Option<Duration>,
    /// How the primary dies.
    #[arg(long, value_enum, default_value_t = FailKind::Rst)]
    pub fail_kind: FailKind,
    /// The backup answers with other bytes than the primary (a non-deterministic
    /// replica): a check that the clients' byte checks see what a failover then delivers.
    #[arg(long)]
    pub diverge_backup: bool,
    /// Retransmission timeout of both sides, in ms (no progress that long: go back).
    #[arg(long, default_value_t = 50)]
    pub rto_ms: u64,
    /// Destination MAC of the frames sent on port 0 (the device's port on that side).
    #[arg(long, value_parser = crate::parse_mac)]
    pub dst_mac: MacAddr,
    /// The VIP.
    #[arg(long, default_value = crate::VIP)]
    pub vip: Ipv4Addr,
    /// The service port (also the port Tandem probes).
    #[arg(long, default_value_t = 80)]
    pub vip_port: u16,
    /// The primary replica's address (first in the profile's ordered list).
    #[arg(long, default_value = crate::PRIMARY)]
    pub primary: Ipv4Addr,
    /// The backup replica's address.
    #[arg(long, default_value = crate::BACKUP)]
    pub backup: Ipv4Addr,
    /// Receive queues per port: as many as the device's transmit queues on that link
    /// (Tandem with one worker: one).
    #[arg(long, default_value_t = 1)]
    pub rx_queues: u16,
    /// Directory for the result files.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Results go to `<out-dir>/<prefix>.txt`, `.timeline.csv` and `.hist.csv`.
    #[arg(long)]
    pub prefix: String,
    /// Free text written as `label=` into the results.
    #[arg(long, default_value = "")]
    pub label: String,
    /// EAL arguments (after `--`).
    #[arg(last = true, required = true)]
    pub eal: Vec<String>,
}

/// `3s`, `2500ms`, `3.5` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let (num, scale) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .parse()
        .with_context(|| format!("duration {s:?}: expected e.g. 3s or 2500ms"))?;
    if !(v >= 0.0 && v.is_finite()) {
        bail!("duration {s:?}: must be >= 0");
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// Byte `j` of request `k` of connection `c`: a counter pattern that shifts with every
/// request and connection, so that a misplaced or stale byte shows.
#[inline]
pub fn req_byte(c: u32, k: u64, j: u64) -> u8 {
    (u64::from(c).wrapping_mul(7) ^ k.wrapping_mul(13)).wrapping_add(j) as u8
}

/// Byte `j` of the response to request `k` of connection `c` (both replicas compute it
/// from the request they received).
#[inline]
pub fn resp_byte(c: u32, k: u64, j: u64) -> u8 {
    (u64::from(c).wrapping_mul(11) ^ k.wrapping_mul(29))
        .wrapping_add(j.wrapping_mul(5))
        .wrapping_add(1) as u8
}

/// Serial-number "a after b" (RFC 1982) for TCP sequence numbers and timestamps.
#[inline]
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// A parsed TCP/IPv4 frame.
struct Seg<'a> {
    src_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    ts: Option<(u32, u32)>,
    ident: u16,
    payload: &'a [u8],
}

enum Frame<'a> {
    Tcp(Seg<'a>),
    ArpRequest {
        target: Ipv4Addr,
        sender_mac: MacAddr,
        sender_ip: Ipv4Addr,
    },
    Other,
}

fn parse(frame: &[u8]) -> Frame<'_> {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Frame::Other;
    };
    let et = eth.ethertype();
    if et == EtherType::ARP {
        return match ArpPacket::new_checked(eth.payload()) {
            Ok(a) if a.operation() == ArpPacket::REQUEST => Frame::ArpRequest {
                target: a.target_ip(),
                sender_mac: a.sender_mac(),
                sender_ip: a.sender_ip(),
            },
            _ => Frame::Other,
        };
    }
    if et != EtherType::IPV4 {
        return Frame::Other;
    }
    let src_mac = eth.src();
    let l2 = eth.header_len();
    let Some(l3) = frame.get(l2..) else {
        return Frame::Other;
    };
    let Ok(ip) = Ipv4Packet::new_checked(l3) else {
        return Frame::Other;
    };
    if ip.protocol() != tandem_wire::ipv4::protocol::TCP {
        return Frame::Other;
    }
    let (src, dst, ident) = (ip.src(), ip.dst(), ip.ident());
    let Ok(tcp) = TcpSegment::new_checked(ip.payload()) else {
        return Frame::Other;
    };
    if !tcp.verify_checksum(src, dst) {
        return Frame::Other;
    }
    let hl = tcp.header_len();
    let ts = tcp.timestamps();
    let start = l2 + ip.header_len() + hl;
    let end = l2 + usize::from(ip.total_len());
    let Some(payload) = frame.get(start..end) else {
        return Frame::Other;
    };
    Frame::Tcp(Seg {
        src_mac,
        src,
        dst,
        sport: tcp.src_port(),
        dport: tcp.dst_port(),
        seq: tcp.seq(),
        ack: tcp.ack(),
        flags: tcp.flags(),
        ts,
        ident,
        payload,
    })
}

/// Transmit side: one burst per port, flushed when full and once per loop.
struct Io {
    tx: [TxQueue; 2],
    out: [Burst<Mbuf, BURST>; 2],
    pool: Mempool,
    macs: [MacAddr; 2],
    /// Frames the port did not take (memif ring full) or no buffer was free for: left
    /// to the retransmission timers.
    tx_dropped: u64,
    frames_sent: u64,
    /// IP identification counter of each replica (top bit: which replica).
    ident: [u16; 2],
    scratch: Vec<u8>,
}

impl Io {
    fn flush(&mut self, port: usize) {
        if self.out[port].is_empty() {
            return;
        }
        let n = self.tx[port].tx_burst(&mut self.out[port]);
        self.frames_sent += n as u64;
        if !self.out[port].is_empty() {
            // One retry after the peer had a moment; then the rest is lost.
            let m = self.tx[port].tx_burst(&mut self.out[port]);
            self.frames_sent += m as u64;
            self.tx_dropped += self.out[port].len() as u64;
            self.out[port].clear();
        }
    }

    /// Sends a TCP segment on `port`; `mark` sets the IP identification (replicas).
    fn tcp(&mut self, port: usize, spec: &TcpBuild, mark: Option<usize>) {
        let need = 14 + 20 + 20 + spec.options.len() + spec.payload.len();
        let len = need.max(build::MIN_FRAME_LEN);
        let Some(mut m) = self.pool.alloc() else {
            self.tx_dropped += 1;
            return;
        };
        let Some(buf) = u16::try_from(len).ok().and_then(|l| m.append(l)) else {
            self.tx_dropped += 1;
            return;
        };
        buf.fill(0);
        if build::tcp(buf, spec).is_err() {
            self.tx_dropped += 1;
            return;
        }
        if let Some(r) = mark {
            let id = (self.ident[r] & 0x7fff) | ((r as u16) << 15);
            self.ident[r] = self.ident[r].wrapping_add(1);
            let mut ip = Ipv4Packet::new_unchecked(&mut buf[14..]);
            ip.set_ident_raw(id);
            ip.fill_checksum();
        }
        self.push(port, m);
    }

    fn push(&mut self, port: usize, m: Mbuf) {
        if self.out[port].is_full() {
            self.flush(port);
        }
        if self.out[port].push(m).is_err() {
            self.tx_dropped += 1;
        }
    }

    fn arp_reply(&mut self, port: usize, ip: Ipv4Addr, asker_mac: MacAddr, asker_ip: Ipv4Addr) {
        let Some(mut m) = self.pool.alloc() else {
            self.tx_dropped += 1;
            return;
        };
        let Some(buf) = m.append(build::MIN_FRAME_LEN as u16) else {
            return;
        };
        if packet::arp_reply(buf, self.macs[port], ip, asker_mac, asker_ip).is_ok() {
            self.push(port, m);
        }
    }
}

/// Options of a SYN or SYN-ACK: MSS, SACK-permitted, timestamps, window scale.
fn syn_opts(tsval: u32, tsecr: u32) -> OptionWriter {
    let mut w = OptionWriter::new();
    w.mss(MSS)
        .sack_permitted()
        .timestamps(tsval, tsecr)
        .window_scale(WSCALE);
    w
}

fn ts_opts(tsval: u32, tsecr: u32) -> OptionWriter {
    let mut w = OptionWriter::new();
    w.timestamps(tsval, tsecr);
    w
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CState {
    /// Waiting for the settle time to pass.
    Idle,
    SynSent,
    Established,
    /// Reset by the network (counted): the connection is dead.
    Reset,
}

/// One client connection. Byte positions are 64-bit stream offsets; sequence numbers
/// are `base + offset`, wrapping.
struct Client {
    ip: Ipv4Addr,
    port: u16,
    state: CState,
    isn: u32,
    /// Client-visible server ISN (from the SYN-ACK).
    srv_isn: u32,
    snd_una: u64,
    snd_nxt: u64,
    /// Requests written so far (`snd_max = reqs * request_size`).
    reqs: u64,
    /// Requests whose response has arrived completely.
    done: u64,
    /// Next response offset expected.
    rcv: u64,
    ts_recent: u32,
    last_tsval: Option<u32>,
    /// Send TSC of requests in flight, slot `k % depth`.
    sent_at: Vec<u64>,
    /// Last time something moved (RTO).
    progress: u64,
    /// Last time a new response byte arrived, and whether one arrived since the failure.
    last_byte: u64,
    last_byte_before_fail: u64,
    first_byte_after_fail: u64,
    /// Gap between the connection's first byte from the backup after the failure and the
    /// byte before it: the stall the takeover cost it (0 until then).
    fail_gap: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RState {
    Closed,
    SynRcvd,
    Established,
}

/// One replica's end of one connection.
#[derive(Clone)]
struct Replica {
    state: RState,
    isn: u32,
    client_isn: u32,
    /// Client bytes received.
    rcv: u64,
    /// Response bytes acked, sent, and written by the "application".
    snd_una: u64,
    snd_nxt: u64,
    avail: u64,
    ts_recent: u32,
    progress: u64,
}

/// Everything counted; written as key=value.
#[derive(Debug, Default)]
struct Counts {
    established: u64,
    requests_sent: u64,
    requests_done: u64,
    client_bytes_rx: u64,
    client_resets: u64,
    handshake_resets: u64,
    client_fins: u64,
    byte_errors: u64,
    ts_backwards: u64,
    client_ooo: u64,
    client_dup: u64,
    client_retrans: u64,
    syn_retrans: u64,
    replica_retrans: [u64; 2],
    replica_byte_errors: [u64; 2],
    replica_ooo: [u64; 2],
    replica_rsts_rx: [u64; 2],
    replica_unknown: [u64; 2],
    replica_ts_errors: [u64; 2],
    rsts_sent_by_failed_primary: u64,
    probes_answered: [u64; 2],
    arp_replies: u64,
    rx_other: u64,
    bytes_from_backup_before_fail: u64,
    bytes_from_backup: u64,
    tx_dropped: u64,
    frames_sent: u64,
}

struct Link {
    ports: [Port; 2],
    rx: [Vec<RxQueue>; 2],
    io: Io,
}

struct Gen<'a> {
    a: &'a MirrorArgs,
    hz: u64,
    t0: u64,
    rto: u64,
    clients: Vec<Client>,
    reps: [Vec<Replica>; 2],
    index: HashMap<(Ipv4Addr, u16), u32>,
    addrs: [Ipv4Addr; 2],
    /// The device's MAC on port 1, learnt from what it sends there.
    inside_mac: MacAddr,
    c: Counts,
    /// Request phase: start, end of sending, failure time (TSC).
    start: u64,
    send_end: u64,
    fail_at: Option<u64>,
    failed: bool,
    hist: Histogram<u64>,
    /// Per 1 ms bucket: client bytes, of which from the backup, requests completed.
    tl_bytes: Vec<u64>,
    tl_backup: Vec<u64>,
    tl_reqs: Vec<u64>,
    first_byte_after_fail: Option<u64>,
    first_backup_byte_after_fail: Option<u64>,
    last_byte_before_fail: u64,
    /// Longest gap between new client bytes (all connections together) in the phase.
    last_any_byte: u64,
    max_gap: u64,
    max_gap_at: u64,
    /// The gap (all connections together) that ended with the first byte from the backup
    /// after the failure, and its start.
    fail_gap: u64,
    fail_gap_at: u64,
    /// Loop passes longer than [`LONG_PASS`] (the generator off its CPU), their total
    /// and the longest, in the request phase.
    long_passes: u64,
    long_pass_ticks: u64,
    longest_pass: u64,
    /// Ticks of the request phase spent in loop passes that received nothing (the
    /// generator waiting on the device), and in all passes.
    idle_ticks: u64,
    loop_ticks: u64,
}

/// Runs the generator; writes the results.
pub fn run(a: &MirrorArgs) -> Result<()> {
    if a.conns == 0 || a.conns > 60000 {
        bail!("--conns {}: 1 ..= 60000", a.conns);
    }
    if a.request_size == 0 || a.request_size > SEG_PAYLOAD {
        bail!("--request-size {}: 1 ..= {SEG_PAYLOAD}", a.request_size);
    }
    if a.response_size == 0 || a.depth == 0 || a.depth > 64 {
        bail!("--response-size must be > 0 and --depth 1 ..= 64");
    }
    if (a.response_size as u64) * u64::from(a.depth) > MAX_IN_FLIGHT {
        bail!("--response-size x --depth must stay under {MAX_IN_FLIGHT} bytes");
    }
    if !(a.seconds > 0.0 && a.seconds.is_finite() && a.settle >= 0.0) {
        bail!("--seconds must be > 0 and --settle >= 0");
    }
    if a.rx_queues == 0 || a.rto_ms == 0 {
        bail!("--rx-queues and --rto-ms must be at least 1");
    }
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("creating {}", a.out_dir.display()))?;
    let _eal = Eal::init(&a.eal).context("EAL initialisation (the arguments after --)")?;
    let hz = lcore::tsc_hz();
    if hz == 0 {
        bail!("the EAL did not measure the TSC frequency");
    }
    let pool = Mempool::new_pktmbuf("mirror", POOL, 256, tandem_dpdk::DEFAULT_DATA_ROOM, None)
        .context("mempool")?;
    let mut link = open_link(a.rx_queues, pool)?;
    eprintln!(
        "tandem-bench: mirror: ports up ({} / {}), {} connections, {}-byte requests, \
         {}-byte responses, depth {}, failure {:?} ({:?})",
        link.io.macs[0],
        link.io.macs[1],
        a.conns,
        a.request_size,
        a.response_size,
        a.depth,
        a.fail_at,
        a.fail_kind
    );
    let mut g = Gen::new(a, hz)?;
    let res = g.run(&mut link);
    for p in &mut link.ports {
        // Close the memif connections cleanly so the server side sees a disconnect.
        let _ = p.stop();
    }
    res?;
    g.write_results()?;
    let c = &g.c;
    // Results are written either way; a broken stream fails the command.
    if c.client_resets > 0 || c.byte_errors > 0 || c.ts_backwards > 0 {
        bail!(
            "the mirror path broke the clients' streams: {} resets, {} wrong bytes, {} \
             timestamps going backwards",
            c.client_resets,
            c.byte_errors,
            c.ts_backwards
        );
    }
    Ok(())
}

/// The links, with the generator's transmit side around their transmit queues.
fn open_link(rx_queues: u16, pool: Mempool) -> Result<Link> {
    let l = link::open(rx_queues, &pool)?;
    Ok(Link {
        ports: l.ports,
        rx: l.rx,
        io: Io {
            tx: l.tx,
            out: [Burst::new(), Burst::new()],
            pool,
            macs: l.macs,
            tx_dropped: 0,
            frames_sent: 0,
            ident: [0, 0],
            scratch: vec![0u8; 64 * 1024],
        },
    })
}

impl<'a> Gen<'a> {
    fn new(a: &'a MirrorArgs, hz: u64) -> Result<Gen<'a>> {
        let mut clients = Vec::new();
        let mut index = HashMap::new();
        for i in 0..a.conns {
            let (ip, port) = packet::flow_addr(i);
            index.insert((ip, port), i);
            clients.push(Client {
                ip,
                port,
                state: CState::Idle,
                isn: 0x1000_0000u32.wrapping_add(i.wrapping_mul(0x9e37_79b9)),
                srv_isn: 0,
                snd_una: 0,
                snd_nxt: 0,
                reqs: 0,
                done: 0,
                rcv: 0,
                ts_recent: 0,
                last_tsval: None,
                sent_at: vec![0; a.depth as usize],
                progress: 0,
                last_byte: 0,
                last_byte_before_fail: 0,
                first_byte_after_fail: 0,
                fail_gap: 0,
            });
        }
        let rep = |r: usize| {
            (0..a.conns)
                .map(|i| Replica {
                    state: RState::Closed,
                    isn: ISN_BASE[r].wrapping_add(i.wrapping_mul(0x0101_0101)),
                    client_isn: 0,
                    rcv: 0,
                    snd_una: 0,
                    snd_nxt: 0,
                    avail: 0,
                    ts_recent: 0,
                    progress: 0,
                })
                .collect::<Vec<_>>()
        };
        let buckets = ((a.seconds + DRAIN.as_secs_f64()) * 1000.0) as usize + 2;
        Ok(Gen {
            a,
            hz,
            t0: 0,
            rto: a.rto_ms * hz / 1000,
            clients,
            reps: [rep(0), rep(1)],
            index,
            addrs: [a.primary, a.backup],
            inside_mac: MacAddr::BROADCAST,
            c: Counts::default(),
            start: 0,
            send_end: 0,
            fail_at: None,
            failed: false,
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).context("histogram")?,
            tl_bytes: vec![0; buckets],
            tl_backup: vec![0; buckets],
            tl_reqs: vec![0; buckets],
            first_byte_after_fail: None,
            first_backup_byte_after_fail: None,
            last_byte_before_fail: 0,
            last_any_byte: 0,
            max_gap: 0,
            max_gap_at: 0,
            fail_gap: 0,
            fail_gap_at: 0,
            long_passes: 0,
            long_pass_ticks: 0,
            longest_pass: 0,
            idle_ticks: 0,
            loop_ticks: 0,
        })
    }

    fn ticks(&self, d: Duration) -> u64 {
        (d.as_secs_f64() * self.hz as f64) as u64
    }

    /// Milliseconds since start, for timestamp clocks.
    fn ms(&self, now: u64) -> u32 {
        ((now - self.t0) / (self.hz / 1000).max(1)) as u32
    }

    fn client_ts(&self, i: u32, now: u64) -> u32 {
        1000u32
            .wrapping_add(i.wrapping_mul(7919))
            .wrapping_add(self.ms(now))
    }

    fn replica_ts(&self, r: usize, now: u64) -> u32 {
        TS_BASE[r].wrapping_add(self.ms(now))
    }

    /// Whether replica `r` is dead (the primary after the failure).
    fn dead(&self, r: usize) -> bool {
        r == 0 && self.failed
    }

    fn run(&mut self, link: &mut Link) -> Result<()> {
        let hz = self.hz;
        self.t0 = lcore::tsc();
        let settle_end = self.t0 + self.ticks(Duration::from_secs_f64(self.a.settle));
        // Handshakes get 10 s at most; then the phase runs with what is established.
        let hs_deadline = settle_end + 10 * hz;
        let mut rx: Burst<Mbuf, BURST> = Burst::new();
        let mut phase_end = u64::MAX;
        let mut prev = lcore::tsc();
        let mut prev_idle = false;
        loop {
            let now = lcore::tsc();
            if self.start != 0 && now < self.send_end {
                let pass = now - prev;
                self.loop_ticks += pass;
                if prev_idle {
                    self.idle_ticks += pass;
                }
                if pass > self.ticks(LONG_PASS) {
                    self.long_passes += 1;
                    self.long_pass_ticks += pass;
                    self.longest_pass = self.longest_pass.max(pass);
                }
            }
            prev = now;
            prev_idle = true;
            if self.start == 0 {
                if now >= settle_end {
                    let all = self.c.established == u64::from(self.a.conns);
                    if all || now >= hs_deadline {
                        if self.c.established == 0 {
                            bail!(
                                "no connection established in 10 s (see the device's log); \
                                 handshake resets {}",
                                self.c.handshake_resets
                            );
                        }
                        self.start = now;
                        self.send_end = now + self.ticks(Duration::from_secs_f64(self.a.seconds));
                        phase_end = self.send_end + self.ticks(DRAIN);
                        self.fail_at = self.a.fail_at.map(|d| now + self.ticks(d));
                        self.last_any_byte = now;
                        eprintln!(
                            "tandem-bench: mirror: {} of {} connections established in {:.0} ms",
                            self.c.established,
                            self.a.conns,
                            (now - settle_end) as f64 * 1e3 / hz as f64
                        );
                    }
                }
            } else if now >= phase_end
                || (now >= self.send_end && self.clients.iter().all(|c| c.done == c.reqs))
            {
                break;
            }
            if let Some(f) = self.fail_at {
                if !self.failed && now >= f {
                    self.failed = true;
                    eprintln!(
                        "tandem-bench: mirror: primary fails ({:?})",
                        self.a.fail_kind
                    );
                }
            }
            for side in [0usize, 1] {
                for q in 0..link.rx[side].len() {
                    if link.rx[side][q].rx_burst(&mut rx) == 0 {
                        continue;
                    }
                    prev_idle = false;
                    let now = lcore::tsc();
                    for m in rx.drain() {
                        self.receive(side, m.data(), now, &mut link.io);
                    }
                }
            }
            let now = lcore::tsc();
            self.clients_tick(now, settle_end, &mut link.io);
            for r in 0..2 {
                if !self.dead(r) {
                    for i in 0..self.a.conns as usize {
                        self.replica_tick(r, i, now, &mut link.io);
                    }
                }
            }
            link.io.flush(0);
            link.io.flush(1);
        }
        self.c.tx_dropped = link.io.tx_dropped;
        self.c.frames_sent = link.io.frames_sent;
        Ok(())
    }

    fn receive(&mut self, side: usize, frame: &[u8], now: u64, io: &mut Io) {
        match parse(frame) {
            Frame::ArpRequest {
                target,
                sender_mac,
                sender_ip,
            } => {
                let ours = if side == 0 {
                    packet::is_client(target, self.a.conns)
                } else {
                    (target == self.addrs[0]
                        && !(self.failed && self.a.fail_kind == FailKind::Silence))
                        || target == self.addrs[1]
                };
                if ours {
                    io.arp_reply(side, target, sender_mac, sender_ip);
                    self.c.arp_replies += 1;
                }
            }
            Frame::Tcp(s) if side == 0 => self.client_rx(&s, now, io),
            Frame::Tcp(s) => {
                let Some(r) = self.addrs.iter().position(|&x| x == s.dst) else {
                    self.c.rx_other += 1;
                    return;
                };
                self.replica_rx(r, &s, now, io);
            }
            Frame::Other => self.c.rx_other += 1,
        }
    }

    // ---- clients -------------------------------------------------------------------

    fn client_send(
        &self,
        io: &mut Io,
        i: usize,
        seq: u32,
        flags: TcpFlags,
        opts: &[u8],
        payload: &[u8],
    ) {
        let c = &self.clients[i];
        let spec = TcpBuild {
            src_mac: io.macs[0],
            dst_mac: self.a.dst_mac,
            vlan_tci: None,
            src_ip: c.ip,
            dst_ip: self.a.vip,
            src_port: c.port,
            dst_port: self.a.vip_port,
            seq,
            ack: if flags.contains(TcpFlags::ACK) {
                c.srv_isn.wrapping_add(1).wrapping_add(c.rcv as u32)
            } else {
                0
            },
            flags,
            window: WINDOW,
            ttl: 64,
            options: opts,
            payload,
        };
        io.tcp(0, &spec, None);
    }

    fn client_syn(&mut self, i: usize, now: u64, io: &mut Io) {
        let ts = self.client_ts(i as u32, now);
        let o = syn_opts(ts, 0);
        let isn = self.clients[i].isn;
        self.client_send(io, i, isn, TcpFlags::SYN, o.as_bytes(), &[]);
        let c = &mut self.clients[i];
        c.state = CState::SynSent;
        c.progress = now;
    }

    fn client_ack(&self, i: usize, now: u64, io: &mut Io) {
        let c = &self.clients[i];
        let o = ts_opts(self.client_ts(i as u32, now), c.ts_recent);
        let seq = c.isn.wrapping_add(1).wrapping_add(c.snd_nxt as u32);
        self.client_send(io, i, seq, TcpFlags::ACK, o.as_bytes(), &[]);
    }

    /// Sends client bytes `from .. to` (request-aligned segments).
    fn client_data(&mut self, i: usize, from: u64, to: u64, now: u64, io: &mut Io) {
        let rs = self.a.request_size as u64;
        let mut off = from;
        while off < to {
            let end = ((off / rs + 1) * rs).min(to);
            let n = (end - off) as usize;
            let mut buf = std::mem::take(&mut io.scratch);
            for (j, b) in buf[..n].iter_mut().enumerate() {
                let o = off + j as u64;
                *b = req_byte(i as u32, o / rs, o % rs);
            }
            let c = &self.clients[i];
            let o = ts_opts(self.client_ts(i as u32, now), c.ts_recent);
            let seq = c.isn.wrapping_add(1).wrapping_add(off as u32);
            self.client_send(
                io,
                i,
                seq,
                TcpFlags::ACK | TcpFlags::PSH,
                o.as_bytes(),
                &buf[..n],
            );
            io.scratch = buf;
            off = end;
        }
    }

    fn clients_tick(&mut self, now: u64, settle_end: u64, io: &mut Io) {
        let rs = self.a.request_size as u64;
        let depth = u64::from(self.a.depth);
        for i in 0..self.clients.len() {
            match self.clients[i].state {
                CState::Idle => {
                    if now >= settle_end {
                        self.client_syn(i, now, io);
                    }
                }
                CState::SynSent => {
                    if now - self.clients[i].progress > self.rto {
                        self.c.syn_retrans += 1;
                        self.client_syn(i, now, io);
                    }
                }
                CState::Established => {
                    let c = &self.clients[i];
                    // Retransmission: nothing acked or answered for an RTO.
                    let waiting = c.snd_una < c.snd_nxt || c.done < c.reqs;
                    if waiting && now - c.progress > self.rto {
                        let (from, to) = (c.snd_una, c.snd_nxt);
                        self.c.client_retrans += 1;
                        self.clients[i].progress = now;
                        if from < to {
                            self.client_data(i, from, to, now, io);
                        } else {
                            // Requests all acked, response missing: a duplicate ack asks
                            // the replicas (through Tandem) to resend.
                            self.client_ack(i, now, io);
                        }
                    }
                    if self.start != 0 && now < self.send_end {
                        let c = &self.clients[i];
                        if c.reqs - c.done < depth {
                            let k = c.reqs;
                            let from = k * rs;
                            {
                                let c = &mut self.clients[i];
                                c.sent_at[(k % depth) as usize] = now;
                                c.reqs += 1;
                                c.snd_nxt = c.reqs * rs;
                                if c.snd_una == from {
                                    c.progress = now;
                                }
                            }
                            self.c.requests_sent += 1;
                            self.client_data(i, from, from + rs, now, io);
                        }
                    }
                }
                CState::Reset => {}
            }
        }
    }

    fn client_rx(&mut self, s: &Seg, now: u64, io: &mut Io) {
        if s.src != self.a.vip || s.sport != self.a.vip_port {
            self.c.rx_other += 1;
            return;
        }
        let Some(&ci) = self.index.get(&(s.dst, s.dport)) else {
            self.c.rx_other += 1;
            return;
        };
        let i = ci as usize;
        let state = self.clients[i].state;
        if s.flags.contains(TcpFlags::RST) {
            match state {
                CState::SynSent => {
                    // Refused during the handshake (no live replica yet): retry after RTO.
                    self.c.handshake_resets += 1;
                    self.clients[i].progress = now;
                }
                CState::Established => {
                    self.c.client_resets += 1;
                    self.clients[i].state = CState::Reset;
                    eprintln!(
                        "tandem-bench: mirror: connection {i} reset at {:.3} s",
                        self.rel_s(now)
                    );
                }
                _ => {}
            }
            return;
        }
        if let Some((tsval, _)) = s.ts {
            let c = &mut self.clients[i];
            if let Some(last) = c.last_tsval {
                if seq_after(last, tsval) {
                    self.c.ts_backwards += 1;
                }
            }
            if c.last_tsval.is_none_or(|l| !seq_after(l, tsval)) {
                c.last_tsval = Some(tsval);
                c.ts_recent = tsval;
            }
        }
        match state {
            CState::SynSent
                if s.flags.contains(TcpFlags::SYN | TcpFlags::ACK)
                    && s.ack == self.clients[i].isn.wrapping_add(1) =>
            {
                let c = &mut self.clients[i];
                c.srv_isn = s.seq;
                c.state = CState::Established;
                c.progress = now;
                self.c.established += 1;
                self.client_ack(i, now, io);
            }
            CState::Established => {
                if s.flags.contains(TcpFlags::SYN) {
                    // Our ACK of the SYN-ACK was lost: acknowledge again.
                    self.client_ack(i, now, io);
                    return;
                }
                self.client_established_rx(i, s, now, io);
            }
            _ => {}
        }
    }

    fn rel_s(&self, now: u64) -> f64 {
        now.saturating_sub(self.start) as f64 / self.hz as f64
    }

    fn bucket(&self, now: u64) -> Option<usize> {
        if self.start == 0 || now < self.start {
            return None;
        }
        let b =
            (u128::from(now - self.start) * 1_000_000_000 / u128::from(self.hz)) as u64 / BUCKET_NS;
        usize::try_from(b).ok().filter(|&b| b < self.tl_bytes.len())
    }

    fn client_established_rx(&mut self, i: usize, s: &Seg, now: u64, io: &mut Io) {
        let rs = self.a.request_size as u64;
        let ss = self.a.response_size as u64;
        let depth = u64::from(self.a.depth);
        if s.flags.contains(TcpFlags::ACK) {
            let c = &mut self.clients[i];
            let una_seq = c.isn.wrapping_add(1).wrapping_add(c.snd_una as u32);
            let d = s.ack.wrapping_sub(una_seq) as i32;
            if d > 0 && c.snd_una + d as u64 <= c.reqs * rs {
                c.snd_una += d as u64;
                c.progress = now;
                if c.snd_nxt < c.snd_una {
                    c.snd_nxt = c.snd_una;
                }
            }
        }
        if s.flags.contains(TcpFlags::FIN) {
            self.c.client_fins += 1;
        }
        if s.payload.is_empty() {
            return;
        }
        let c = &self.clients[i];
        let rcv_seq = c.srv_isn.wrapping_add(1).wrapping_add(c.rcv as u32);
        let d = s.seq.wrapping_sub(rcv_seq) as i32;
        if d > 0 {
            self.c.client_ooo += 1;
            self.client_ack(i, now, io);
            return;
        }
        let skip = d.unsigned_abs() as usize;
        if skip >= s.payload.len() {
            self.c.client_dup += 1;
            self.client_ack(i, now, io);
            return;
        }
        let new = &s.payload[skip..];
        // Only bytes of requests already sent can be expected.
        let limit = c.reqs * ss;
        let n = (new.len() as u64).min(limit.saturating_sub(c.rcv)) as usize;
        let base = c.rcv;
        let mut errors = 0u64;
        for (j, &b) in new[..n].iter().enumerate() {
            let o = base + j as u64;
            if b != resp_byte(i as u32, o / ss, o % ss) {
                errors += 1;
            }
        }
        // Bytes past what was asked for are errors too.
        errors += (new.len() - n) as u64;
        if errors > 0 && self.c.byte_errors == 0 {
            eprintln!(
                "tandem-bench: mirror: connection {i}: {errors} wrong bytes at offset {base} \
                 ({:.3} s)",
                self.rel_s(now)
            );
        }
        self.c.byte_errors += errors;
        let from_backup = s.ident & 0x8000 != 0;
        let after_fail = self.failed;
        let takeover = after_fail && from_backup;
        let first_takeover = takeover && self.first_backup_byte_after_fail.is_none();
        if takeover && self.clients[i].fail_gap == 0 {
            let c = &mut self.clients[i];
            c.fail_gap = (now - c.last_byte.max(self.start)).max(1);
        }
        {
            let c = &mut self.clients[i];
            c.rcv += n as u64;
            c.progress = now;
            if after_fail {
                if c.first_byte_after_fail == 0 {
                    c.first_byte_after_fail = now;
                }
            } else {
                c.last_byte_before_fail = now;
            }
            c.last_byte = now;
        }
        self.c.client_bytes_rx += n as u64;
        if from_backup {
            self.c.bytes_from_backup += n as u64;
            if !after_fail {
                self.c.bytes_from_backup_before_fail += n as u64;
            }
        }
        if after_fail {
            if self.first_byte_after_fail.is_none() {
                self.first_byte_after_fail = Some(now);
            }
            if from_backup && self.first_backup_byte_after_fail.is_none() {
                self.first_backup_byte_after_fail = Some(now);
            }
        } else {
            self.last_byte_before_fail = now;
        }
        if self.start != 0 {
            let gap = now.saturating_sub(self.last_any_byte);
            if gap > self.max_gap {
                self.max_gap = gap;
                self.max_gap_at = self.last_any_byte;
            }
            if first_takeover {
                self.fail_gap = gap;
                self.fail_gap_at = self.last_any_byte;
            }
            self.last_any_byte = now;
        }
        let bucket = self.bucket(now);
        if let Some(b) = bucket {
            self.tl_bytes[b] += n as u64;
            if from_backup {
                self.tl_backup[b] += n as u64;
            }
        }
        // Requests completed by these bytes.
        loop {
            let c = &mut self.clients[i];
            if c.done >= c.reqs || c.rcv < (c.done + 1) * ss {
                break;
            }
            let sent = c.sent_at[(c.done % depth) as usize];
            c.done += 1;
            self.c.requests_done += 1;
            if self.start != 0 && sent >= self.start {
                let ns = (u128::from(now - sent) * 1_000_000_000 / u128::from(self.hz)) as u64;
                self.hist.saturating_record(ns.max(1));
            }
            if let Some(b) = bucket {
                self.tl_reqs[b] += 1;
            }
        }
        self.client_ack(i, now, io);
    }

    // ---- replicas ------------------------------------------------------------------

    // The segment's fields, spelled out: a struct for them would only rename TcpBuild.
    #[allow(clippy::too_many_arguments)]
    fn replica_send(
        &self,
        io: &mut Io,
        r: usize,
        i: usize,
        seq: u32,
        flags: TcpFlags,
        opts: &[u8],
        payload: &[u8],
    ) {
        let c = &self.clients[i];
        let rep = &self.reps[r][i];
        let spec = TcpBuild {
            src_mac: io.macs[1],
            dst_mac: self.inside_mac,
            vlan_tci: None,
            src_ip: self.addrs[r],
            dst_ip: c.ip,
            src_port: self.a.vip_port,
            dst_port: c.port,
            seq,
            ack: rep.client_isn.wrapping_add(1).wrapping_add(rep.rcv as u32),
            flags,
            window: WINDOW,
            ttl: 64,
            options: opts,
            payload,
        };
        io.tcp(1, &spec, Some(r));
    }

    /// Sends response bytes `from .. to` of replica `r` on connection `i`.
    fn replica_data(&mut self, r: usize, i: usize, from: u64, to: u64, now: u64, io: &mut Io) {
        let ss = self.a.response_size as u64;
        let mut off = from;
        while off < to {
            let n = ((to - off) as usize).min(SEG_PAYLOAD);
            let mut buf = std::mem::take(&mut io.scratch);
            let flip = if r == 1 && self.a.diverge_backup {
                0x55
            } else {
                0
            };
            for (j, b) in buf[..n].iter_mut().enumerate() {
                let o = off + j as u64;
                *b = resp_byte(i as u32, o / ss, o % ss) ^ flip;
            }
            let rep = &self.reps[r][i];
            let o = ts_opts(self.replica_ts(r, now), rep.ts_recent);
            let seq = rep.isn.wrapping_add(1).wrapping_add(off as u32);
            self.replica_send(
                io,
                r,
                i,
                seq,
                TcpFlags::ACK | TcpFlags::PSH,
                o.as_bytes(),
                &buf[..n],
            );
            io.scratch = buf;
            off += n as u64;
        }
    }

    fn replica_ack(&self, r: usize, i: usize, now: u64, io: &mut Io) {
        let rep = &self.reps[r][i];
        let o = ts_opts(self.replica_ts(r, now), rep.ts_recent);
        let seq = rep.isn.wrapping_add(1).wrapping_add(rep.snd_nxt as u32);
        self.replica_send(io, r, i, seq, TcpFlags::ACK, o.as_bytes(), &[]);
    }

    fn replica_synack(&self, r: usize, i: usize, now: u64, io: &mut Io) {
        let rep = &self.reps[r][i];
        let o = syn_opts(self.replica_ts(r, now), rep.ts_recent);
        self.replica_send(
            io,
            r,
            i,
            rep.isn,
            TcpFlags::SYN | TcpFlags::ACK,
            o.as_bytes(),
            &[],
        );
    }

    /// Sends what the replica's application has written and the window allows; resends
    /// after an RTO without progress.
    fn replica_tick(&mut self, r: usize, i: usize, now: u64, io: &mut Io) {
        let rep = &self.reps[r][i];
        match rep.state {
            RState::Closed => {}
            RState::SynRcvd => {
                if now - rep.progress > self.rto {
                    self.c.replica_retrans[r] += 1;
                    self.reps[r][i].progress = now;
                    self.replica_synack(r, i, now, io);
                }
            }
            RState::Established => {
                if rep.snd_una < rep.snd_nxt && now - rep.progress > self.rto {
                    self.c.replica_retrans[r] += 1;
                    let rep = &mut self.reps[r][i];
                    rep.progress = now;
                    rep.snd_nxt = rep.snd_una;
                }
                let rep = &self.reps[r][i];
                let to = rep.avail.min(rep.snd_una + MAX_IN_FLIGHT);
                if rep.snd_nxt < to {
                    let from = rep.snd_nxt;
                    if rep.snd_una == rep.snd_nxt {
                        self.reps[r][i].progress = now;
                    }
                    self.reps[r][i].snd_nxt = to;
                    self.replica_data(r, i, from, to, now, io);
                }
            }
        }
    }

    /// Answers a segment to a dead primary like its kernel would: RST.
    fn dead_rst(&mut self, s: &Seg, io: &mut Io) {
        if s.flags.contains(TcpFlags::RST) {
            return;
        }
        let (seq, ack, flags) = if s.flags.contains(TcpFlags::ACK) {
            (s.ack, 0, TcpFlags::RST)
        } else {
            let len = s.payload.len() as u32 + u32::from(s.flags.contains(TcpFlags::SYN));
            (0, s.seq.wrapping_add(len), TcpFlags::RST | TcpFlags::ACK)
        };
        let spec = TcpBuild {
            src_mac: io.macs[1],
            dst_mac: s.src_mac,
            vlan_tci: None,
            src_ip: s.dst,
            dst_ip: s.src,
            src_port: s.dport,
            dst_port: s.sport,
            seq,
            ack,
            flags,
            window: 0,
            ttl: 64,
            options: &[],
            payload: &[],
        };
        io.tcp(1, &spec, Some(0));
        self.c.rsts_sent_by_failed_primary += 1;
    }

    fn replica_rx(&mut self, r: usize, s: &Seg, now: u64, io: &mut Io) {
        self.inside_mac = s.src_mac;
        if self.dead(r) {
            if self.a.fail_kind == FailKind::Rst {
                self.dead_rst(s, io);
            }
            return;
        }
        let Some(&ci) = self.index.get(&(s.src, s.sport)) else {
            self.probe(r, s, io);
            return;
        };
        let i = ci as usize;
        if s.dport != self.a.vip_port {
            self.c.replica_unknown[r] += 1;
            return;
        }
        if s.flags.contains(TcpFlags::RST) {
            self.c.replica_rsts_rx[r] += 1;
            self.reps[r][i].state = RState::Closed;
            return;
        }
        if let Some((tsval, tsecr)) = s.ts {
            // The client's echo, translated into this replica's clock, is never ahead of it.
            if s.flags.contains(TcpFlags::ACK) && seq_after(tsecr, self.replica_ts(r, now)) {
                self.c.replica_ts_errors[r] += 1;
            }
            let rep = &mut self.reps[r][i];
            if !seq_after(rep.ts_recent, tsval) {
                rep.ts_recent = tsval;
            }
        }
        if s.flags.contains(TcpFlags::SYN) {
            let rep = &mut self.reps[r][i];
            if rep.state == RState::Closed {
                rep.state = RState::SynRcvd;
                rep.client_isn = s.seq;
                rep.rcv = 0;
                rep.snd_una = 0;
                rep.snd_nxt = 0;
                rep.avail = 0;
            }
            rep.progress = now;
            if rep.state == RState::SynRcvd {
                self.replica_synack(r, i, now, io);
            }
            return;
        }
        if !s.flags.contains(TcpFlags::ACK) {
            self.c.replica_unknown[r] += 1;
            return;
        }
        {
            let rep = &mut self.reps[r][i];
            if rep.state == RState::SynRcvd {
                if s.ack != rep.isn.wrapping_add(1) {
                    self.c.replica_unknown[r] += 1;
                    return;
                }
                rep.state = RState::Established;
            }
            if rep.state != RState::Established {
                self.c.replica_unknown[r] += 1;
                return;
            }
            let una_seq = rep.isn.wrapping_add(1).wrapping_add(rep.snd_una as u32);
            let d = s.ack.wrapping_sub(una_seq) as i32;
            if d > 0 && rep.snd_una + d as u64 <= rep.avail {
                rep.snd_una += d as u64;
                rep.progress = now;
                if rep.snd_nxt < rep.snd_una {
                    rep.snd_nxt = rep.snd_una;
                }
            }
        }
        if s.payload.is_empty() {
            return;
        }
        let rs = self.a.request_size as u64;
        let ss = self.a.response_size as u64;
        let rep = &self.reps[r][i];
        let rcv_seq = rep.client_isn.wrapping_add(1).wrapping_add(rep.rcv as u32);
        let d = s.seq.wrapping_sub(rcv_seq) as i32;
        if d > 0 {
            self.c.replica_ooo[r] += 1;
            self.replica_ack(r, i, now, io);
            return;
        }
        let skip = d.unsigned_abs() as usize;
        if skip >= s.payload.len() {
            self.replica_ack(r, i, now, io);
            return;
        }
        let new = &s.payload[skip..];
        let base = rep.rcv;
        let mut errors = 0;
        for (j, &b) in new.iter().enumerate() {
            let o = base + j as u64;
            if b != req_byte(i as u32, o / rs, o % rs) {
                errors += 1;
            }
        }
        self.c.replica_byte_errors[r] += errors;
        let rep = &mut self.reps[r][i];
        rep.rcv += new.len() as u64;
        // The application answers every complete request.
        rep.avail = (rep.rcv / rs) * ss;
        if rep.snd_nxt < rep.avail {
            self.replica_tick(r, i, now, io);
        } else {
            self.replica_ack(r, i, now, io);
        }
    }

    /// A health probe from the device (a SYN from an address that is no client): SYN-ACK.
    fn probe(&mut self, r: usize, s: &Seg, io: &mut Io) {
        if !s.flags.contains(TcpFlags::SYN) || s.flags.contains(TcpFlags::ACK) {
            // The device's RST after our SYN-ACK, or anything else: nothing to answer.
            return;
        }
        let o = syn_opts(self.replica_ts(r, lcore::tsc()), 0);
        let spec = TcpBuild {
            src_mac: io.macs[1],
            dst_mac: s.src_mac,
            vlan_tci: None,
            src_ip: s.dst,
            dst_ip: s.src,
            src_port: s.dport,
            dst_port: s.sport,
            seq: ISN_BASE[r] ^ u32::from(s.sport),
            ack: s.seq.wrapping_add(1),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: WINDOW,
            ttl: 64,
            options: o.as_bytes(),
            payload: &[],
        };
        io.tcp(1, &spec, Some(r));
        self.c.probes_answered[r] += 1;
    }

    fn ms_f(&self, ticks: u64) -> f64 {
        ticks as f64 * 1e3 / self.hz as f64
    }

    fn write_results(&self) -> Result<()> {
        let a = self.a;
        let c = &self.c;
        let secs = a.seconds;
        let mut s = String::new();
        let mut kv = |k: &str, v: &dyn std::fmt::Display| {
            let _ = writeln!(s, "{k}={v}");
        };
        kv("label", &a.label);
        kv("conns", &a.conns);
        kv("conns_established", &c.established);
        kv("request_size", &a.request_size);
        kv("response_size", &a.response_size);
        kv("depth", &a.depth);
        kv("seconds", &secs);
        kv("rto_ms", &a.rto_ms);
        kv(
            "fail_at_s",
            &a.fail_at
                .map_or("none".to_string(), |d| format!("{:.3}", d.as_secs_f64())),
        );
        kv("fail_kind", &format!("{:?}", a.fail_kind).to_lowercase());
        kv("tsc_hz", &self.hz);
        kv("requests_sent", &c.requests_sent);
        kv("requests_done", &c.requests_done);
        kv(
            "requests_unfinished",
            &self.clients.iter().map(|c| c.reqs - c.done).sum::<u64>(),
        );
        kv(
            "requests_per_s",
            &format!("{:.0}", c.requests_done as f64 / secs),
        );
        kv("client_bytes_rx", &c.client_bytes_rx);
        kv(
            "client_bytes_per_s",
            &format!("{:.0}", c.client_bytes_rx as f64 / secs),
        );
        kv(
            "client_mbit_per_s",
            &format!("{:.1}", c.client_bytes_rx as f64 * 8.0 / secs / 1e6),
        );
        kv("lat_samples", &self.hist.len());
        if self.hist.is_empty() {
            for k in ["p50", "p99", "p999", "max"] {
                kv(&format!("lat_{k}_ns"), &"nan");
            }
        } else {
            kv("lat_p50_ns", &self.hist.value_at_quantile(0.5));
            kv("lat_p99_ns", &self.hist.value_at_quantile(0.99));
            kv("lat_p999_ns", &self.hist.value_at_quantile(0.999));
            kv("lat_max_ns", &self.hist.max());
        }
        kv("client_resets", &c.client_resets);
        kv("byte_errors", &c.byte_errors);
        kv("handshake_resets", &c.handshake_resets);
        kv("client_fins", &c.client_fins);
        kv("ts_backwards", &c.ts_backwards);
        kv("client_retransmissions", &c.client_retrans);
        kv("syn_retransmissions", &c.syn_retrans);
        kv("client_out_of_order", &c.client_ooo);
        kv("client_duplicates", &c.client_dup);
        kv("primary_retransmissions", &c.replica_retrans[0]);
        kv("backup_retransmissions", &c.replica_retrans[1]);
        kv("primary_request_byte_errors", &c.replica_byte_errors[0]);
        kv("backup_request_byte_errors", &c.replica_byte_errors[1]);
        kv("primary_out_of_order", &c.replica_ooo[0]);
        kv("backup_out_of_order", &c.replica_ooo[1]);
        kv("primary_rsts_received", &c.replica_rsts_rx[0]);
        kv("backup_rsts_received", &c.replica_rsts_rx[1]);
        kv("primary_ts_errors", &c.replica_ts_errors[0]);
        kv("backup_ts_errors", &c.replica_ts_errors[1]);
        kv("primary_unexpected", &c.replica_unknown[0]);
        kv("backup_unexpected", &c.replica_unknown[1]);
        kv(
            "rsts_sent_by_failed_primary",
            &c.rsts_sent_by_failed_primary,
        );
        kv("primary_probes_answered", &c.probes_answered[0]);
        kv("backup_probes_answered", &c.probes_answered[1]);
        kv("arp_replies", &c.arp_replies);
        kv("rx_other", &c.rx_other);
        kv("bytes_from_backup", &c.bytes_from_backup);
        kv(
            "bytes_from_backup_before_fail",
            &c.bytes_from_backup_before_fail,
        );
        kv("gen_long_passes", &self.long_passes);
        kv(
            "gen_long_pass_total_ms",
            &format!("{:.3}", self.ms_f(self.long_pass_ticks)),
        );
        kv(
            "gen_longest_pass_ms",
            &format!("{:.3}", self.ms_f(self.longest_pass)),
        );
        kv(
            "gen_idle_pct",
            &format!(
                "{:.1}",
                100.0 * self.idle_ticks as f64 / self.loop_ticks.max(1) as f64
            ),
        );
        kv("tx_dropped", &c.tx_dropped);
        kv("frames_sent", &c.frames_sent);
        kv("max_stall_ms", &format!("{:.3}", self.ms_f(self.max_gap)));
        kv(
            "max_stall_start_s",
            &format!(
                "{:.4}",
                self.max_gap_at.saturating_sub(self.start) as f64 / self.hz as f64
            ),
        );
        if let Some(f) = self.fail_at.filter(|_| self.failed) {
            let after = self.first_byte_after_fail;
            kv("fail_stall_ms", &format!("{:.3}", self.ms_f(self.fail_gap)));
            kv(
                "fail_stall_start_rel_ms",
                &format!(
                    "{:.3}",
                    self.ms_f(self.fail_gap_at.saturating_sub(self.start))
                ),
            );
            kv(
                "fail_last_byte_before_to_first_after_ms",
                &after.map_or("never".to_string(), |t| {
                    format!(
                        "{:.3}",
                        self.ms_f(t.saturating_sub(self.last_byte_before_fail))
                    )
                }),
            );
            kv(
                "fail_to_first_byte_ms",
                &after.map_or("never".to_string(), |t| {
                    format!("{:.3}", self.ms_f(t.saturating_sub(f)))
                }),
            );
            kv(
                "fail_to_first_backup_byte_ms",
                &self
                    .first_backup_byte_after_fail
                    .map_or("never".to_string(), |t| {
                        format!("{:.3}", self.ms_f(t.saturating_sub(f)))
                    }),
            );
            // Per connection: the gap that ended with its first byte from the backup.
            let mut worst = 0u64;
            let mut never = 0u64;
            for cl in &self.clients {
                if cl.state != CState::Established {
                    continue;
                }
                if cl.fail_gap == 0 {
                    never += 1;
                } else {
                    worst = worst.max(cl.fail_gap);
                }
            }
            kv(
                "fail_conn_stall_max_ms",
                &format!("{:.3}", self.ms_f(worst)),
            );
            kv("fail_conns_without_backup_bytes", &never);
            kv(
                "fail_at_rel_ms",
                &format!("{:.3}", self.ms_f(f.saturating_sub(self.start))),
            );
        }
        let base = a.out_dir.join(&a.prefix);
        write(&base.with_extension("txt"), &s)?;
        let mut csv = String::from("ms,client_bytes,backup_bytes,requests_done\n");
        let last = self
            .tl_bytes
            .iter()
            .rposition(|&b| b > 0)
            .map_or(0, |p| p + 1);
        for b in 0..last {
            let _ = writeln!(
                csv,
                "{b},{},{},{}",
                self.tl_bytes[b], self.tl_backup[b], self.tl_reqs[b]
            );
        }
        write(&base.with_extension("timeline.csv"), &csv)?;
        let mut h = String::from("percentile,latency_ns,count\n");
        if !self.hist.is_empty() {
            for v in self.hist.iter_quantiles(5) {
                let _ = writeln!(
                    h,
                    "{:.6},{},{}",
                    v.quantile_iterated_to() * 100.0,
                    v.value_iterated_to(),
                    v.count_since_last_iteration()
                );
            }
        }
        write(&base.with_extension("hist.csv"), &h)?;
        eprintln!(
            "tandem-bench: mirror {}: {} conns, {:.0} req/s, {:.1} Mbit/s, p50 {} us p99 {} us, \
             resets {}, byte errors {}, retrans {}/{}/{}",
            a.prefix,
            c.established,
            c.requests_done as f64 / secs,
            c.client_bytes_rx as f64 * 8.0 / secs / 1e6,
            self.hist.value_at_quantile(0.5) / 1000,
            self.hist.value_at_quantile(0.99) / 1000,
            c.client_resets,
            c.byte_errors,
            c.client_retrans,
            c.replica_retrans[0],
            c.replica_retrans[1],
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(
            parse_duration("2500ms").unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn patterns_differ_between_requests_and_connections() {
        // A byte from the neighbouring request, connection or offset must not pass.
        let mut same = 0;
        for c in 0..8 {
            for k in 0..8 {
                for j in 0..64 {
                    let v = resp_byte(c, k, j);
                    same += u32::from(v == resp_byte(c, k + 1, j));
                    same += u32::from(v == resp_byte(c + 1, k, j));
                    same += u32::from(v == resp_byte(c, k, j + 1));
                }
            }
        }
        assert!(same < 8 * 8 * 64 * 3 / 50, "{same} collisions");
        assert_ne!(req_byte(1, 2, 3), req_byte(1, 3, 3));
    }
}
