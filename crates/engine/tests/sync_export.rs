//! The engine's side of flow-state sync (issue #17, DESIGN §6b): an engine of a pair
//! queues a record of a flow at each of its events (handshake completion, a switch of
//! the active leg, a leg's death, a FIN either way, removal) and refreshes the flows that
//! moved from its sweep, into a bounded outbox the worker drains (`Engine::drain_sync`).
//! An engine that is not one of a pair makes none.

use tandem_testkit::*;

use tandem_engine::{EngineConfig, SyncEvent, SyncExport, SyncRecord};
use tandem_wire::TcpFlags;

/// The lab's engine as one of a pair: an outbox of `outbox` records, refreshes every
/// 100 ms, `per_poll` a sweep step.
fn paired(outbox: usize, per_poll: usize) -> Lab {
    Lab::with(EngineConfig {
        sync: Some(SyncExport {
            outbox,
            refresh_ns: 100 * MS,
            refresh_per_poll: per_poll,
        }),
        ..config()
    })
}

/// Everything the outbox holds.
fn drain(lab: &mut Lab) -> Vec<SyncRecord> {
    let mut got = Vec::new();
    lab.engine.drain_sync(usize::MAX, |r| {
        got.push(*r);
        true
    });
    got
}

fn events(recs: &[SyncRecord]) -> Vec<SyncEvent> {
    recs.iter().map(|r| r.event).collect()
}

/// Client `i`'s handshake (both SYN-ACKs, then the client's ACK); returns the client's
/// next sequence and the visible next sequence it acks.
fn handshake(lab: &mut Lab, i: usize) -> (u32, u32) {
    let c = Conn::nth(i);
    let who = (c.client, c.port);
    let out = lab.send(Seg {
        seq: c.c_nxt,
        ..Seg::CLIENT_SYN.for_client(who)
    });
    assert_eq!(to(&out, PRIMARY).len(), 1, "SYN to the primary");
    lab.send(Seg {
        seq: c.p_nxt,
        ack: c.c_nxt + 1,
        ..Seg::PRIMARY_SYNACK.for_client(who)
    });
    let out = lab.send(Seg {
        seq: c.b_nxt,
        ack: c.c_nxt + 1,
        ..Seg::BACKUP_SYNACK.for_client(who)
    });
    let synack = one(&out, c.client);
    let s1 = synack.seq.wrapping_add(1);
    lab.send(Seg {
        seq: c.c_nxt + 1,
        ack: s1,
        opts: Opts::ts(101, synack.ts.map_or(0, |t| t.0)),
        ..Seg::CLIENT.for_client(who)
    });
    (c.c_nxt + 1, s1)
}

/// Client `i` sends `payload` at `seq`, acking `ack`, with `flags`.
fn client_sends(lab: &mut Lab, i: usize, seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]) {
    let c = Conn::nth(i);
    lab.send(Seg {
        seq,
        ack,
        flags,
        opts: Opts::ts(200, 0),
        payload,
        ..Seg::CLIENT.for_client((c.client, c.port))
    });
}

#[test]
fn an_appliance_that_is_not_one_of_a_pair_makes_no_record() {
    let mut lab = Lab::new();
    let (c1, s1) = handshake(&mut lab, 0);
    client_sends(&mut lab, 0, c1, s1, TcpFlags::ACK, b"hello");
    client_sends(&mut lab, 0, c1 + 5, s1, TcpFlags::RST, b"");
    lab.advance(10_000 * MS);
    lab.poll();
    assert_eq!(lab.engine.sync_pending(), 0);
    assert!(drain(&mut lab).is_empty());
    assert_eq!(lab.engine.counters().sync_records_made, 0);
    assert_eq!(lab.engine.counters().sync_outbox_drops, 0);
}

#[test]
fn the_handshake_makes_a_record_that_a_peer_installs() {
    let mut lab = paired(64, 16);
    handshake(&mut lab, 0);
    let recs = drain(&mut lab);
    assert_eq!(events(&recs), [SyncEvent::Handshake]);
    let c = Conn::nth(0);
    assert_eq!(recs[0].key.client_ip, u32::from(c.client));
    assert_eq!(recs[0].key.client_port, c.port);
    assert_eq!(recs[0].n_legs, 2);
    assert_eq!(lab.engine.counters().sync_records_made, 1);

    // The peer installs it, and sends nothing back of its own: it already has it.
    let mut peer = paired(64, 16);
    let now = peer.now;
    peer.engine
        .install_flow(&recs[0], now)
        .expect("the record installs");
    assert_eq!(peer.engine.flows().len(), 1);
    assert_eq!(
        peer.engine.sync_pending(),
        0,
        "an installed flow is not echoed"
    );
}

#[test]
fn segments_without_an_event_make_no_record() {
    let mut lab = paired(64, 16);
    let (c1, s1) = handshake(&mut lab, 0);
    drain(&mut lab);
    for k in 0..10 {
        client_sends(&mut lab, 0, c1 + k * 10, s1, TcpFlags::ACK, &[b'x'; 10]);
    }
    assert!(drain(&mut lab).is_empty());
}

#[test]
fn a_fin_either_way_makes_a_fin_record() {
    let mut lab = paired(64, 16);
    let (c1, s1) = handshake(&mut lab, 0);
    drain(&mut lab);
    client_sends(&mut lab, 0, c1, s1, TcpFlags::ACK | TcpFlags::FIN, b"");
    let recs = drain(&mut lab);
    assert_eq!(events(&recs), [SyncEvent::Fin]);
    assert!(recs[0].client_fin.is_some());

    // The replicas' FINs: one record each time what the flow shows changes.
    let c = Conn::nth(0);
    for (tmpl, nxt, tsval) in [
        (Seg::PRIMARY, c.p_nxt, 5001),
        (Seg::BACKUP, c.b_nxt, 80_001),
    ] {
        lab.send(Seg {
            seq: nxt.wrapping_add(1),
            ack: c1 + 1,
            flags: TcpFlags::ACK | TcpFlags::FIN,
            opts: Opts::ts(tsval, 101),
            ..tmpl.for_client((c.client, c.port))
        });
    }
    let recs = drain(&mut lab);
    assert!(!recs.is_empty(), "the replicas' FINs make records");
    assert!(recs.iter().all(|r| r.event == SyncEvent::Fin), "{recs:?}");
    let last = recs.last().expect("one");
    assert!(last.legs().iter().all(|l| l.fin.is_some()));
    assert!(last.fin_sent.is_some(), "the FIN went on to the client");
}

#[test]
fn the_active_replicas_death_makes_a_switch_record() {
    let mut lab = paired(64, 16);
    let (c1, s1) = handshake(&mut lab, 0);
    drain(&mut lab);
    lab.kill(R::P);
    // The next segment of the flow finds its active replica down and switches.
    client_sends(&mut lab, 0, c1, s1, TcpFlags::ACK, b"after");
    let recs = drain(&mut lab);
    assert_eq!(events(&recs), [SyncEvent::Switch], "{recs:?}");
    assert_eq!(recs[0].active, 1, "the backup is active");
    assert!(!recs[0].legs[0].alive);
}

#[test]
fn a_standbys_death_makes_a_leg_death_record() {
    let mut lab = paired(64, 16);
    let (c1, s1) = handshake(&mut lab, 0);
    drain(&mut lab);
    lab.kill(R::B);
    client_sends(&mut lab, 0, c1, s1, TcpFlags::ACK, b"after");
    let recs = drain(&mut lab);
    assert_eq!(events(&recs), [SyncEvent::LegDeath], "{recs:?}");
    assert_eq!(recs[0].active, 0);
    assert!(!recs[0].legs[1].alive);
}

#[test]
fn removal_makes_a_removed_record_that_removes_the_peers_flow() {
    let mut lab = paired(64, 16);
    let (c1, s1) = handshake(&mut lab, 0);
    let mut peer = paired(64, 16);
    let now = peer.now;
    for r in drain(&mut lab) {
        peer.engine.install_flow(&r, now).expect("installs");
    }
    assert_eq!(peer.engine.flows().len(), 1);
    client_sends(&mut lab, 0, c1, s1, TcpFlags::RST, b"");
    assert_eq!(lab.engine.flows().len(), 0);
    let recs = drain(&mut lab);
    assert_eq!(events(&recs), [SyncEvent::Removed]);
    for r in &recs {
        peer.engine.install_flow(r, now).expect("removes");
    }
    assert_eq!(peer.engine.flows().len(), 0);
}

#[test]
fn a_half_open_flow_makes_no_record_even_when_removed() {
    let mut lab = paired(64, 16);
    let c = Conn::nth(0);
    lab.send(Seg {
        seq: c.c_nxt,
        ..Seg::CLIENT_SYN.for_client((c.client, c.port))
    });
    lab.advance(60_000 * MS);
    lab.poll();
    assert_eq!(lab.engine.flows().len(), 0, "the SYN timed out");
    assert!(drain(&mut lab).is_empty());
}

#[test]
fn a_full_outbox_drops_and_counts_and_never_grows() {
    let mut lab = paired(2, 16);
    for i in 0..5 {
        handshake(&mut lab, i);
    }
    assert_eq!(lab.engine.sync_pending(), 2);
    assert_eq!(lab.engine.counters().sync_outbox_drops, 3);
    assert_eq!(drain(&mut lab).len(), 2);
}

#[test]
fn a_consumer_that_is_full_leaves_the_record_for_later() {
    let mut lab = paired(64, 16);
    handshake(&mut lab, 0);
    handshake(&mut lab, 1);
    let taken = lab.engine.drain_sync(usize::MAX, |_| false);
    assert_eq!(taken, 0);
    assert_eq!(lab.engine.sync_pending(), 2);
    assert_eq!(lab.engine.drain_sync(1, |_| true), 1, "at most `max`");
    assert_eq!(drain(&mut lab).len(), 1);
}

#[test]
fn refreshes_come_from_the_sweep_only_for_flows_that_moved_and_are_bounded_per_poll() {
    let mut lab = paired(64, 2);
    let mut at = Vec::new();
    for i in 0..5 {
        at.push(handshake(&mut lab, i));
    }
    drain(&mut lab);
    // Nothing moved: no refresh, however long.
    lab.advance(500 * MS);
    lab.poll();
    lab.advance(500 * MS);
    lab.poll();
    assert!(drain(&mut lab).is_empty(), "idle flows are not refreshed");

    // Every flow moves; one sweep step refreshes at most 2.
    lab.advance(MS);
    for (i, &(c1, s1)) in at.iter().enumerate() {
        client_sends(&mut lab, i, c1, s1, TcpFlags::ACK, b"moved");
    }
    lab.advance(200 * MS);
    lab.poll();
    let first = drain(&mut lab);
    assert!(
        !first.is_empty() && first.len() <= 2,
        "{} refreshes",
        first.len()
    );
    assert!(first.iter().all(|r| r.event == SyncEvent::Refresh));
    assert!(first.iter().all(|r| r.bytes_from_client == 5));
    // Later steps refresh the rest, each flow once.
    let mut all = first;
    for _ in 0..20 {
        lab.advance(MS);
        lab.poll();
        all.extend(drain(&mut lab));
    }
    let mut keys: Vec<_> = all.iter().map(|r| r.key).collect();
    keys.sort_by_key(|k| (k.client_ip, k.client_port));
    keys.dedup();
    assert_eq!(keys.len(), 5, "every moved flow refreshed");
    assert_eq!(all.len(), 5, "once each");
}

#[test]
fn the_peers_announcement_on_a_data_port_goes_to_the_control_core() {
    let mut lab = paired(64, 16);
    // A broadcast of the pair's EtherType, the peer's heartbeat as payload.
    let mut frame = vec![0u8; 66];
    frame[..6].copy_from_slice(&[0xff; 6]);
    frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x42]);
    frame[12..14].copy_from_slice(&tandem_engine::parse::PAIR_ANNOUNCE.to_be_bytes());
    for side in [tandem_engine::Side::Outside, tandem_engine::Side::Inside] {
        assert!(lab.feed(side, frame.clone()).is_empty());
    }
    assert_eq!(lab.engine.counters().to_control, 2);
}

#[test]
fn the_end_of_a_bulk_removes_the_flows_it_did_not_refresh() {
    let mut lab = paired(64, 16);
    for i in 0..3 {
        handshake(&mut lab, i);
    }
    let recs = drain(&mut lab);
    assert_eq!(recs.len(), 3);
    let mut peer = paired(64, 16);
    let t0 = peer.now;
    for r in &recs {
        peer.engine.install_flow(r, t0).expect("installs");
    }
    // A bulk starts later and brings flow 1 alone: 0 and 2 went meanwhile.
    let since = t0 + 10 * MS;
    peer.engine
        .install_flow(&recs[1], since + MS)
        .expect("replaces");
    let mut from = Some(0);
    let mut steps = 0;
    while let Some(f) = from {
        from = peer.engine.prune_unsynced(since, f, 16);
        steps += 1;
    }
    assert_eq!(steps, 4, "64 slots, 16 a step");
    assert_eq!(peer.engine.flows().len(), 1);
    assert!(peer
        .engine
        .export_flow(&recs[1].key, SyncEvent::Refresh)
        .is_some());
    assert_eq!(peer.engine.counters().sync_flows_pruned, 2);
}

#[test]
fn after_a_takeover_records_never_replace_a_flow_until_the_engine_stands_by_again() {
    let mut lab = paired(64, 16);
    handshake(&mut lab, 0);
    let rec = drain(&mut lab)[0];
    let mut peer = paired(64, 16);
    let now = peer.now;
    peer.engine.install_flow(&rec, now).expect("installs");
    peer.engine.takeover(now, 0);
    assert_eq!(
        peer.engine.install_flow(&rec, now),
        Err(tandem_engine::InstallError::Exists)
    );
    peer.engine.stand_by();
    assert!(peer.engine.install_flow(&rec, now).is_ok());
    assert!(!peer.engine.takeover_pending());
}

#[test]
fn a_removed_record_survives_its_encoding() {
    let key = tandem_engine::FlowKey {
        client_ip: 0xc612_0002,
        client_port: 40100,
        vip: 0xc612_0064,
        vip_port: 7000,
    };
    let rec = SyncRecord::removed(key);
    let mut buf = [0u8; tandem_engine::sync::RECORD_LEN];
    rec.encode(&mut buf).expect("encodes");
    assert_eq!(SyncRecord::decode(&buf), Ok(rec));
}

#[test]
fn the_pairs_ethertype_on_a_single_appliance_is_dropped_as_not_ipv4_not_passed_on() {
    let mut lab = Lab::new();
    let mut frame = vec![0u8; 66];
    frame[..6].copy_from_slice(&[0xff; 6]);
    frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x42]);
    frame[12..14].copy_from_slice(&tandem_engine::parse::PAIR_ANNOUNCE.to_be_bytes());
    for side in [tandem_engine::Side::Outside, tandem_engine::Side::Inside] {
        assert!(lab.feed(side, frame.clone()).is_empty());
    }
    let c = lab.engine.counters();
    assert_eq!(c.to_control, 0);
    assert_eq!(c.dropped(tandem_engine::DropReason::NotIpv4), 2);
}

#[test]
fn a_segment_ahead_of_its_record_moves_an_installed_flow_only_in_the_seconds_after_the_takeover() {
    // The catch-up trusts what a segment shows; past the takeover's few seconds a blind
    // attacker who knows the addresses and ports could move the flow on with it.
    let ahead = |after_takeover_ns: u64| {
        let mut lab = paired(64, 16);
        let (c_next, s1) = handshake(&mut lab, 0);
        let rec = drain(&mut lab)[0];
        let mut peer = paired(64, 16);
        let now = peer.now;
        peer.engine.install_flow(&rec, now).expect("installs");
        peer.engine.takeover(now, 0);
        peer.advance(after_takeover_ns);
        // Acks 64 KiB the record never sent the client.
        client_sends(
            &mut peer,
            0,
            c_next,
            s1.wrapping_add(65_536),
            TcpFlags::ACK,
            b"",
        );
        peer.engine.counters().sync_catch_ups
    };
    assert_eq!(ahead(100 * MS), 1, "caught up in the takeover's seconds");
    assert_eq!(ahead(4_000 * MS), 0, "ordinary rules after them");
}
