//! Any bytes through every wire view and accessor, and the engine's classifier: never a
//! panic. `cargo fuzz run parse`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_wire::{ArpPacket, EthernetFrame, Icmpv4Packet, Ipv4Packet, TcpSegment};

fuzz_target!(|data: &[u8]| {
    let own = [0xc612_0001u32, 0xc613_0001];
    let _ = tandem_engine::parse::classify(data, &own, &[0xc612_0064]);
    if let Ok(eth) = EthernetFrame::new_checked(data) {
        let _ = (eth.dst(), eth.src(), eth.vlan_tci(), eth.ethertype());
        let payload = eth.payload();
        if let Ok(arp) = ArpPacket::new_checked(payload) {
            let _ = (arp.operation(), arp.sender_ip(), arp.target_mac());
        }
        if let Ok(ip) = Ipv4Packet::new_checked(payload) {
            let _ = (ip.src(), ip.dst(), ip.is_fragment(), ip.verify_checksum());
            if let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) {
                let _ = (icmp.msg_type(), icmp.verify_checksum());
            }
            let mut owned = ip.payload().to_vec();
            if let Ok(mut tcp) = TcpSegment::new_checked(&mut owned[..]) {
                let _ = (tcp.seq(), tcp.flags(), tcp.mss(), tcp.window_scale(), tcp.timestamps());
                for o in tcp.options() {
                    let _ = o;
                }
                if let Some(blocks) = tcp.sack_blocks() {
                    let _ = blocks.count();
                }
                tcp.set_timestamps(1, 2);
                tcp.map_sack_blocks(|e| e.wrapping_add(7));
                tcp.nop_out(8);
                tcp.set_mss(1000);
            }
        }
    }
});
