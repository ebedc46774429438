//! A [`Profile`] written back as YAML, for tools that make profiles (the benchmarks' and
//! the lab tests' `tandem-bench profile`): they build or change a typed profile and write
//! it, instead of carrying YAML templates or patching a file as text.
//!
//! The document is the one [`crate::raw`] reads, serialised from the same structs: every
//! value written out, defaults included, except `workers`, which is left out where
//! `lcores` and `ports` derive it, and the `replay` settings a service's mode refuses
//! (all in forward mode; `methods`, `exclude_headers` and `fin_hold` in mirror mode; the
//! first two with `scope: stream`). Sizes are written in bytes. [`crate::parse`] of the
//! text gives the profile back.

use std::time::Duration;

use crate::duration::{format_duration, parse_duration};
use crate::profile::{Mode, Profile, Replay, ReplayScope, WorkerAssignment};
use crate::raw::{
    RawEal, RawHa, RawHealth, RawLcores, RawLimits, RawLogging, RawManagement, RawPort, RawPorts,
    RawProfile, RawReplay, RawReplica, RawService, RawTimeouts, RawWorker,
};
use crate::size::RawSize;

/// Why a profile could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the profile: {0}")]
pub struct WriteError(String);

impl Profile {
    /// The profile as a YAML document that [`crate::parse`] reads back into an equal
    /// profile (when the profile is valid; writing does not validate).
    ///
    /// # Errors
    ///
    /// [`WriteError`] when the management socket's path is not UTF-8 (YAML text cannot
    /// hold it), or the serialiser fails.
    pub fn to_yaml(&self) -> Result<String, WriteError> {
        let raw = raw_profile(self)?;
        let mut options = serde_saphyr::SerializerOptions::default();
        // Long EAL arguments (vdev devargs) stay plain scalars, not folded blocks.
        options.prefer_block_scalars = false;
        // YAML 1.2 quoting (without the directive): addresses stay unquoted.
        options.yaml_12 = true;
        options.no_lang_directive = true;
        serde_saphyr::to_string_with_options(&raw, options).map_err(|e| WriteError(e.to_string()))
    }

    /// The same document as [`Profile::to_yaml`], as JSON (`tandem check --json`).
    ///
    /// # Errors
    ///
    /// As [`Profile::to_yaml`].
    pub fn to_json(&self) -> Result<String, WriteError> {
        serde_json::to_string_pretty(&raw_profile(self)?).map_err(|e| WriteError(e.to_string()))
    }
}

/// A duration as a profile writes it, exactly (`format_duration` rounds some fractions).
fn duration(d: Duration) -> String {
    let text = format_duration(d);
    if parse_duration(&text) == Ok(d) {
        return text;
    }
    let nanos = d.as_nanos();
    for (unit, scale) in [("s", 1_000_000_000u128), ("ms", 1_000_000), ("us", 1_000)] {
        if nanos.is_multiple_of(scale) {
            return format!("{}{unit}", nanos / scale);
        }
    }
    format!("{nanos}ns")
}

/// A duration where 0 means off.
fn off_or(d: Option<Duration>) -> String {
    d.map_or_else(|| "0".to_owned(), duration)
}

/// A service's replay settings as a profile in its mode may write them: none in forward
/// mode; in mirror mode those it uses; in reconnect mode all, the HTTP ones with the
/// http1 scope only. What is left out reads back as the default.
fn replay(mode: Mode, r: &Replay) -> Option<RawReplay> {
    let http1 = mode == Mode::Reconnect && r.scope == ReplayScope::Http1;
    let common = RawReplay {
        scope: Some(r.scope),
        limit: Some(RawSize::Bytes(r.limit)),
        connect_timeout: Some(duration(r.connect_timeout)),
        parallel: Some(r.parallel),
        ..RawReplay::default()
    };
    match mode {
        Mode::Forward => None,
        Mode::Mirror => Some(common),
        Mode::Reconnect => Some(RawReplay {
            methods: http1.then(|| r.methods.clone()),
            exclude_headers: http1.then(|| r.exclude_headers.clone()),
            fin_hold: Some(duration(r.fin_hold)),
            ..common
        }),
    }
}

fn raw_profile(p: &Profile) -> Result<RawProfile, WriteError> {
    let port = |port: &crate::profile::Port| RawPort {
        device: port.device.to_string(),
        address: port.address.to_string(),
        gateway: port.gateway.map(|g| g.to_string()),
        queues: Some(port.queues),
        rx_descriptors: Some(port.rx_descriptors),
        tx_descriptors: Some(port.tx_descriptors),
        mtu: Some(port.mtu),
    };
    let workers =
        (p.workers != WorkerAssignment::derived(&p.lcores.workers, &p.ports)).then(|| {
            p.workers
                .iter()
                .map(|w| RawWorker {
                    lcore: w.lcore,
                    port: w.port,
                    queue: w.queue,
                })
                .collect()
        });
    let services = p
        .services
        .iter()
        .map(|s| RawService {
            name: s.name.clone(),
            vip: s.vip.to_string(),
            port: s.port.to_string(),
            mode: Some(s.mode),
            copies: Some(s.copies),
            selection: Some(s.selection),
            no_replica: Some(s.no_replica),
            verify: Some(s.verify),
            replay: replay(s.mode, &s.replay),
            replicas: s
                .replicas
                .iter()
                .map(|r| RawReplica {
                    name: r.name.clone(),
                    address: r.address.to_string(),
                    // Written only when set: profiles stay as they were.
                    drain: r.drain.then_some(true),
                })
                .collect(),
            health: Some(RawHealth {
                probe_ports: Some(s.health.probe_ports.iter().map(|&n| n.into()).collect()),
                interval: Some(duration(s.health.interval)),
                timeout: Some(duration(s.health.timeout)),
                fall: Some(s.health.fall),
                rise: Some(s.health.rise),
                suspect_burst: Some(s.health.suspect_burst),
                suspect_interval: Some(duration(s.health.suspect_interval)),
                ack_lag: Some(off_or(s.health.ack_lag)),
                output_lag: Some(off_or(s.health.output_lag)),
            }),
        })
        .collect();
    let socket = p.management.socket.to_str().ok_or_else(|| {
        WriteError(format!(
            "management.socket `{}` is not UTF-8",
            p.management.socket.display()
        ))
    })?;
    let (t, l) = (&p.timeouts, &p.limits);
    Ok(RawProfile {
        eal: (!p.eal.args.is_empty()).then(|| RawEal {
            args: p.eal.args.clone(),
        }),
        lcores: RawLcores {
            control: Some(p.lcores.control),
            workers: p.lcores.workers.clone(),
            affinity: Some(p.lcores.affinity),
        },
        ports: RawPorts {
            outside: port(&p.ports.outside),
            inside: port(&p.ports.inside),
        },
        workers,
        services,
        timeouts: Some(RawTimeouts {
            syn: Some(duration(t.syn)),
            established: Some(duration(t.established)),
            linger: Some(duration(t.linger)),
            synack_wait: Some(duration(t.synack_wait)),
            arp_refresh: Some(duration(t.arp_refresh)),
        }),
        limits: Some(RawLimits {
            flows_per_worker: Some(l.flows_per_worker),
            hold_bytes_per_flow: Some(RawSize::Bytes(l.hold_bytes_per_flow.into())),
            hold_bytes_total: Some(RawSize::Bytes(l.hold_bytes_total)),
            hold_segments_total: Some(l.hold_segments_total),
            mbufs: Some(l.mbufs),
            mbuf_cache: Some(l.mbuf_cache),
            control_rate: Some(l.control_rate),
            control_burst: Some(l.control_burst),
            syn_backlog: Some(l.syn_backlog),
            replay_bytes_total: Some(RawSize::Bytes(l.replay_bytes_total)),
        }),
        management: Some(RawManagement {
            socket: Some(socket.to_owned()),
            metrics: Some(
                p.management
                    .metrics
                    .map_or_else(|| "off".to_owned(), |a| a.to_string()),
            ),
            group: p.management.group.clone(),
        }),
        logging: Some(RawLogging {
            format: Some(p.logging.format),
            level: Some(p.logging.level),
        }),
        ha: p.ha.as_ref().map(|h| RawHa {
            interface: h.interface.clone(),
            local: h.local.to_string(),
            peer: h.peer.to_string(),
            floating: Some(h.floating.iter().map(|a| a.to_string()).collect()),
            heartbeat: Some(duration(h.heartbeat)),
            dead_time: Some(duration(h.dead_time)),
            sync_batch: Some(h.sync_batch),
            sync_interval: Some(duration(h.sync_interval)),
            sync_window: Some(h.sync_window),
            preferred: Some(h.preferred),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_exactly() {
        let ns = Duration::from_nanos;
        for (d, text) in [
            (Duration::ZERO, "0"),
            (Duration::from_millis(10), "10ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(300), "300s"),
            // format_duration would round these to three decimals.
            (ns(1_234_567), "1234567ns"),
            (ns(1_000_250_000), "1000250us"),
        ] {
            assert_eq!(duration(d), text);
            assert_eq!(parse_duration(&duration(d)), Ok(d));
        }
        assert_eq!(off_or(None), "0");
        assert_eq!(off_or(Some(Duration::from_millis(100))), "100ms");
    }
}
