//! DPDK integration test: the EAL can be initialised once per process, so every step
//! runs, in order, inside the one test of this binary.
//!
//! Runs without hugepages and without PCI devices: `--no-huge -m 256 --no-pci` and two
//! virtual ports, `net_ring0` (transmit loops back to receive on the same queue, so bytes
//! can be checked end to end) and `net_null0` (receive makes 64-byte packets, transmit
//! frees them). Lcores 0 and 1 go on the first two CPUs the process may use. Works as
//! root and as an ordinary user (DPDK then keeps its runtime files under
//! `$XDG_RUNTIME_DIR/dpdk` or `/tmp/dpdk`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tandem_dpdk::{
    lcore, ring, Burst, Eal, Mbuf, Mempool, Port, PortConfig, DEFAULT_DATA_ROOM, HEADROOM,
};

/// A recognisable Ethernet frame: broadcast destination, a local source MAC, IPv4
/// ethertype, then `len - 14` bytes counting up from `seed`.
fn frame(seed: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, seed]);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend((0..len - 14).map(|i| seed.wrapping_add(i as u8)));
    f
}

/// An mbuf holding `bytes`.
fn mbuf_with(pool: &Mempool, bytes: &[u8]) -> Mbuf {
    let mut m = pool.alloc().expect("pool has room");
    let room = m
        .append(u16::try_from(bytes.len()).expect("frame fits u16"))
        .expect("tailroom");
    room.copy_from_slice(bytes);
    m
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data, valid when zeroed; sched_getaffinity fills it for
    // the calling thread and CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Lcores 0 (main) and 1 (worker) on the first two CPUs this process may use, or both on
/// the same one if it has only one; no hugepages, no PCI, two virtual ports.
fn eal_args() -> Vec<String> {
    let cpus = allowed_cpus();
    let (a, b) = (cpus[0], *cpus.get(1).unwrap_or(&cpus[0]));
    let lcores = format!("0@{a},1@{b}");
    let prefix = format!("tandem-test-{}", std::process::id());
    [
        "--lcores",
        &lcores,
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-telemetry",
        "--file-prefix",
        &prefix,
        "--vdev",
        "net_ring0",
        "--vdev",
        "net_null0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn dpdk_end_to_end() {
    assert!(Mempool::new_pktmbuf("early", 63, 0, DEFAULT_DATA_ROOM, None).is_err());

    // DPDK's log lines reach a callback, the EAL's first ones included.
    let (log_tx, log_rx) = std::sync::mpsc::channel::<String>();
    let log_tx = std::sync::Mutex::new(log_tx);
    tandem_dpdk::log::redirect(move |l| {
        if let Ok(tx) = log_tx.lock() {
            let _ = tx.send(l.to_owned());
        }
    })
    .expect("redirect");
    let eal = Eal::init(&eal_args()).expect("rte_eal_init");
    eprintln!("{} up", tandem_dpdk::version());
    let first = log_rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("a log line from the EAL");
    assert!(first.starts_with("EAL: "), "{first}");
    let again = Eal::init(&eal_args()).expect_err("a second init must fail");
    assert_eq!(again.errno(), libc::EALREADY);

    check_lcores();
    // The capture server registers (and unregisters) on a primary without hugepages
    // too; only a capturer could not attach there.
    tandem_dpdk::pdump::init().expect("rte_pdump_init");
    let pool =
        Mempool::new_pktmbuf("test_pool", 2047, 32, DEFAULT_DATA_ROOM, None).expect("mempool");
    assert_eq!(pool.in_use(), 0);
    assert_eq!(Mempool::lookup("test_pool").expect("lookup"), pool);
    assert_eq!(pool.name(), "test_pool");

    check_mbuf_ops(&pool);
    check_ring_port(&pool);
    check_null_port(&pool);
    check_ring_between_lcores(&pool);
    check_mpsc_messages();
    check_launch_rules();

    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
    tandem_dpdk::pdump::uninit().expect("rte_pdump_uninit");
    let runtime_dir = eal.runtime_dir();
    assert!(runtime_dir.ends_with(format!("tandem-test-{}", std::process::id())));
    // SAFETY: every handle (mbufs, bursts, ring ends, ports, queues) has been dropped
    // above; only the Copy pool handle remains, and it is not used after this.
    unsafe { eal.cleanup() }.expect("rte_eal_cleanup");
    assert!(!Eal::is_ready());
    std::fs::remove_dir_all(&runtime_dir).expect("remove the runtime directory");
}

fn check_lcores() {
    assert_eq!(lcore::lcore_id(), Some(0));
    assert_eq!(lcore::main_lcore(), 0);
    assert_eq!(lcore::worker_lcores(), vec![1]);
    assert_eq!(lcore::lcore_count(), 2);
    assert!(lcore::tsc_hz() > 0);
    let t0 = lcore::tsc();
    lcore::delay_us(100);
    assert!(lcore::tsc() > t0);
}

fn check_mbuf_ops(pool: &Mempool) {
    let f = frame(7, 60);
    let mut m = mbuf_with(pool, &f);
    assert_eq!(m.data(), &f[..]);
    assert_eq!(m.len(), 60);
    assert_eq!(m.pkt_len(), 60);
    assert!(m.is_contiguous() && m.linearize());
    assert_eq!(m.headroom(), HEADROOM);
    assert!(m.is_writable());
    m.data_mut().expect("writable")[0] = 0x01;
    assert_eq!(m.data()[0], 0x01);

    // Headers in front, bytes off the front and back.
    m.prepend(4)
        .expect("headroom")
        .copy_from_slice(&[9, 9, 9, 9]);
    assert_eq!(&m.data()[..5], &[9, 9, 9, 9, 0x01]);
    assert!(m.adj(4));
    assert!(m.trim(10));
    assert_eq!(m.len(), 50);
    assert!(!m.trim(51));
    assert!(m.prepend(HEADROOM + 1).is_none());

    // An indirect clone shares the bytes; neither side may write them meanwhile.
    let c = m.clone_indirect(pool).expect("clone");
    assert_eq!(c.data(), m.data());
    assert!(!m.is_writable() && !c.is_writable());
    assert!(m.data_mut().is_none());
    assert!(m.append(1).is_none());
    assert!(!m.set_tx_offload(tandem_dpdk::tx_offload::IPV4, 14, 20, 20));
    // A copy is independent.
    let mut k = Mbuf::copy_from(pool, &c).expect("copy");
    assert!(k.is_writable());
    k.data_mut().expect("writable")[1] = 0xaa;
    assert_ne!(k.data()[1], m.data()[1]);
    drop(c);
    assert!(m.is_writable());
    assert!(m.set_tx_offload(
        tandem_dpdk::tx_offload::IPV4 | tandem_dpdk::tx_offload::IP_CKSUM,
        14,
        20,
        20
    ));
    assert_ne!(m.ol_flags() & tandem_dpdk::tx_offload::IP_CKSUM, 0);

    // Raw round trip.
    let raw = k.into_raw();
    // SAFETY: raw came from into_raw just above and is rebuilt once.
    let k = unsafe { Mbuf::from_raw(raw) };
    assert_eq!(k.data()[1], 0xaa);

    // Bulk allocation is all or nothing and respects the burst's room.
    let mut b: Burst<Mbuf, 16> = Burst::new();
    assert!(pool.alloc_bulk(&mut b, 16));
    assert!(!pool.alloc_bulk(&mut b, 1));
    assert!(b.iter().all(Mbuf::is_empty));
    let in_use = pool.in_use();
    assert!(in_use >= 18);
    drop((m, k, b));
    assert_eq!(pool.in_use(), 0);
}

fn check_ring_port(pool: &Mempool) {
    let mut port = Port::by_name("net_ring0").expect("net_ring0");
    let other = Port::by_name("net_ring0").expect_err("claimed once");
    assert_eq!(other.errno(), libc::EBUSY);
    assert_eq!(
        Port::by_name("no_such_port").expect_err("unknown").errno(),
        libc::ENODEV
    );
    let info = port.info().expect("dev info");
    eprintln!("net_ring0: {info}");
    assert_eq!(info.driver_name, "net_ring");

    let mut setup = port
        .configure(&PortConfig::default(), pool)
        .expect("configure");
    assert_eq!(
        port.configure(&PortConfig::default(), pool)
            .expect_err("configure once")
            .errno(),
        libc::EALREADY
    );
    assert_eq!(setup.rss_hf, setup.rss_hf & info.flow_type_rss_offloads);
    port.start().expect("start");
    assert!(port.link().expect("link").up);
    let mac = port.mac_addr().expect("mac");
    eprintln!("net_ring0 mac {mac:02x?}, setup {setup:?}");

    let mut rxq = setup.rx.remove(0);
    let mut txq = setup.tx.remove(0);
    // The first frame shows up on receive: net_ring loops each queue's tx into its rx.
    let frames: Vec<Vec<u8>> = (0..8u8).map(|i| frame(i, 60 + usize::from(i))).collect();
    let mut out: Burst = Burst::new();
    for f in &frames {
        assert!(out.push(mbuf_with(pool, f)).is_ok());
    }
    assert_eq!(txq.tx_burst(&mut out), 8);
    assert!(out.is_empty());

    let mut got: Burst = Burst::new();
    assert_eq!(rxq.rx_burst(&mut got), 8);
    for (m, f) in got.iter().zip(&frames) {
        assert_eq!(m.data(), &f[..]);
    }
    // Forward them back through, l3fwd style: receive, transmit, drop the refused.
    assert_eq!(txq.tx_burst(&mut got), 8);
    let mut again: Burst<Mbuf, 4> = Burst::new();
    assert_eq!(rxq.rx_burst(&mut again), 4, "only as many as fit");
    assert_eq!(again[3].data(), &frames[3][..]);
    again.clear();
    assert_eq!(rxq.rx_burst(&mut again), 4);
    again.clear();
    assert_eq!(rxq.rx_burst(&mut again), 0);

    let stats = port.stats().expect("stats");
    assert_eq!((stats.ipackets, stats.opackets), (16, 16));
    let xstats = port.xstats().expect("xstats");
    eprintln!("net_ring0 xstats: {xstats:?}");
    if let Some((name, value)) = xstats.iter().find(|(n, _)| n == "rx_good_packets") {
        assert_eq!(port.xstat(name).expect("xstat by name"), *value);
    }
    // What the control core reads from its own thread: the same counters, ethdev's
    // generic ones among them.
    let reader = port.stats_reader();
    let from_thread = std::thread::spawn(move || reader.xstats().expect("xstats by a reader"))
        .join()
        .expect("reader thread");
    assert_eq!(from_thread, xstats);
    for name in [
        "rx_good_packets",
        "rx_missed_errors",
        "rx_errors",
        "tx_errors",
        "rx_mbuf_allocation_errors",
    ] {
        assert!(xstats.iter().any(|(n, _)| n == name), "no {name}");
    }
    let reader = port.stats_reader();
    port.reset_stats().expect("reset");
    assert_eq!(port.stats().expect("stats").ipackets, 0);
    port.close().expect("close");
    // Bursts on a closed port return nothing; its counters cannot be read any more.
    assert_eq!(rxq.rx_burst(&mut again), 0);
    assert_eq!(reader.xstats().expect_err("closed").errno(), libc::ENODEV);
}

fn check_null_port(pool: &Mempool) {
    let mut port = Port::by_name("net_null0").expect("net_null0");
    let info = port.info().expect("dev info");
    eprintln!("net_null0: {info}");
    let conf = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        rx_desc: 256,
        tx_desc: 256,
        promiscuous: true,
        ..PortConfig::default()
    };
    let setup = port.configure(&conf, pool).expect("configure");
    eprintln!(
        "net_null0 rss {:#x} tx offloads {:#x}",
        setup.rss_hf, setup.tx_offloads
    );
    port.start().expect("start");
    let [mut rx0, _rx1] = <[_; 2]>::try_from(setup.rx).expect("two rx queues");
    let mut tx1 = setup.tx.into_iter().nth(1).expect("tx queue 1");

    let mut b: Burst = Burst::new();
    assert_eq!(rx0.rx_burst(&mut b), 32);
    assert!(b.iter().all(|m| m.port() == port.id() && m.len() == 64));
    assert_eq!(pool.in_use(), 32);
    assert_eq!(tx1.tx_burst(&mut b), 32);
    assert_eq!(pool.in_use(), 0, "net_null frees what it sends");
    let stats = port.stats().expect("stats");
    assert_eq!((stats.ipackets, stats.opackets), (32, 32));
    port.stop().expect("stop");
    assert_eq!(rx0.rx_burst(&mut b), 0, "a stopped port receives nothing");
}

fn check_ring_between_lcores(pool: &Mempool) {
    const COUNT: usize = 1000;
    let (mut tx, mut rx) = ring::spsc::<Mbuf>("test_mbufs", 64, None).expect("ring");
    assert_eq!(tx.capacity(), 64);
    let worker = lcore::worker_lcores()[0];
    lcore::launch_on(worker, move || {
        assert_eq!(lcore::lcore_id(), Some(1));
        let deadline = lcore::tsc() + 10 * lcore::tsc_hz();
        let mut seen = 0usize;
        let mut b: Burst = Burst::new();
        while seen < COUNT && lcore::tsc() < deadline {
            rx.dequeue_burst(&mut b);
            for m in b.drain() {
                if m.data() != &frame(seen as u8, 60)[..] {
                    return -1;
                }
                seen += 1;
            }
        }
        seen as i32
    })
    .expect("launch");

    let mut pending: Burst = Burst::new();
    let mut sent = 0usize;
    let deadline = lcore::tsc() + 10 * lcore::tsc_hz();
    while (sent < COUNT || !pending.is_empty()) && lcore::tsc() < deadline {
        while sent < COUNT && !pending.is_full() {
            let _ = pending.push(mbuf_with(pool, &frame(sent as u8, 60)));
            sent += 1;
        }
        tx.enqueue_burst(&mut pending);
    }
    assert_eq!(lcore::wait(worker).expect("wait"), COUNT as i32);
    assert!(tx.is_empty());

    // Items left in a ring are freed with it.
    let (mut tx, rx) = ring::spsc::<Mbuf>("test_leftovers", 8, None).expect("ring");
    assert!(tx.enqueue(pool.alloc().expect("mbuf")).is_ok());
    assert_eq!(rx.len(), 1);
    assert!(
        ring::spsc::<Mbuf>("test_leftovers", 8, None).is_err(),
        "names are unique"
    );
    drop((tx, rx));
    assert_eq!(pool.in_use(), 0);
}

fn check_mpsc_messages() {
    let (mut local, mut consumer) = ring::mpsc::<Box<u64>>("test_msgs", 128, None).expect("ring");
    let worker = lcore::worker_lcores()[0];
    assert!(local.enqueue(Box::new(1_000_000)).is_ok());
    let mut remote = local.clone();
    lcore::launch_on(worker, move || {
        let deadline = lcore::tsc() + 10 * lcore::tsc_hz();
        for i in 0..500u64 {
            let mut msg = Box::new(i);
            while let Err(back) = remote.enqueue(msg) {
                if lcore::tsc() > deadline {
                    return -1;
                }
                msg = back;
            }
        }
        0
    })
    .expect("launch");
    let (mut n, mut sum) = (0u64, 0u64);
    let mut b: Burst<Box<u64>, 16> = Burst::new();
    let deadline = lcore::tsc() + 10 * lcore::tsc_hz();
    while n < 501 && lcore::tsc() < deadline {
        consumer.dequeue_burst(&mut b);
        for msg in b.drain() {
            n += 1;
            sum += *msg;
        }
    }
    assert_eq!(lcore::wait(worker).expect("wait"), 0);
    drop(local);
    assert_eq!((n, sum), (501, 1_000_000 + 499 * 500 / 2));
    assert!(consumer.dequeue().is_none());
}

fn check_launch_rules() {
    let worker = lcore::worker_lcores()[0];
    assert_eq!(
        lcore::launch_on(0, || 0).expect_err("not on main").errno(),
        libc::EINVAL
    );
    let release = Arc::new(AtomicBool::new(false));
    let flag = release.clone();
    lcore::launch_on(worker, move || {
        let deadline = lcore::tsc() + 10 * lcore::tsc_hz();
        while !flag.load(Ordering::Acquire) && lcore::tsc() < deadline {
            std::hint::spin_loop();
        }
        42
    })
    .expect("launch");
    let busy = lcore::launch_on(worker, || 0).expect_err("busy");
    assert_eq!(busy.errno(), libc::EBUSY);
    release.store(true, Ordering::Release);
    assert_eq!(lcore::wait(worker).expect("wait"), 42);

    lcore::launch_on(worker, || panic!("a worker panic is caught")).expect("launch");
    assert_eq!(lcore::wait(worker).expect("wait"), lcore::LAUNCH_PANICKED);

    // Off the main lcore, launching is refused.
    let from_thread =
        std::thread::spawn(move || lcore::launch_on(worker, || 0).map_err(|e| e.errno()))
            .join()
            .expect("thread");
    assert_eq!(from_thread, Err(libc::EPERM));
}
