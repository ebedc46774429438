//! The simulated network: a simulated clock, a smoltcp device whose frames are moved by
//! the event loop, a host (one smoltcp interface with one TCP socket), and lossy links.

use std::cell::Cell;
use std::collections::VecDeque;
use std::net::Ipv4Addr;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr};

pub const US: u64 = 1_000;
pub const MS: u64 = 1_000_000;

thread_local! {
    /// Simulated time in nanoseconds, for the TSval generators (smoltcp takes a plain
    /// `fn() -> u32`). Each test thread runs its own simulation.
    static NOW_NS: Cell<u64> = const { Cell::new(0) };
}

/// Sets the simulated clock the TSval generators read.
pub fn set_clock(ns: u64) {
    NOW_NS.with(|c| c.set(ns));
}

/// A millisecond TSval clock (as Linux's) with a constant offset.
fn ts_clock<const OFFSET: u32>() -> u32 {
    let ms = NOW_NS.with(Cell::get) / MS;
    (ms as u32).wrapping_add(OFFSET)
}

/// TSval generators with different offsets; the last wraps 2^32 a few seconds in.
pub const TS_CLOCKS: [fn() -> u32; 4] = [
    ts_clock::<0>,
    ts_clock::<0x4000_0000>,
    ts_clock::<123_456_789>,
    ts_clock::<0xffff_e000>,
];

/// smoltcp time for a simulated time.
pub fn instant(ns: u64) -> Instant {
    Instant::from_micros((ns / US) as i64)
}

/// A device whose queues the event loop fills and drains.
pub struct Nic {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: Vec<Vec<u8>>,
    /// Ethernet frame size limit (IP MTU + 14).
    pub frame_mtu: usize,
}

pub struct RxTok(Vec<u8>);
pub struct TxTok<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for RxTok {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        self.0.push(buf);
        r
    }
}

impl Device for Nic {
    type RxToken<'a> = RxTok;
    type TxToken<'a> = TxTok<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.frame_mtu;
        // Checksums are computed and verified: a bad incremental update in the engine
        // makes the receiving stack drop the segment.
        caps
    }

    fn receive(&mut self, _t: Instant) -> Option<(RxTok, TxTok<'_>)> {
        let f = self.rx.pop_front()?;
        Some((RxTok(f), TxTok(&mut self.tx)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<TxTok<'_>> {
        Some(TxTok(&mut self.tx))
    }
}

/// How a host's TCP socket is set up.
#[derive(Clone, Copy, Debug)]
pub struct SockParams {
    pub rx_buf: usize,
    pub tx_buf: usize,
    pub ip_mtu: usize,
    /// Index into [`TS_CLOCKS`], `None`: no timestamps.
    pub ts_clock: Option<usize>,
    pub ack_delay_us: Option<u64>,
    pub nagle: bool,
    /// smoltcp's random seed (ISNs, ports).
    pub stack_seed: u64,
}

/// One smoltcp host with one TCP socket.
pub struct Host {
    pub nic: Nic,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub tcp: SocketHandle,
}

impl Host {
    pub fn new(mac: [u8; 6], addr: Ipv4Addr, gateway: Ipv4Addr, p: &SockParams, now: u64) -> Host {
        let mut nic = Nic {
            rx: VecDeque::new(),
            tx: Vec::new(),
            frame_mtu: p.ip_mtu + 14,
        };
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        cfg.random_seed = p.stack_seed;
        let mut iface = Interface::new(cfg, &mut nic, instant(now));
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(addr.into(), 24)).expect("one address");
        });
        iface
            .routes_mut()
            .add_default_ipv4_route(gateway)
            .expect("default route");
        let mut sock = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; p.rx_buf]),
            tcp::SocketBuffer::new(vec![0; p.tx_buf]),
        );
        sock.set_tsval_generator(p.ts_clock.map(|i| TS_CLOCKS[i]));
        sock.set_ack_delay(p.ack_delay_us.map(Duration::from_micros));
        sock.set_nagle_enabled(p.nagle);
        let mut sockets = SocketSet::new(Vec::new());
        let tcp = sockets.add(sock);
        Host {
            nic,
            iface,
            sockets,
            tcp,
        }
    }

    pub fn sock(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(self.tcp)
    }

    pub fn state(&self) -> tcp::State {
        self.sockets.get::<tcp::Socket>(self.tcp).state()
    }

    pub fn poll(&mut self, now: u64) {
        self.iface
            .poll(instant(now), &mut self.nic, &mut self.sockets);
    }

    /// When smoltcp next wants to be polled (ns), `None` for never.
    pub fn poll_at(&mut self, now: u64) -> Option<u64> {
        self.iface
            .poll_at(instant(now), &self.sockets)
            .map(|t| (t.total_micros().max(0) as u64) * US)
    }
}

/// Impairments of one direction of one link.
#[derive(Clone, Copy, Debug)]
pub struct LinkParams {
    pub delay_ns: u64,
    pub jitter_ns: u64,
    pub loss: f64,
    pub dup: f64,
    pub reorder: f64,
    pub reorder_extra_ns: u64,
}

impl LinkParams {
    pub fn draw(rng: &mut ChaCha8Rng, lossy: bool, slow: bool) -> LinkParams {
        let delay_ns = if slow {
            rng.random_range(500 * US..3 * MS)
        } else {
            rng.random_range(20 * US..200 * US)
        };
        LinkParams {
            delay_ns,
            jitter_ns: rng.random_range(0..50 * US),
            loss: if lossy {
                rng.random_range(0.0..0.02)
            } else {
                0.0
            },
            dup: if lossy && rng.random_bool(0.3) {
                0.005
            } else {
                0.0
            },
            reorder: rng.random_range(0.0..0.05),
            reorder_extra_ns: rng.random_range(50 * US..300 * US),
        }
    }

    /// Delivery times of one frame sent at `now` on a link whose last in-order frame
    /// arrives at `*tail`: none (lost), one, or two (duplicated). The link is FIFO except
    /// for the frames picked for reordering, which are held back and overtaken.
    pub fn fate(&self, rng: &mut ChaCha8Rng, now: u64, tail: &mut u64) -> [Option<u64>; 2] {
        let first = self.one(rng, now, tail);
        let second = if rng.random_bool(self.dup) {
            self.one(rng, now, tail)
        } else {
            None
        };
        [first, second]
    }

    fn one(&self, rng: &mut ChaCha8Rng, now: u64, tail: &mut u64) -> Option<u64> {
        if rng.random_bool(self.loss) {
            return None;
        }
        let at = now + self.delay_ns + rng.random_range(0..=self.jitter_ns);
        if rng.random_bool(self.reorder) {
            return Some(at + rng.random_range(0..=self.reorder_extra_ns));
        }
        // In order: never before the previous in-order frame (1 µs per frame).
        let at = at.max(*tail + US);
        *tail = at;
        Some(at)
    }
}
