//! The profile as written: serde structs that mirror the YAML one to one. Values that need
//! our own parsing (durations, addresses, port selectors) stay strings here so that
//! [`crate::validate`] can report them with their field path; everything optional is an
//! `Option` so that validation knows what was written and what was defaulted.

use serde::Deserialize;

use crate::profile::{LogFormat, LogLevel, Mode, PortRole, Selection};

/// Top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    #[serde(default)]
    pub eal: Option<RawEal>,
    pub lcores: RawLcores,
    pub ports: RawPorts,
    #[serde(default)]
    pub workers: Option<Vec<RawWorker>>,
    pub services: Vec<RawService>,
    #[serde(default)]
    pub timeouts: Option<RawTimeouts>,
    #[serde(default)]
    pub limits: Option<RawLimits>,
    #[serde(default)]
    pub management: Option<RawManagement>,
    #[serde(default)]
    pub logging: Option<RawLogging>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEal {
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLcores {
    #[serde(default)]
    pub control: Option<u32>,
    pub workers: Vec<u32>,
    #[serde(default)]
    pub affinity: Option<crate::profile::Affinity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPorts {
    pub outside: RawPort,
    pub inside: RawPort,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPort {
    pub device: String,
    pub address: String,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub queues: Option<u16>,
    #[serde(default)]
    pub rx_descriptors: Option<u16>,
    #[serde(default)]
    pub tx_descriptors: Option<u16>,
    #[serde(default)]
    pub mtu: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorker {
    pub lcore: u32,
    pub port: PortRole,
    pub queue: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub name: String,
    pub vip: String,
    pub port: String,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub copies: Option<u8>,
    #[serde(default)]
    pub selection: Option<Selection>,
    pub replicas: Vec<RawReplica>,
    #[serde(default)]
    pub health: Option<RawHealth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplica {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    #[serde(default)]
    pub probe_ports: Option<Vec<u32>>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub fall: Option<u32>,
    #[serde(default)]
    pub rise: Option<u32>,
    #[serde(default)]
    pub suspect_burst: Option<u32>,
    #[serde(default)]
    pub suspect_interval: Option<String>,
    #[serde(default)]
    pub ack_lag: Option<String>,
    #[serde(default)]
    pub output_lag: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    #[serde(default)]
    pub syn: Option<String>,
    #[serde(default)]
    pub established: Option<String>,
    #[serde(default)]
    pub linger: Option<String>,
    #[serde(default)]
    pub synack_wait: Option<String>,
    #[serde(default)]
    pub arp_refresh: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    #[serde(default)]
    pub flows_per_worker: Option<u32>,
    #[serde(default)]
    pub hold_bytes_per_flow: Option<u32>,
    #[serde(default)]
    pub hold_bytes_total: Option<u64>,
    #[serde(default)]
    pub hold_segments_total: Option<u32>,
    #[serde(default)]
    pub mbufs: Option<u32>,
    #[serde(default)]
    pub mbuf_cache: Option<u32>,
    #[serde(default)]
    pub control_rate: Option<u32>,
    #[serde(default)]
    pub control_burst: Option<u32>,
    #[serde(default)]
    pub syn_backlog: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManagement {
    #[serde(default)]
    pub socket: Option<String>,
    #[serde(default)]
    pub metrics: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogging {
    #[serde(default)]
    pub format: Option<LogFormat>,
    #[serde(default)]
    pub level: Option<LogLevel>,
}
