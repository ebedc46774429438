//! Deterministic simulation of failover through the engine (DESIGN §3, §7).
//!
//! Each seed builds one world: a smoltcp client, two smoltcp replicas running the same
//! deterministic request/response server, six lossy, reordering, delaying (and now and
//! then duplicating) link directions, and the engine in the middle, with this test as its
//! control core. The client connects to the VIP, pipelines requests and reads the
//! answers, then closes. Per seed one of: the flow's active replica is killed mid-stream
//! (a seeded byte count), its standby is killed mid-stream, the designated primary is
//! killed during the handshake, or nothing is killed. A killed replica goes silent; a
//! seeded detection delay later the control core marks it down and asks for a failover
//! sweep.
//!
//! The properties, checked every step and at the end of each run:
//! 1. the client receives exactly the bytes a single healthy server sends;
//! 2. the client is never reset (no RST reaches it, its socket never closes abnormally);
//! 3. every byte the client saw acknowledged has reached every replica still in the flow,
//!    and every replica reads exactly the client's bytes;
//! 4. the engine's counters are sane (one failover per active kill, no flow lost, no
//!    buffer, tx or neighbour drops), every frame it emits has valid checksums and goes
//!    to a known MAC, and the flow ends closed;
//! 5. no segment with new data reaches the client with a TSval that a Linux client's PAWS
//!    test would reject (§3.3).
//!
//! A flow the engine legitimately left with one replica (the other one's SYN or SYN-ACK
//! was lost and it did not answer within `synack_wait`) cannot survive losing that
//! replica: such runs must end with the client reset (§3.9), and are reported apart.
//!
//! `TANDEM_SIM_SEEDS` (default 256) sets the number of seeds, `TANDEM_SIM_FIRST` the
//! first; `TANDEM_SIM_SEED=n` runs seed `n` alone. Run with `--nocapture` for the report.

mod sim;

use sim::{Kill, Outcome};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs one seed; a panic inside is a failure of that seed.
fn run_one(seed: u64) -> Result<Outcome, String> {
    std::panic::catch_unwind(|| sim::run(seed)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("seed {seed} panicked: {msg}"))
    })
}

/// Runs `seeds` on a few threads; results in seed order.
fn run_all(seeds: &[u64]) -> Vec<(u64, Result<Outcome, String>)> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let chunks: Vec<Vec<u64>> = (0..threads)
        .map(|t| seeds.iter().copied().skip(t).step_by(threads).collect())
        .collect();
    let mut results: Vec<(u64, Result<Outcome, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|&seed| (seed, run_one(seed)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("simulation thread panicked"))
            .collect()
    });
    results.sort_by_key(|r| r.0);
    results
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

#[test]
fn failover_simulation() {
    let only: Option<Vec<u64>> = std::env::var("TANDEM_SIM_SEED")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect());
    let seeds: Vec<u64> = match only {
        Some(s) => s,
        None => {
            let first = env_u64("TANDEM_SIM_FIRST").unwrap_or(0);
            let n = env_u64("TANDEM_SIM_SEEDS").unwrap_or(256);
            (first..first + n).collect()
        }
    };
    let results = run_all(&seeds);
    let failures: Vec<&(u64, Result<Outcome, String>)> =
        results.iter().filter(|r| r.1.is_err()).collect();
    if !failures.is_empty() {
        let list: Vec<u64> = failures.iter().map(|r| r.0).collect();
        let summary: String = failures
            .iter()
            .filter_map(|r| r.1.as_ref().err())
            .map(|e| format!("  {}\n", e.lines().next().unwrap_or_default()))
            .collect();
        let first = failures[0].1.as_ref().err().cloned().unwrap_or_default();
        panic!(
            "simulation: {} of {} seeds failed: {list:?}\n{summary}(rerun with \
             TANDEM_SIM_SEED=n[,m...])\n\n{first}",
            failures.len(),
            results.len()
        );
    }
    let ok: Vec<&Outcome> = results.iter().filter_map(|r| r.1.as_ref().ok()).collect();
    let count = |k: Kill| ok.iter().filter(|o| o.kill == k).count();
    let (active, standby, handshake, none) = (
        count(Kill::Active),
        count(Kill::Standby),
        count(Kill::Handshake),
        count(Kill::None),
    );
    let kills = active + standby + handshake;
    let unprotected = ok.iter().filter(|o| o.unprotected).count();
    // (Mirror mode: a reconnect-mode run that ended in a RST is counted below.)
    let gave_up = ok
        .iter()
        .filter(|o| o.verification_gave_up && o.reconnect.is_none())
        .count();
    let mut stalls: Vec<u64> = ok.iter().filter_map(|o| o.stall_ns).collect();
    stalls.sort_unstable();
    let frames: u64 = ok.iter().map(|o| o.frames).sum();
    let lost: u64 = ok.iter().map(|o| o.lost).sum();
    let replayed: u64 = ok.iter().map(|o| o.replayed).sum();
    let acks: u64 = ok.iter().map(|o| o.acks_to_client).sum();
    let signals: usize = ok.iter().map(|o| o.signals).sum();
    let sim_ms: u64 = ok.iter().map(|o| o.sim_ns).sum::<u64>() / 1_000_000;
    println!(
        "simulation: {} seeds, {kills} kill points (primary: {active}, backup: {standby}, \
         handshake: {handshake}, none: {none}), all passed, median client-visible stall {} µs",
        ok.len(),
        percentile(&stalls, 0.5) / 1_000
    );
    println!(
        "simulation: stall over {} active-replica failovers: p90 {} µs, max {} µs; \
         {unprotected} runs unprotected by a handshake loss (client reset as §3.9 says); \
         {gave_up} where verification gave up on the standby (§3.12); \
         {frames} frames ({lost} lost), {replayed} held segments replayed, {acks} ACKs \
         synthesised for the client, {signals} replica signals, {sim_ms} ms simulated",
        stalls.len(),
        percentile(&stalls, 0.9) / 1_000,
        stalls.last().copied().unwrap_or(0) / 1_000
    );
    // Reconnect mode: replays to a replica like the first, and how many were spliced.
    let honest: Vec<(u64, u64)> = ok
        .iter()
        .filter_map(|o| o.reconnect)
        .filter(|&(begun, _, unlike)| begun > 0 && !unlike)
        .map(|(begun, spliced, _)| (begun, spliced))
        .collect();
    let spliced = honest.iter().filter(|&&(_, s)| s > 0).count();
    println!(
        "simulation: reconnect mode: {} runs replayed to a replica like the first, {spliced} \
         spliced (the rest ended in a RST, never a mixed stream)",
        honest.len()
    );
    if seeds.len() >= 200 {
        assert!(kills >= 200, "only {kills} kill points ran");
        // A replay may end in a RST on these lossy links: the dead replica's output had a
        // gap the client holds data past, or the new one stalled on losses for 10 s. At
        // 2026-12-06 31 of 32 were spliced; fewer than 80 % is a regression.
        assert!(
            !honest.is_empty() && spliced * 10 >= honest.len() * 8,
            "only {spliced} of {} replays spliced",
            honest.len()
        );
        // Giving up protects the client from a splice, but costs it protection: on these
        // lossy links (up to 2 % loss, reordering, hold budgets down to a few KiB) it must
        // stay the exception.
        assert!(
            gave_up * 10 <= ok.len(),
            "verification gave up on {gave_up} of {} runs",
            ok.len()
        );
    }
}

/// The same seed gives the same run.
#[test]
fn simulation_is_deterministic() {
    for seed in [3, 9] {
        let a = format!("{:?}", sim::run(seed));
        let b = format!("{:?}", sim::run(seed));
        assert_eq!(a, b, "seed {seed} ran differently twice");
    }
}
