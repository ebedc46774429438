//! Any bytes from the HA link or a data port as the pair's messages: never a panic. A
//! heartbeat that decodes encodes to the same bytes (the encoding is canonical), and a
//! node fed any sequence of datagrams and frames keeps running.
//! `cargo fuzz run ha_decode`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_control::ha::wire::{parse_announce, Heartbeat, Message};
use tandem_control::ha::{Channel, Node, Settings, SyncSettings};

fuzz_target!(|data: &[u8]| {
    if let Ok(hb) = Heartbeat::decode(data) {
        assert_eq!(&hb.encode()[..], data);
    }
    if let Ok(Message::Batch(b)) = Message::parse(data) {
        for r in b.records() {
            let _ = r;
        }
    }
    let _ = parse_announce(data);

    // The same bytes cut into datagrams (a length byte, then that many bytes) for a node.
    let cfg = Settings {
        node: 1,
        preferred: false,
        incarnation: 1_000,
        interval_ns: 1_000,
        dead_ns: 5_000,
        handover_timeout_ns: 50_000,
        sync: SyncSettings::default(),
    };
    let mut node = Node::new(cfg, 0);
    let mut now = 0u64;
    let mut rest = data;
    let mut out = [0u8; 2048];
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (datagram, tail) = tail.split_at(take);
        rest = tail;
        now += 700;
        match len % 3 {
            0 => node.on_datagram(now, datagram, |_| {}),
            1 => node.on_announcement(now, datagram),
            _ => {
                if let Ok(hb) = Heartbeat::decode(datagram) {
                    node.on_heartbeat(now, hb, Channel::HaLink);
                }
            }
        }
        node.poll(now);
        while node.poll_action().is_some() {}
        for _ in 0..64 {
            if node.poll_transmit(now, &mut out).is_none() {
                break;
            }
        }
    }
});
