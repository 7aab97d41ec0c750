nf fw "Stateful firewall: LAN hosts open flows, WAN traffic passes only as their replies";

// nf-semantics.md §3.6 (Maestro variant). No TCP state machine: any outbound TCP/UDP
// packet opens or refreshes its flow, and replies keep it alive too. Expiry runs before
// parsing, so it also runs for dropped non-IP frames.
device lan = 0;
device wan = 1;

config expiration_time: u64 = 100s;
config max_flows: u32 = 65536;
config lan_mac: mac = 02:00:00:00:00:00;    // our address on each port
config wan_mac: mac = 02:00:00:00:00:01;
config lan_peer: mac = 01:23:45:67:89:00;   // the next hop on each port (--eth-dest)
config wan_peer: mac = 01:23:45:67:89:01;

record FlowId { src_port: u16, dst_port: u16, src_ip: ip4, dst_ip: ip4, proto: u8 }

// The value is the LAN port the flow came from.
state flows: table<FlowId, device>(capacity: max_flows, ttl: expiration_time);

process {
    flows.expire();
    parse l4 else {
        drop;
    }
    if in == wan {
        // A reply matches the LAN flow with the 5-tuple reversed.
        let reply = FlowId { src_port: pkt.l4.dport, dst_port: pkt.l4.sport,
                             src_ip: pkt.ip.dst, dst_ip: pkt.ip.src, proto: pkt.ip.proto };
        if let i = flows.get(reply) {
            flows.refresh(i);
            pkt.eth.src = lan_mac;
            pkt.eth.dst = lan_peer;
            forward(flows.value(i));
        } else {
            drop;                    // unsolicited inbound traffic
        }
    }
    let flow = FlowId { src_port: pkt.l4.sport, dst_port: pkt.l4.dport,
                        src_ip: pkt.ip.src, dst_ip: pkt.ip.dst, proto: pkt.ip.proto };
    if let i = flows.get(flow) {
        flows.refresh(i);            // the recorded LAN port is not updated on a hit
    } else {
        flows.add(flow, in);         // a full table still forwards; replies will be dropped
    }
    pkt.eth.src = wan_mac;
    pkt.eth.dst = wan_peer;
    forward(wan);
}
