//! The control core's counters, declared once ([`tandem_engine::counters!`]): the
//! Prometheus text, the DPDK telemetry dictionary, the exit summary and `tandem status`
//! walk or read them.

use serde::{Deserialize, Serialize};

tandem_engine::counters! {
    /// Counters of the control core.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ControlCounters {
        /// Frames taken from the workers' rings.
        rx: counter "tandem_control_rx_packets_total",
        /// Frames sent (ARP replies and requests, echo replies).
        tx: counter "tandem_control_tx_packets_total",
        /// Frames its transmit queues refused.
        tx_refused: counter "tandem_control_tx_refused_total",
        /// ARP requests answered.
        arp_replies: counter "tandem_control_arp_replies_total",
        /// ARP requests sent (resolution and refresh).
        arp_requests: counter "tandem_control_arp_requests_total",
        /// Neighbour entries learned or refreshed.
        arp_learned: counter "tandem_control_arp_learned_total",
        /// ARP frames not for the appliance (ignored).
        arp_ignored: counter "tandem_control_arp_ignored_total",
        /// ARP requests and echo requests for a floating address not answered because
        /// this appliance of a pair is not the active one (DESIGN §6b).
        not_owner: counter "tandem_control_not_owner_total",
        /// Gratuitous ARPs sent for the floating addresses on becoming active.
        gratuitous_arps: counter "tandem_control_gratuitous_arps_total",
        /// Announcements of the active sent on the data ports.
        announcements: counter "tandem_control_announcements_total",
        /// ICMP echo requests answered.
        echo_replies: counter "tandem_control_echo_replies_total",
        /// Frames to the appliance's addresses that nothing serves (dropped).
        not_served: counter "tandem_control_not_served_total",
        /// Malformed frames (dropped).
        malformed: counter "tandem_control_malformed_total",
        /// Buffer allocations that failed.
        no_buffer: counter "tandem_control_no_buffer_total",
        /// Signals received from workers.
        signals: counter "tandem_control_signals_total",
        /// Health probes (SYNs) sent.
        probes: counter "tandem_control_probes_total",
        /// Answers to health probes (SYN-ACK or RST) matched to a probe.
        probe_replies: counter "tandem_control_probe_answers_total",
        /// Routine probes unanswered while the data path heard from the host (not failures).
        probes_lost: counter "tandem_control_probes_lost_total",
        /// Replicas declared down.
        failovers: counter "tandem_control_failovers_total",
        /// Probes not sent because their endpoint had its most outstanding (`health`).
        probes_skipped: counter "tandem_control_probes_skipped_total",
        /// Probes timed out by the horizon's deadline, not by the workers' stamps (`health`).
        probes_past_horizon: counter "tandem_control_probes_past_horizon_total",
        /// ARP refresh requests sent again after no answer.
        arp_retries: counter "tandem_control_arp_retries_total",
        /// Refresh rounds left unanswered (the neighbour's replicas are probed).
        arp_silent: counter "tandem_control_arp_silent_total",
        /// ARP messages that would change a known neighbour's MAC (claims, not applied).
        arp_mac_claims: counter "tandem_control_arp_mac_claims_total",
        /// Claims confirmed and applied (the old MAC silent, the new one answering).
        arp_mac_changes: counter "tandem_control_arp_mac_changes_total",
        /// Claims refused (the known MAC still answers).
        arp_mac_refused: counter "tandem_control_arp_mac_refused_total",
        /// Claims dropped unconfirmed (neither MAC answered).
        arp_mac_unconfirmed: counter "tandem_control_arp_mac_unconfirmed_total",
        /// Claims of other MACs ignored while one waited or just after one.
        arp_mac_ignored: counter "tandem_control_arp_mac_ignored_total",
    }
}
