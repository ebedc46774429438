//! Property tests: translation round-trips for any ISNs, timestamp clocks and window
//! scales, across the 2^32 wrap (DESIGN §3.2–3.4, §3.6).

use proptest::prelude::*;
use tandem_testkit::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever the ISNs and clocks: the client sees the primary's stream in the visible
    /// space; its acks, TSecr and SACK edges reach each replica in that replica's own
    /// space; after a failover the backup's held bytes continue the visible stream with a
    /// TSval that never goes back.
    #[test]
    fn seq_ack_ts_round_trip(
        cisn in any::<u32>(),
        pisn in any::<u32>(),
        bisn in any::<u32>(),
        pts in any::<u32>(),
        bts in any::<u32>(),
        pws in 0u8..=14,
        bws in 0u8..=14,
        chunks in proptest::collection::vec(1usize..1400, 1..6),
        acked_chunks in 0usize..6,
    ) {
        let mut lab = Lab::new();
        let hs = Hs {
            cisn,
            pisn,
            bisn,
            popts: Opts::syn(1460, pws, pts),
            bopts: Opts::syn(1460, bws, bts),
            ..Hs::default()
        };
        let synack = lab.handshake(&hs);
        prop_assert_eq!(synack.seq, pisn);
        let c1 = cisn.wrapping_add(1);
        let (mut p, mut b) = (pisn.wrapping_add(1), bisn.wrapping_add(1));
        let mut visible = Vec::new();
        for (k, &len) in chunks.iter().enumerate() {
            let bytes = vec![k as u8; len];
            // The backup answers first: held.
            let out = lab.send(Seg {
                seq: b,
                ack: c1,
                window: 1000,
                opts: Opts::ts(bts.wrapping_add(k as u32 + 1), 101),
                payload: &bytes,
                ..Seg::BACKUP
            });
            prop_assert!(to(&out, CLIENT).iter().all(|s| s.payload.is_empty()));
            let out = lab.send(Seg {
                seq: p,
                ack: c1,
                window: 1000,
                opts: Opts::ts(pts.wrapping_add(k as u32 + 1), 101),
                payload: &bytes,
                ..Seg::PRIMARY
            });
            let seg = one(&out, CLIENT);
            prop_assert_eq!(seg.seq, p, "primary delta is 0");
            prop_assert_eq!(seg.ts.map(|t| t.0), Some(pts.wrapping_add(k as u32 + 1)));
            visible.push((seg.seq, len, seg.ts.map_or(0, |t| t.0)));
            p = p.wrapping_add(len as u32);
            b = b.wrapping_add(len as u32);
        }
        // The client acks some of it and SACKs the last chunk; each replica gets its space.
        let acked = acked_chunks.min(chunks.len());
        let ack_vis = visible.get(acked).map_or(p, |v| v.0);
        let echo = visible.get(acked.saturating_sub(1)).map_or(pts, |v| v.2);
        let last = *visible.last().expect("a chunk");
        let out = lab.send(Seg {
            seq: c1,
            ack: ack_vis,
            opts: Opts::ts(200, echo),
            sack: &[(last.0, last.0.wrapping_add(last.1 as u32))],
            ..Seg::CLIENT
        });
        let delta = bisn.wrapping_sub(pisn);
        let to_b = one(&out, BACKUP);
        prop_assert_eq!(to_b.ack, ack_vis.wrapping_add(delta));
        prop_assert_eq!(to_b.ts.map(|t| t.1), Some(echo.wrapping_add(bts.wrapping_sub(pts))));
        prop_assert_eq!(
            to_b.sack.clone(),
            vec![(last.0.wrapping_add(delta), last.0.wrapping_add(last.1 as u32).wrapping_add(delta))]
        );
        let to_p = one(&out, PRIMARY);
        prop_assert_eq!(to_p.ack, ack_vis);
        // Failover: the bytes the client has not acked come from the backup's hold,
        // contiguous in the visible space, timestamps not going backwards.
        lab.kill(R::P);
        lab.engine.request_failover_sweep();
        let out = lab.poll();
        let segs = to(&out, CLIENT);
        let replayed: Vec<_> = segs.iter().filter(|s| !s.payload.is_empty()).collect();
        prop_assert_eq!(replayed.len(), chunks.len() - acked);
        let max_ts = visible.iter().map(|v| v.2).fold(pts, |m, t| if tandem_engine::Seq(t) > tandem_engine::Seq(m) { t } else { m });
        for (seg, v) in replayed.iter().zip(&visible[acked..]) {
            prop_assert_eq!(seg.seq, v.0);
            prop_assert_eq!(seg.payload.len(), v.1);
            let ts = seg.ts.map_or(0, |t| t.0);
            prop_assert!(tandem_engine::Seq(ts) >= tandem_engine::Seq(max_ts));
        }
    }
}
