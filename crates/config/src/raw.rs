//! The profile as written: serde structs that mirror the YAML one to one. Values that need
//! our own parsing (durations, addresses, port selectors, sizes) stay strings here so that
//! [`crate::validate`] can report them with their field path; everything optional is an
//! `Option` so that validation knows what was written and what was defaulted.
//!
//! The same structs write a profile back ([`crate::write`]): a `None` is left out.

use serde::{Deserialize, Serialize};

use crate::profile::{LogFormat, LogLevel, Mode, NoReplica, PortRole, ReplayScope, Selection};
use crate::size::RawSize;

/// Top level.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eal: Option<RawEal>,
    pub lcores: RawLcores,
    pub ports: RawPorts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<RawWorker>>,
    pub services: Vec<RawService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<RawTimeouts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<RawLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management: Option<RawManagement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<RawLogging>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<RawHa>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEal {
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLcores {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<u32>,
    pub workers: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<crate::profile::Affinity>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPorts {
    pub outside: RawPort,
    pub inside: RawPort,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPort {
    pub device: String,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_descriptors: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_descriptors: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorker {
    pub lcore: u32,
    pub port: PortRole,
    pub queue: u16,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub name: String,
    pub vip: String,
    pub port: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<RawReplay>,
    pub replicas: Vec<RawReplica>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<RawHealth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_replica: Option<NoReplica>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplay {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ReplayScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<RawSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fin_hold: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplica {
    pub name: String,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<bool>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_ports: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fall: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rise: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect_burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_lag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_lag: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linger: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synack_wait: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp_refresh: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows_per_worker: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_bytes_per_flow: Option<RawSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_bytes_total: Option<RawSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_segments_total: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mbufs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mbuf_cache: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syn_backlog: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_bytes_total: Option<RawSize>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManagement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHa {
    pub interface: String,
    pub local: String,
    pub peer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floating: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_batch: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_window: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred: Option<bool>,
}
