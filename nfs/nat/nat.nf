nf nat "NAT (VigNAT, Maestro variant): LAN flows get an external port, WAN replies are translated back";

// nf-semantics.md §3.7. The external port of a flow is start_port + its table index, in
// network byte order on the wire (Q3: a deliberate deviation from the C code, which
// byte-swaps it). A WAN port outside the table is a miss (Q4). WAN hits do not refresh
// the flow unless refresh_on_wan is set (Q5: Maestro's default; Vigor refreshes, before
// the anti-spoofing check).
device lan = 0;
device wan = 1;

config expiration_time: u64 = 100s;
config max_flows: u32 = 65536;
config external_ip: ip4 = 192.0.2.1;
config start_port: u16 = 0;
config refresh_on_wan: bool = false;
config lan_mac: mac = 02:00:00:00:00:00;
config wan_mac: mac = 02:00:00:00:00:01;
config lan_peer: mac = 01:23:45:67:89:00;
config wan_peer: mac = 01:23:45:67:89:01;

// The LAN-side 5-tuple plus the LAN port it came from.
record FlowId { src_port: u16, dst_port: u16, src_ip: ip4, dst_ip: ip4, device: device, proto: u8 }

state flows: table<FlowId>(capacity: max_flows, ttl: expiration_time);

process {
    flows.expire();
    parse l4 else {
        drop;
    }
    if in == wan {
        let i = pkt.l4.dport as u32 - start_port as u32;
        if !flows.has_index(i) {
            drop;
        }
        let mapping = flows.key(i);
        if refresh_on_wan {
            flows.refresh(i);
        }
        // Anti-spoofing: the reply must come from the flow's server.
        if mapping.dst_ip != pkt.ip.src || mapping.dst_port != pkt.l4.sport || mapping.proto != pkt.ip.proto {
            drop;
        }
        pkt.ip.dst = mapping.src_ip;
        pkt.l4.dport = mapping.src_port;
        pkt.eth.src = lan_mac;
        pkt.eth.dst = lan_peer;
        forward(mapping.device);
    }
    let flow = FlowId { src_port: pkt.l4.sport, dst_port: pkt.l4.dport,
                        src_ip: pkt.ip.src, dst_ip: pkt.ip.dst, device: in, proto: pkt.ip.proto };
    let mut index: u32 = 0;
    if let i = flows.get(flow) {
        flows.refresh(i);
        index = i;
    } else {
        if let i = flows.add(flow) {
            index = i;
        } else {
            drop;                    // table full: new outbound flows are dropped
        }
    }
    pkt.ip.src = external_ip;
    pkt.l4.sport = (start_port as u32 + index) as u16;
    pkt.eth.src = wan_mac;
    pkt.eth.dst = wan_peer;
    forward(wan);
}
